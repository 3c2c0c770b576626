# cell: sample
# breaks: test_sample
# Casts the logits to float32 before the draw: with float64 logits the generator makes other draws.
def sample(logits_fn, n_samples, order, generator):
    x = torch.zeros(n_samples, len(order))
    with torch.no_grad():
        for i in torch.argsort(order).tolist():
            x[:, i] = torch.bernoulli(torch.sigmoid(logits_fn(x)[:, i].float()), generator=generator)
    return x
