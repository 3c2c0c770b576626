# cell: MultiHeadAttention
# breaks: test_MultiHeadAttention
# Splits and merges the heads correctly but hands the attention itself to torch's fused
# F.scaled_dot_product_attention instead of the learner's own. Refused.
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not a multiple of n_heads {n_heads}")
        self.n_heads = n_heads
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x, mask=None):
        B, L, d = x.shape
        H = self.n_heads
        q, k, v = self.in_proj(x).split(d, dim=-1)
        q, k, v = (t.view(B, L, H, d // H).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(B, L, d))
