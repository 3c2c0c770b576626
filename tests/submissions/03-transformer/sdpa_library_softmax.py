# cell: scaled_dot_product_attention
# breaks: test_scaled_dot_product_attention
# Right outputs and gradients from torch's own softmax, its NaN rows zeroed afterwards: the row
# maximum is never subtracted by hand, which is what the exercise is about. Refused.
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)
    return weights @ v, weights
