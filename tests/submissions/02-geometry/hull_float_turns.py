# cell: convex_hull
# breaks: test_convex_hull
# Andrew's chain with the float sign of the cross product: near-collinear points a few ulps off a
# line are kept or dropped by rounding, not by geometry.
def convex_hull(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError("an (N, 2) array")
    if len(pts) == 0:
        return np.zeros((0, 2))

    def turn(o, a, b):
        d = (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
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
