# cell: convex_hull
# breaks: test_convex_hull
# Returns the chain as Andrew's algorithm builds it, starting at the leftmost point (min x, then
# min y) instead of the lowest one (min y, then min x).
def convex_hull(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError("an (N, 2) array")
    if len(pts) == 0:
        return np.zeros((0, 2))

    def turn(o, a, b):
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
    return np.array(lower[:-1] + upper[:-1])
