# cell: online_softmax
# breaks: test_online_softmax
# Three sweeps again, but x is read only once: the first sweep keeps a copy of every column block,
# and the max, sum and output sweeps read the copies. The copies are the whole of x, kept alive at
# once: reads in disguise, and the memory the online softmax never needs.
def online_softmax(x: torch.Tensor, block: int) -> torch.Tensor:
    blocks = [x[..., j:j + block].clone() for j in range(0, x.shape[-1], block)]  # every block, kept
    m = torch.full(x.shape[:-1], float("-inf"), dtype=x.dtype, device=x.device)
    for b in blocks:
        m = torch.maximum(m, b.amax(dim=-1))
    l = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    for b in blocks:
        l = l + torch.exp(b - m[..., None]).sum(dim=-1)
    out = torch.empty_like(x)
    for j, b in zip(range(0, x.shape[-1], block), blocks):
        out[..., j:j + block] = torch.exp(b - m[..., None]) / l[..., None]
    return out
