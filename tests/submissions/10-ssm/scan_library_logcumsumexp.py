# cell: selective_scan
# breaks: test_selective_scan
# Right values by a library scan instead of the operator in rounds: x_t = sum_j exp(S_t - S_j) b_j
# with S the cumulative sum of delta A, computed in log space by torch.logcumsumexp (float64, the
# positive and negative parts of b_j apart). Nothing of section 5's scan is written.
def selective_scan(u, delta, A, B, C, D):
    dA = (delta[:, :, None, :] * A[None, :, :, None]).double()  # (b, d, n, L): log a_t
    bu = (delta[:, :, None, :] * B[:, None] * u[:, :, None, :]).double()  # (b, d, n, L): b_t
    S = torch.cumsum(dA, dim=-1)  # log of the product a_0 ... a_t
    pos = torch.logcumsumexp(torch.log(bu.clamp(min=0)) - S, dim=-1)
    neg = torch.logcumsumexp(torch.log((-bu).clamp(min=0)) - S, dim=-1)
    x = torch.exp(S + pos) - torch.exp(S + neg)
    return ((x * C[:, None]).sum(2) + D[:, None] * u).float()
