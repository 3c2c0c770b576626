# cell: ssd_chunked
# breaks: test_ssd_chunked
# Right values by the recurrence, one step per time step (L dependent steps, not L / chunk): it
# ignores the chunks and runs thousands of torch ops and lines at L = 2048.
def ssd_chunked(x, a, B, C, chunk):
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    h = torch.zeros(x.shape[0], B.shape[-1], x.shape[-1], dtype=x.dtype, device=x.device)  # (b, n, p)
    ys = []
    for t in range(x.shape[1]):
        h = a[:, t, None, None] * h + B[:, t, :, None] * x[:, t, None, :]
        ys.append((C[:, t, :, None] * h).sum(1))
    return torch.stack(ys, 1)
