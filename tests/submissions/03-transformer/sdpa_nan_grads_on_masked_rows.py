# cell: scaled_dot_product_attention
# breaks: test_scaled_dot_product_attention
# Every forward value is right: an additive -inf mask, the row max shift with 0 for an empty row,
# and torch.where(z > 0, e / z, 0) for the division. But on a fully masked row e / z is still
# computed as 0/0 = NaN, and where's backward sends that branch's NaN gradient through exp into
# the scores; the additive mask passes it on to q and k, so dq and dk are NaN on those rows.
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    if mask is not None:
        scores = scores + torch.zeros_like(scores).masked_fill(~mask, float("-inf"))
    top = scores.amax(dim=-1, keepdim=True)
    top = torch.where(torch.isinf(top), torch.zeros_like(top), top)
    e = torch.exp(scores - top)
    z = e.sum(dim=-1, keepdim=True)
    weights = torch.where(z > 0, e / z, torch.zeros_like(e))
    return weights @ v, weights
