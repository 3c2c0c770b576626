# cell: ssm_conv
# breaks: test_ssm_conv
# Right values by a direct O(L^2) convolution: an (L, L) Toeplitz matrix of K, and no FFT.
def ssm_conv(u, Abar, Bbar, C, L):
    if u.shape[-1] != L:
        raise ValueError("u.shape[-1] != L")
    K = torch.empty(L, dtype=torch.float64)
    s = Bbar
    for l in range(L):
        K[l] = C @ s
        s = Abar @ s
    lag = torch.arange(L)[:, None] - torch.arange(L)[None, :]  # (L, L)
    T = torch.where(lag >= 0, K[lag.clamp(min=0)], torch.zeros((), dtype=torch.float64))
    return u @ T.T
