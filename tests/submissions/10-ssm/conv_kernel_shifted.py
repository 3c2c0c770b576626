# cell: ssm_conv
# breaks: test_ssm_conv
# The kernel starts at C Abar Bbar instead of C Bbar: every output is one power of Abar off.
def ssm_conv(u, Abar, Bbar, C, L):
    if u.shape[-1] != L:
        raise ValueError("u.shape[-1] != L")
    cols, P = (Abar @ Bbar)[:, None], Abar
    while cols.shape[1] < L:
        cols = torch.cat([cols, P @ cols], dim=1)
        P = P @ P
    K = C @ cols[:, :L]
    spectrum = torch.fft.rfft(u, n=2 * L) * torch.fft.rfft(K, n=2 * L)
    return torch.fft.irfft(spectrum, n=2 * L)[..., :L]
