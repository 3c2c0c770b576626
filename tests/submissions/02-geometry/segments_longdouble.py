# cell: segments_intersect
# breaks: test_segments_intersect
# The straddle test and every degenerate case, on orientations computed in np.longdouble (a 64-bit
# mantissa) instead of exactly: an end point whose orientation is 2^-104 of its products is put on
# the other segment's line, and segments that are apart are reported as touching.
def segments_intersect(p1, p2, q1, q2) -> bool:
    P1, P2, Q1, Q2 = ([np.longdouble(float(v)) for v in pt] for pt in (p1, p2, q1, q2))

    def side(o, a, b):  # sign of (a - o) x (b - o), in 80-bit floats
        d = (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
        return int(d > 0) - int(d < 0)

    def boxed(o, a, r):
        return min(o[0], a[0]) <= r[0] <= max(o[0], a[0]) and min(o[1], a[1]) <= r[1] <= max(o[1], a[1])

    d1, d2, d3, d4 = side(Q1, Q2, P1), side(Q1, Q2, P2), side(P1, P2, Q1), side(P1, P2, Q2)
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True
    return bool((d1 == 0 and boxed(Q1, Q2, P1)) or (d2 == 0 and boxed(Q1, Q2, P2))
                or (d3 == 0 and boxed(P1, P2, Q1)) or (d4 == 0 and boxed(P1, P2, Q2)))
