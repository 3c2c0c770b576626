# cell: scaled_dot_product_attention
# breaks: test_scaled_dot_product_attention
# The weights written out, the output from torch's fused attention: refused.
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    top = scores.amax(dim=-1, keepdim=True)
    e = torch.exp(scores - torch.where(torch.isinf(top), torch.zeros_like(top), top))
    weights = e / e.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(e.dtype).tiny)
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask), weights
