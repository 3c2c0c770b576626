# cell: selective_scan
# breaks: test_selective_scan
# The scan in rounds is right, but the skip term D * u_t is forgotten.
def selective_scan(u, delta, A, B, C, D):
    step = delta.unsqueeze(2)  # (b, d, 1, L)
    a = torch.exp(step * A[None, :, :, None])
    x = step * B[:, None] * u.unsqueeze(2)
    L, k = u.shape[-1], 1
    while k < L:
        x = torch.cat([x[..., :k], a[..., k:] * x[..., :-k] + x[..., k:]], dim=-1)
        a = torch.cat([a[..., :k], a[..., k:] * a[..., :-k]], dim=-1)
        k *= 2
    return (x * C[:, None]).sum(2)
