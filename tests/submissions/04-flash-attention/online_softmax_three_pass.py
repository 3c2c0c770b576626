# cell: online_softmax
# breaks: test_online_softmax
# The textbook safe softmax in three sweeps over the column blocks: the exact row max first, then
# the sum of e^(x - m), then the output. Right values and no wide temporary, but every block of x
# is read three times: the running max and the rescaled sum of the online softmax are skipped.
def online_softmax(x: torch.Tensor, block: int) -> torch.Tensor:
    rows = x.shape[:-1]
    m = torch.full(rows, float("-inf"), dtype=x.dtype, device=x.device)
    for j in range(0, x.shape[-1], block):  # sweep 1: the exact maximum
        m = torch.maximum(m, x[..., j:j + block].amax(dim=-1))
    l = torch.zeros(rows, dtype=x.dtype, device=x.device)
    for j in range(0, x.shape[-1], block):  # sweep 2: the sum, relative to the final maximum
        l = l + torch.exp(x[..., j:j + block] - m[..., None]).sum(dim=-1)
    out = torch.empty_like(x)
    for j in range(0, x.shape[-1], block):  # sweep 3: the output
        out[..., j:j + block] = torch.exp(x[..., j:j + block] - m[..., None]) / l[..., None]
    return out
