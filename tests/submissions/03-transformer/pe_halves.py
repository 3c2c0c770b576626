# cell: sinusoidal_positional_encoding
# breaks: test_sinusoidal_positional_encoding
# All sines in the first half of the columns and all cosines in the second (a layout some code
# bases use), not interleaved as PE[p, 2i], PE[p, 2i+1].
def sinusoidal_positional_encoding(n_pos, d_model):
    if d_model % 2:
        raise ValueError(f"d_model must be even, got {d_model}")
    p = torch.arange(n_pos, dtype=torch.float64)[:, None]  # (n_pos, 1)
    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    return torch.cat([torch.sin(p * omega), torch.cos(p * omega)], dim=-1)
