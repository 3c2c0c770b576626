# cell: scaled_dot_product_attention
# breaks: test_scaled_dot_product_attention
# Masks with -inf and calls softmax: right everywhere except rows with no allowed key, which
# become 0/0 = NaN.
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
