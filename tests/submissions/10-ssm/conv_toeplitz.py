# cell: ssm_conv
# breaks: test_ssm_conv
# Right values by a direct O(L^2) convolution: an (L, L) Toeplitz matrix of K, and no FFT.
def ssm_conv(u, Abar, Bbar, C, L):
    if u.shape[-1] != L:
        raise ValueError("u.shape[-1] != L")
    cols, P = Bbar[:, None], Abar
    while cols.shape[1] < L:
        cols = torch.cat([cols, P @ cols], dim=1)
        P = P @ P
    K = C @ cols[:, :L]
    lag = torch.arange(L)[:, None] - torch.arange(L)[None, :]  # (L, L)
    T = torch.where(lag >= 0, K[lag.clamp(min=0)], torch.zeros((), dtype=torch.float64))
    return u @ T.T
