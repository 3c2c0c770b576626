# cell: polygon_area
# breaks: test_polygon_area
# The shoelace sum of the raw coordinates in rational arithmetic: exact, so right everywhere, and it
# never translates by vertex 0, the step this exercise teaches (float64 after a translation).
def polygon_area(poly: np.ndarray) -> float:
    poly = np.asarray(poly, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2:
        raise ValueError(f"polygon_area needs an (N, 2) array, got shape {poly.shape}")
    if len(poly) < 3:
        return 0.0
    pts = [(Fraction(x), Fraction(y)) for x, y in poly.tolist()]
    twice = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]))
    return float(twice / 2)
