# cell: sample
# breaks: test_sample
# Draws from torch's global generator: the samples ignore the generator passed in.
def sample(logits_fn, n_samples, order, generator):
    x = torch.zeros(n_samples, len(order))
    with torch.no_grad():
        for i in torch.argsort(order).tolist():
            x[:, i] = torch.bernoulli(torch.sigmoid(logits_fn(x)[:, i]))
    return x
