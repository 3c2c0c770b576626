# cell: scaled_dot_product_attention
# breaks: test_scaled_dot_product_attention
# Masks with -inf and writes the softmax with its max shift, but leaves a row's max of -inf as
# it is: right everywhere except rows with no allowed key, where -inf - (-inf) gives NaN.
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    e = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    weights = e / e.sum(dim=-1, keepdim=True)
    return weights @ v, weights
