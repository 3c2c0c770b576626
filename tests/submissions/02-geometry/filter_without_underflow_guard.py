# cell: orient
# breaks: test_orient
# Shewchuk's filter and the Fraction fallback, without the underflow guard: when the products fall
# below 2^-1022 they are rounded to multiples of 2^-1074 (not relatively), the float bound
# (3 + 16 eps) eps (|detleft| + |detright|) rounds to 0, and a float det of +-2^-1074 with the wrong
# sign is called certain.
def orient(a, b, c) -> np.ndarray:
    a, b, c = (np.asarray(x, dtype=np.float64) for x in (a, b, c))
    if any(x.ndim != 2 or x.shape[1] != 2 for x in (a, b, c)) or not a.shape == b.shape == c.shape:
        raise ValueError(f"orient needs three (N, 2) arrays, got shapes {a.shape}, {b.shape}, {c.shape}")
    detleft = (a[:, 0] - c[:, 0]) * (b[:, 1] - c[:, 1])  # (N,)
    detright = (a[:, 1] - c[:, 1]) * (b[:, 0] - c[:, 0])
    det = detleft - detright
    detsum = np.abs(detleft) + np.abs(detright)
    eps = 2.0**-53
    with np.errstate(invalid="ignore", over="ignore"):
        certain = np.abs(det) > (3 + 16 * eps) * eps * detsum  # no detsum >= 2^-900
        sign = np.where(certain, np.sign(det), 0).astype(np.int8)
    for k in np.flatnonzero(~certain):
        (ax, ay), (bx, by), (cx, cy) = ([Fraction(v) for v in p] for p in (a[k], b[k], c[k]))
        d = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        sign[k] = (d > 0) - (d < 0)
    return sign
