# cell: orient
# breaks: test_orient
# The sign of the cross product in np.longdouble (80-bit on x86: a 64-bit mantissa) on every row,
# no filter and no exact path. Right on all but the hardest rows: a determinant below 2^-64 of its
# products, such as a = (0, 0), b = (1 + 2^-52, 1), c = (1, 1 - 2^-52) (exactly -2^-104), is rounded
# away, because a product of two 53-bit numbers needs 106 bits.
def orient(a, b, c) -> np.ndarray:
    a, b, c = (np.asarray(x, dtype=np.float64) for x in (a, b, c))
    if any(x.ndim != 2 or x.shape[1] != 2 for x in (a, b, c)) or not a.shape == b.shape == c.shape:
        raise ValueError(f"orient needs three (N, 2) arrays, got shapes {a.shape}, {b.shape}, {c.shape}")
    a, b, c = (x.astype(np.longdouble) for x in (a, b, c))
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return np.sign(det).astype(np.int8)
