# cell: discretize
# breaks: test_discretize
# Bilinear with the signs swapped: (I + dt/2 A)^-1 (I - dt/2 A), the inverse of the right map.
def discretize(A, B, dt, method):
    N = A.shape[0]
    if method == "zoh":
        M = torch.zeros(N + 1, N + 1, dtype=torch.float64)
        M[:N, :N], M[:N, N] = dt * A, dt * B
        E = torch.linalg.matrix_exp(M)
        return E[:N, :N], E[:N, N]
    if method == "bilinear":
        I = torch.eye(N, dtype=torch.float64)
        back = I + dt / 2 * A
        return torch.linalg.solve(back, I - dt / 2 * A), torch.linalg.solve(back, dt * B)
    raise ValueError(method)
