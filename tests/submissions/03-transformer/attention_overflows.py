# cell: scaled_dot_product_attention
# breaks: test_scaled_dot_product_attention
# exp of the raw scores without subtracting the row maximum: inf / inf = NaN once logits reach
# a few hundred.
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    e = torch.exp(scores)
    if mask is not None:
        e = e * mask
    z = e.sum(dim=-1, keepdim=True)
    weights = torch.where(z > 0, e / torch.where(z > 0, z, torch.ones_like(z)), torch.zeros_like(e))
    return weights @ v, weights
