# cell: nade_sample
# breaks: test_nade_sample
# Updates the state one pixel late: the column of x_{i-1} is added after x_i is drawn instead of
# before, so pixel i is drawn given x_<(i-1) only (right work, wrong draws).
def nade_sample(W, V, b, c, n_samples, generator):
    H, n = W.shape
    x = W.new_zeros(n_samples, n)
    a = c.expand(n_samples, H)
    for i in range(n):
        p = torch.sigmoid(b[i] + torch.sigmoid(a) @ V[i])
        x[:, i] = torch.bernoulli(p, generator=generator)
        if i > 0:
            a = a + x[:, i - 1, None] * W[:, i - 1]
    return x
