# cell: sinusoidal_positional_encoding
# breaks: test_sinusoidal_positional_encoding
# cos in the even columns and sin in the odd ones.
def sinusoidal_positional_encoding(n_pos, d_model):
    if d_model % 2:
        raise ValueError(f"d_model must be even, got {d_model}")
    p = torch.arange(n_pos, dtype=torch.float64)[:, None]  # (n_pos, 1)
    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    pe = torch.empty(n_pos, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.cos(p * omega)
    pe[:, 1::2] = torch.sin(p * omega)
    return pe
