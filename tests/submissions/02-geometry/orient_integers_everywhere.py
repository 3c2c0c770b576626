# cell: orient
# breaks: test_orient
# Exact on every row, with no filter and no Fraction: each coordinate split into an integer
# mantissa and an exponent (np.frexp), all six shifted to the row's smallest exponent in an object
# array of Python integers, and the determinant taken in those. Right everywhere and only a few
# seconds for a million rows, because NumPy's object loops hide the Python arithmetic per row.
def orient(a, b, c) -> np.ndarray:
    a, b, c = (np.asarray(x, dtype=np.float64) for x in (a, b, c))
    if any(x.ndim != 2 or x.shape[1] != 2 for x in (a, b, c)) or not a.shape == b.shape == c.shape:
        raise ValueError(f"orient needs three (N, 2) arrays, got shapes {a.shape}, {b.shape}, {c.shape}")
    pts = np.concatenate([a, b, c], axis=1)  # (N, 6)
    m, e = np.frexp(pts)
    mant = (m * 2.0**53).astype(np.int64)  # exact: |m| < 1 has 53 bits
    e = np.where(mant == 0, 1 << 20, e - 53)
    low = e.min(axis=1, keepdims=True)
    shift = np.where(mant == 0, 0, e - np.where(low == 1 << 20, 0, low))
    v = mant.astype("O") * (2 ** shift.astype("O"))  # (N, 6) Python integers
    ax, ay, bx, by, cx, cy = v.T
    det = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    return np.array([(d > 0) - (d < 0) for d in det], dtype=np.int8)
