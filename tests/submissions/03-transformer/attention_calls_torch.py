# cell: scaled_dot_product_attention
# breaks: test_scaled_dot_product_attention
# The output from torch's fused attention, the weights recomputed: refused.
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.nan_to_num(torch.softmax(scores, dim=-1))
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask), weights
