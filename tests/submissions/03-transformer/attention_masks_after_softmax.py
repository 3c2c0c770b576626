# cell: scaled_dot_product_attention
# breaks: test_scaled_dot_product_attention
# Applies the mask after the softmax: masked weights are zeroed, but the rows no longer sum to 1.
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    e = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    weights = e / e.sum(dim=-1, keepdim=True)
    if mask is not None:
        weights = weights * mask
    return weights @ v, weights
