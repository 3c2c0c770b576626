# cell: MultiHeadAttention
# breaks: test_MultiHeadAttention
# Never passes the mask to the attention: every position sees the future.
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
        out, _ = scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).reshape(B, L, d))
