# cell: ssm_conv
# breaks: test_ssm_conv
# The FFT has length L, not 2L: a circular convolution, whose tail wraps onto the first outputs.
def ssm_conv(u, Abar, Bbar, C, L):
    if u.shape[-1] != L:
        raise ValueError("u.shape[-1] != L")
    cols, P = Bbar[:, None], Abar
    while cols.shape[1] < L:
        cols = torch.cat([cols, P @ cols], dim=1)
        P = P @ P
    K = C @ cols[:, :L]
    return torch.fft.irfft(torch.fft.rfft(u, n=L) * torch.fft.rfft(K, n=L), n=L)
