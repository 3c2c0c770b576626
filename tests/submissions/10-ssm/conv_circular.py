# cell: ssm_conv
# breaks: test_ssm_conv
# The FFT has length L, not 2L: a circular convolution, whose tail wraps onto the first outputs.
def ssm_conv(u, Abar, Bbar, C, L):
    if u.shape[-1] != L:
        raise ValueError("u.shape[-1] != L")
    K = torch.empty(L, dtype=torch.float64)
    s = Bbar
    for l in range(L):
        K[l] = C @ s
        s = Abar @ s
    return torch.fft.irfft(torch.fft.rfft(u, n=L) * torch.fft.rfft(K, n=L), n=L)
