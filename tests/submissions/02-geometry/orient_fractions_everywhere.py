# cell: orient
# breaks: test_orient
# Exact on every row, with no filter: a Python loop over all rows, each determinant in Fractions.
# The signs are right, but a million random rows cost six million Fractions and millions of
# Python lines, where the filter decides all but a handful of them in float64.
def orient(a, b, c) -> np.ndarray:
    a, b, c = (np.asarray(x, dtype=np.float64) for x in (a, b, c))
    if any(x.ndim != 2 or x.shape[1] != 2 for x in (a, b, c)) or not a.shape == b.shape == c.shape:
        raise ValueError(f"orient needs three (N, 2) arrays, got shapes {a.shape}, {b.shape}, {c.shape}")
    sign = np.zeros(len(a), dtype=np.int8)
    for k in range(len(a)):
        (ax, ay), (bx, by), (cx, cy) = ([Fraction(v) for v in p] for p in (a[k], b[k], c[k]))
        d = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        sign[k] = (d > 0) - (d < 0)
    return sign
