# cell: selective_scan
# breaks: test_selective_scan
# Right values by a Python loop over the L time steps (one state update per step, L dependent
# steps): no parallel scan, so it runs O(L) torch ops and lines instead of O(log L) rounds.
def selective_scan(u, delta, A, B, C, D):
    b, d, L = u.shape
    x = torch.zeros(b, d, A.shape[1], dtype=torch.float32, device=u.device)  # (b, d, n)
    ys = []
    for t in range(L):
        step = delta[:, :, t].unsqueeze(-1)  # (b, d, 1)
        x = torch.exp(step * A) * x + step * B[:, None, :, t] * u[:, :, t, None]
        ys.append(torch.einsum("bdn,bn->bd", x, C[:, :, t]))
    return torch.stack(ys, dim=-1) + D[:, None] * u
