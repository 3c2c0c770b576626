# cell: segments_intersect
# breaks: test_segments_intersect
# The straddle test and the end point cases, but collinear segments are never tested for overlap:
# with all four orientations 0 it answers False.
def segments_intersect(p1, p2, q1, q2) -> bool:
    P1, P2, Q1, Q2 = ([Fraction(float(v)) for v in pt] for pt in (p1, p2, q1, q2))

    def side(o, a, b):
        d = (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
        return (d > 0) - (d < 0)

    def boxed(o, a, r):
        return min(o[0], a[0]) <= r[0] <= max(o[0], a[0]) and min(o[1], a[1]) <= r[1] <= max(o[1], a[1])

    d1, d2, d3, d4 = side(Q1, Q2, P1), side(Q1, Q2, P2), side(P1, P2, Q1), side(P1, P2, Q2)
    if d1 == d2 == d3 == d4 == 0:
        return False
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True
    return bool((d1 == 0 and boxed(Q1, Q2, P1)) or (d2 == 0 and boxed(Q1, Q2, P2))
                or (d3 == 0 and boxed(P1, P2, Q1)) or (d4 == 0 and boxed(P1, P2, Q2)))
