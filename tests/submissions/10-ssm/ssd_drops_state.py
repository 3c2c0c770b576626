# cell: ssd_chunked
# breaks: test_ssd_chunked
# Chunks as independent masked attentions: the state leaving a chunk is never carried into the
# next one, so every chunk after the first forgets everything before it (right only in chunk 0).
def ssd_chunked(x, a, B, C, chunk):
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    b, L, p = x.shape
    n, T = B.shape[-1], chunk
    k = -(-L // T)
    extra = k * T - L
    xs = torch.nn.functional.pad(x, (0, 0, 0, extra)).view(b, k, T, p)
    Bs = torch.nn.functional.pad(B, (0, 0, 0, extra)).view(b, k, T, n)
    Cs = torch.nn.functional.pad(C, (0, 0, 0, extra)).view(b, k, T, n)
    cum = torch.nn.functional.pad(a, (0, extra), value=1.0).log().view(b, k, T).cumsum(-1)
    below = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device))
    M = (cum[..., :, None] - cum[..., None, :]).masked_fill(~below, -math.inf).exp()  # (b, k, T, T)
    y = (M * (Cs @ Bs.transpose(-1, -2))) @ xs  # each chunk's own inputs only
    return y.reshape(b, k * T, p)[:, :L]
