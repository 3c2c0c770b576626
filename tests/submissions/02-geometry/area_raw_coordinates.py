# cell: polygon_area
# breaks: test_polygon_area
# The shoelace sum on raw coordinates: far from the origin x * y is huge and the area is lost in
# its rounding.
def polygon_area(poly: np.ndarray) -> float:
    poly = np.asarray(poly, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2:
        raise ValueError("an (N, 2) array")
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
