# cell: orient_expansion
# breaks: test_orient_expansion
# Two-Sum that drops its error term: Grow-Expansion then keeps only the rounded running sum, the
# float determinant of the twelve terms, whose sign is wrong next to a line.
def orient_expansion(a, b, c) -> np.ndarray:
    a, b, c = (np.asarray(x, dtype=np.float64) for x in (a, b, c))
    if any(x.ndim != 2 or x.shape[1] != 2 for x in (a, b, c)) or not a.shape == b.shape == c.shape:
        raise ValueError(f"orient_expansion needs three (N, 2) arrays, got shapes {a.shape}, {b.shape}, {c.shape}")

    def two_sum(x, y):  # s + err == x + y exactly (Knuth)
        return x + y, np.zeros_like(x)  # the rounding error of the sum is dropped

    def halves(x):  # x == hi + lo, 26 bits each (Dekker's split)
        t = 134217729.0 * x  # 2^27 + 1
        hi = t - (t - x)
        return hi, x - hi

    def two_product(x, y):  # p + err == x * y exactly, without a fused multiply-add
        p = x * y
        xh, xl = halves(x)
        yh, yl = halves(y)
        return p, xl * yl - (((p - xh * yh) - xl * yh) - xh * yl)

    terms = []
    for p, q in ((a, b), (b, c), (c, a)):  # p_x q_y - p_y q_x, three times: (N,) components
        terms += [*two_product(p[:, 0], q[:, 1]), *two_product(-p[:, 1], q[:, 0])]
    expansion = terms[:1]  # non-overlapping, smallest first
    for t in terms[1:]:  # Grow-Expansion: carry t up through the components
        grown = []
        for comp in expansion:
            t, low = two_sum(t, comp)
            grown.append(low)
        expansion = grown + [t]
    sign = np.zeros(len(a), dtype=np.int8)
    for comp in expansion:  # the largest nonzero component decides
        sign = np.where(comp != 0, np.sign(comp), sign).astype(np.int8)
    return sign
