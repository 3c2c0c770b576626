# cell: convex_hull
# breaks: test_convex_hull
# Andrew's chain with every turn taken as the sign of the cross product in np.longdouble (a 64-bit
# mantissa): right next to a line at float64's resolution, wrong for a vertex whose turn is 2^-104
# of its products, which a long double rounds to a straight line.
def convex_hull(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"convex_hull needs an (N, 2) array, got shape {pts.shape}")
    if len(pts) == 0:
        return np.zeros((0, 2))

    def turn(o, a, b):  # sign of (a - o) x (b - o), in 80-bit floats
        (ox, oy), (ax, ay), (bx, by) = ([np.longdouble(v) for v in p] for p in (o, a, b))
        d = (ax - ox) * (by - oy) - (ay - oy) * (bx - ox)
        return int(d > 0) - int(d < 0)

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
