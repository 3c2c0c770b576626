# cell: orient
# breaks: test_orient
# The textbook EPS comparison: |det| <= 1e-9 counts as collinear. Near 1e-8 every triangle is
# "flat"; near 1e8 the float det is rounding noise far above 1e-9.
def orient(a, b, c) -> np.ndarray:
    a, b, c = (np.asarray(x, dtype=np.float64) for x in (a, b, c))
    if any(x.ndim != 2 or x.shape[1] != 2 for x in (a, b, c)) or not a.shape == b.shape == c.shape:
        raise ValueError("three (N, 2) arrays")
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return np.where(np.abs(det) <= 1e-9, 0, np.sign(det)).astype(np.int8)
