# cell: convex_hull
# breaks: test_convex_hull
# Andrew's chain on Shewchuk's filter with a Fraction fallback, but without the underflow guard:
# for a triangle near 1e-158 the products underflow, the float bound rounds to 0, and a turn with
# the wrong float sign is trusted (the chain keeps a vertex twice, or drops one).
def convex_hull(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"convex_hull needs an (N, 2) array, got shape {pts.shape}")
    if len(pts) == 0:
        return np.zeros((0, 2))
    eps = 2.0**-53

    def turn(o, a, b):
        detleft = (o[0] - b[0]) * (a[1] - b[1])
        detright = (o[1] - b[1]) * (a[0] - b[0])
        det = detleft - detright
        if abs(det) > (3 + 16 * eps) * eps * (abs(detleft) + abs(detright)):  # no underflow guard
            return (det > 0) - (det < 0)
        (ox, oy), (ax, ay), (bx, by) = ([Fraction(v) for v in p] for p in (o, a, b))
        d = (ax - ox) * (by - oy) - (ay - oy) * (bx - ox)
        return (d > 0) - (d < 0)

    order = [tuple(p) for p in np.unique(pts, axis=0).tolist()]
    if len(order) == 1:
        return np.array(order)
    lower, upper = [], []
    for p in order:
        while len(lower) >= 2 and turn(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(order):
        while len(upper) >= 2 and turn(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    start = min(range(len(hull)), key=lambda k: (hull[k][1], hull[k][0]))
    return np.array(hull[start:] + hull[:start])
