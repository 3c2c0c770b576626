# cell: sinusoidal_positional_encoding
# breaks: test_sinusoidal_positional_encoding
# Computes the angles p * omega in float32 and casts at the end: at positions in the thousands
# float32's 24-bit mantissa leaves errors of 1e-4 in the angle.
def sinusoidal_positional_encoding(n_pos, d_model):
    if d_model % 2:
        raise ValueError(f"d_model must be even, got {d_model}")
    p = torch.arange(n_pos, dtype=torch.float32)[:, None]  # (n_pos, 1)
    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)  # (d/2,)
    pe = torch.empty(n_pos, d_model, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(p * omega)
    pe[:, 1::2] = torch.cos(p * omega)
    return pe.double()
