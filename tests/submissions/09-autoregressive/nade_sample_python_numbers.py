# cell: nade_sample
# breaks: test_nade_sample
# Right draws, work hidden from the torch count: the prefix sums are recomputed in Python numbers
# (taken out of the tensors with __float__, which no refused name catches), O(n^2 H) per sample in
# Python lines that no torch op sees: the line budget fails it.
def nade_sample(W, V, b, c, n_samples, generator):
    H, n = W.shape
    x = W.new_zeros(n_samples, n)
    w = [[W[k, j].__float__() for j in range(n)] for k in range(H)]
    for i in range(n):
        rows = [[c[k].__float__() + sum(w[k][j] * x[s, j].__float__() for j in range(i)) for k in range(H)]
                for s in range(n_samples)]
        a = torch.tensor(rows, dtype=W.dtype).reshape(n_samples, H)
        x[:, i] = torch.bernoulli(torch.sigmoid(b[i] + torch.sigmoid(a) @ V[i]), generator=generator)
    return x
