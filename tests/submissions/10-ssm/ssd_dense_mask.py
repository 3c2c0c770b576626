# cell: ssd_chunked
# breaks: test_ssd_chunked
# Right values by the dense dual form, y = (M o C B^T) x with the whole (L, L) mask: no chunks,
# O(L^2) memory and work.
def ssd_chunked(x, a, B, C, chunk):
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    L = x.shape[1]
    cum = a.log().cumsum(-1)  # (b, L)
    below = torch.tril(torch.ones(L, L, dtype=torch.bool, device=x.device))
    M = (cum[:, :, None] - cum[:, None, :]).masked_fill(~below, -math.inf).exp()  # (b, L, L)
    return (M * (C @ B.transpose(-1, -2))) @ x
