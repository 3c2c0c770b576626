# cell: online_softmax
# breaks: test_online_softmax
# Two sweeps over x, but not the online softmax: the exact max first, then e^(x - m) written into
# the output while the sum accumulates, then a third sweep that divides the output by l in place.
# x is read twice, but the output is read back: the running max (which lets the second sweep write
# the final values) is skipped.
def online_softmax(x: torch.Tensor, block: int) -> torch.Tensor:
    m = torch.full(x.shape[:-1], float("-inf"), dtype=x.dtype, device=x.device)
    for j in range(0, x.shape[-1], block):
        m = torch.maximum(m, x[..., j:j + block].amax(dim=-1))
    l = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    out = torch.empty_like(x)
    for j in range(0, x.shape[-1], block):
        e = torch.exp(x[..., j:j + block] - m[..., None])
        out[..., j:j + block] = e
        l = l + e.sum(dim=-1)
    for j in range(0, x.shape[-1], block):
        out[..., j:j + block] /= l[..., None]
    return out
