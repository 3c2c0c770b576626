# cell: discretize
# breaks: test_discretize
# ZOH's Abar is right, but Bbar = dt * B is Euler's rule: it ignores how the state moves during the step.
def discretize(A, B, dt, method):
    N = A.shape[0]
    if method == "zoh":
        return torch.linalg.matrix_exp(dt * A), dt * B
    if method == "bilinear":
        I = torch.eye(N, dtype=torch.float64)
        back = I - dt / 2 * A
        return torch.linalg.solve(back, I + dt / 2 * A), torch.linalg.solve(back, dt * B)
    raise ValueError(method)
