# cell: MultiHeadAttention
# breaks: test_MultiHeadAttention
# Checks d_model % n_heads with assert: an AssertionError (and none at all under python -O),
# not the ValueError the interface promises.
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        assert d_model % n_heads == 0, "d_model must be a multiple of n_heads"
        self.n_heads = n_heads
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x, mask=None):
        B, L, d = x.shape
        H = self.n_heads
        q, k, v = self.in_proj(x).split(d, dim=-1)
        q, k, v = (t.view(B, L, H, d // H).transpose(1, 2) for t in (q, k, v))
        out, _ = scaled_dot_product_attention(q, k, v, mask)
        return self.out_proj(out.transpose(1, 2).reshape(B, L, d))
