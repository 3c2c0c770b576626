# cell: selective_scan
# breaks: test_selective_scan
# Closed form x_t = P_t * cumsum(dBu / P) with P the cumulative product of exp(delta A): P underflows
# to 0 with Mamba's A = -(1..n) over long sequences, and dividing by it gives inf and nan.
def selective_scan(u, delta, A, B, C, D):
    dA = torch.exp(delta[..., None, :] * A[None, :, :, None])  # (b, d, n, L)
    dBu = delta[..., None, :] * B[:, None] * u[..., None, :]  # (b, d, n, L)
    P = torch.cumprod(dA, dim=-1)
    x = P * torch.cumsum(dBu / P, dim=-1)
    return (x * C[:, None]).sum(2) + D[:, None] * u
