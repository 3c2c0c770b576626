# cell: orient_expansion
# breaks: test_orient_expansion
# Right on every row, another way: the same expansions, one row at a time in a Python loop.
# Stopped by the line count: the exercise is vectorised over rows.
def orient_expansion(a, b, c) -> np.ndarray:
    a, b, c = (np.asarray(x, dtype=np.float64) for x in (a, b, c))
    if any(x.ndim != 2 or x.shape[1] != 2 for x in (a, b, c)) or not a.shape == b.shape == c.shape:
        raise ValueError(f"orient_expansion needs three (N, 2) arrays, got shapes {a.shape}, {b.shape}, {c.shape}")

    def two_sum(x, y):
        s = x + y
        y_part = s - x
        return s, (x - (s - y_part)) + (y - y_part)

    def two_product(x, y):
        p = x * y
        t, u = 134217729.0 * x, 134217729.0 * y
        xh, yh = t - (t - x), u - (u - y)
        return p, (x - xh) * (y - yh) - (((p - xh * yh) - (x - xh) * yh) - xh * (y - yh))

    sign = np.zeros(len(a), dtype=np.int8)
    for k in range(len(a)):  # one row at a time: exact, but Python runs every step of every row
        (ax, ay), (bx, by), (cx, cy) = a[k], b[k], c[k]
        terms = [*two_product(ax, by), *two_product(-ay, bx), *two_product(bx, cy), *two_product(-by, cx),
                 *two_product(cx, ay), *two_product(-cy, ax)]
        e = terms[:1]
        for t in terms[1:]:
            grown = []
            for comp in e:
                t, low = two_sum(t, comp)
                grown.append(low)
            e = grown + [t]
        top = [x for x in e if x != 0]
        sign[k] = 0 if not top else (1 if top[-1] > 0 else -1)
    return sign
