# cell: hippo_legs
# breaks: test_hippo_legs
# A transposed: the sqrt(2n+1) sqrt(2k+1) terms sit above the diagonal (n < k) instead of below, so
# each coefficient reads the ones after it instead of the ones before (HiPPO-LegS is lower triangular).
def hippo_legs(N: int) -> tuple[torch.Tensor, torch.Tensor]:
    if N < 1:
        raise ValueError(f"N must be at least 1, got {N}")
    n = torch.arange(N, dtype=torch.float64)
    r = torch.sqrt(2 * n + 1)  # (N,)
    A = -torch.outer(r, r).triu(1) - torch.diag(n + 1)
    return A, r
