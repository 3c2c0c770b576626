# cell: sample
# breaks: test_sample
# Visits the entries in index order 0, 1, ..., n-1 instead of the given order.
def sample(logits_fn, n_samples, order, generator):
    x = torch.zeros(n_samples, len(order))
    with torch.no_grad():
        for i in range(len(order)):
            x[:, i] = torch.bernoulli(torch.sigmoid(logits_fn(x)[:, i]), generator=generator)
    return x
