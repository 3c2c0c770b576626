# cell: fvsbn_log_prob
# breaks: test_fvsbn_log_prob
# log(sigmoid(l)) by the letter: sigmoid underflows to 0 for large |l|, and log p becomes -inf or nan.
def fvsbn_log_prob(x, alpha, bias):
    logits = bias + x @ torch.tril(alpha, -1).T
    p = torch.sigmoid(logits)
    return (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(-1)
