# cell: ssm_conv
# breaks: test_ssm_conv
# Right values by the recurrence, one step per time step (L dependent matrix-vector products on
# u), with an FFT of u run beside it and thrown away so that an FFT op is seen: no convolution.
def ssm_conv(u, Abar, Bbar, C, L):
    if u.shape[-1] != L:
        raise ValueError(f"u has {u.shape[-1]} steps, but L = {L}")
    torch.fft.rfft(u, n=2 * L)  # for show
    x = torch.zeros(u.shape[0], Abar.shape[0], dtype=torch.float64)  # (batch, N)
    ys = []
    for l in range(L):
        x = x @ Abar.T + u[:, l, None] * Bbar
        ys.append(x @ C)
    return torch.stack(ys, -1)
