# cell: selective_scan
# breaks: test_selective_scan
# The skip term D * u_t is forgotten.
def selective_scan(u, delta, A, B, C, D):
    b, d, L = u.shape
    x = torch.zeros(b, d, A.shape[1], dtype=torch.float32, device=u.device)
    ys = []
    for t in range(L):
        step = delta[:, :, t].unsqueeze(-1)
        x = torch.exp(step * A) * x + step * B[:, None, :, t] * u[:, :, t, None]
        ys.append(torch.einsum("bdn,bn->bd", x, C[:, :, t]))
    return torch.stack(ys, dim=-1)
