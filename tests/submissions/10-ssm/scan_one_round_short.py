# cell: selective_scan
# breaks: test_selective_scan
# The rounds of the parallel scan stop one round early (k doubles while 2k < L): after
# ceil(log2 L) - 1 rounds, position t holds only the last 2^(rounds) steps, so every state past
# that reach misses the earliest steps' contribution.
def selective_scan(u, delta, A, B, C, D):
    step = delta.unsqueeze(2)  # (b, d, 1, L)
    a = torch.exp(step * A[None, :, :, None])  # (b, d, n, L)
    x = step * B[:, None] * u.unsqueeze(2)  # (b, d, n, L)
    L, k = u.shape[-1], 1
    while 2 * k < L:  # one round too few
        x = torch.cat([x[..., :k], a[..., k:] * x[..., :-k] + x[..., k:]], dim=-1)
        a = torch.cat([a[..., :k], a[..., k:] * a[..., :-k]], dim=-1)
        k *= 2
    return (x * C[:, None]).sum(2) + D[:, None] * u
