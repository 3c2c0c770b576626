# cell: nade_sample
# breaks: test_nade_sample
# Right draws, wrong cost: recomputes c + W[:, :i] x_<i from the whole prefix at every pixel, the
# generic n-pass sampler, O(n^2 H) per sample: the work rule fails it.
def nade_sample(W, V, b, c, n_samples, generator):
    H, n = W.shape
    x = W.new_zeros(n_samples, n)
    for i in range(n):
        h = torch.sigmoid(c + x[:, :i] @ W[:, :i].T)
        x[:, i] = torch.bernoulli(torch.sigmoid(b[i] + h @ V[i]), generator=generator)
    return x
