# cell: rope_2d
# breaks: test_rope_2d
# Right rotations, applied one patch at a time and stacked: an empty grid (L = 0) leaves nothing to
# stack, and apply_rope_2d raises instead of returning (0, H, head_dim) tensors.
def rope_2d(grid_hw, head_dim, theta=10000.0):
    if head_dim <= 0 or head_dim % 4:
        raise ValueError("head_dim must be a positive multiple of 4")
    f = theta ** (-4 * torch.arange(head_dim // 4, dtype=torch.float64) / head_dim)
    parts = []
    for h, w in grid_hw.reshape(-1, 2).tolist():
        pos = torch.arange(h * w, dtype=torch.float64)
        row, col = pos // w, pos % w
        parts.append(torch.stack([col[:, None] * f, row[:, None] * f], -1).reshape(h * w, -1))
    a = torch.cat(parts) if parts else torch.zeros(0, head_dim // 2, dtype=torch.float64)
    return torch.polar(torch.ones_like(a), a).to(torch.complex64)


def apply_rope_2d(q, k, freqs):
    def rotate(x):
        real = torch.float64 if x.dtype == torch.float64 else torch.float32
        rows = []
        for i in range(x.shape[0]):  # one patch at a time
            z = torch.view_as_complex(x[i].to(real).reshape(x.shape[1], -1, 2).contiguous())
            rows.append(torch.view_as_real(z * freqs[i].to(z.dtype)).reshape(x.shape[1:]))
        return torch.stack(rows).to(x.dtype)
    return rotate(q), rotate(k)
