# cell: fvsbn_log_prob
# breaks: test_fvsbn_log_prob
# Keeps alpha's diagonal: logit_i sees x_i itself, so p no longer sums to 1.
def fvsbn_log_prob(x, alpha, bias):
    logits = bias + x @ torch.tril(alpha).T
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
