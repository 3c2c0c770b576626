"""Chapter 02: computational geometry that survives floating point.

Specs (the ground truth, obviously right and slow): orientation, segment intersection, the
shoelace area and the convex hull computed with `fractions.Fraction`, which holds every float64
exactly. Fast: a vectorised orientation that trusts the float sign where Shewchuk's (1997) static
error bound says it may and falls back to `Fraction` for the uncertain few; a hull that discards
interior points with that orientation before Andrew's monotone chain; and the same filter as a
Triton kernel over float64.
"""
from fractions import Fraction

import numpy as np
import torch

from autograder.device import DEVICE
import triton  # noqa: E402  (after autograder.device, always)
import triton.language as tl  # noqa: E402

from autograder.cases.geometry import EXPANSION_LINE_STOP as LINE_STOP_EXPANSION
from autograder.cases.geometry import EXPANSION_RANGE, LINE_STOP, TASKS
from autograder.exercise import Case, require
from autograder.rules import kernel_rules
from autograder.tolerance import compare

EPS = 2.0**-53  # unit roundoff of float64: |fl(x) - x| <= EPS |x|
CCW_ERRBOUND = (3.0 + 16.0 * EPS) * EPS  # Shewchuk (1997), ccwerrboundA
TINY = 2.0**-900  # below this |detleft| + |detright| products may have underflowed: never certain


# ---------------------------------------------------------------- validation


def as_rows(*xs, name: str = "input") -> list[np.ndarray]:
    """Each x as a float64 (N, 2) array, all with the same N; ValueError otherwise."""
    rows = [np.asarray(x, dtype=np.float64) for x in xs]
    for r in rows:
        if r.ndim != 2 or r.shape[1] != 2:
            raise ValueError(f"{name}: expected arrays of shape (N, 2), got shape {r.shape}")
    if len({r.shape[0] for r in rows}) > 1:
        raise ValueError(f"{name}: the row counts differ: {[r.shape[0] for r in rows]}")
    return rows


# ---------------------------------------------------------------- orientation


def orient_fraction(a, b, c) -> np.ndarray:
    """Spec: the exact sign of (b - a) x (c - a) per row, in rational arithmetic. int8 (N,)."""
    a, b, c = as_rows(a, b, c, name="orient")
    out = np.zeros(len(a), dtype=np.int8)
    for k in range(len(a)):
        (ax, ay), (bx, by), (cx, cy) = (map(Fraction, p) for p in (a[k], b[k], c[k]))
        det = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        out[k] = (det > 0) - (det < 0)
    return out


def orient_naive(a, b, c) -> np.ndarray:
    """The float sign of (b - a) x (c - a): right almost always, wrong near a line."""
    a, b, c = as_rows(a, b, c, name="orient")
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return np.sign(det).astype(np.int8)


def orient_eps(a, b, c, eps: float = 1e-9) -> np.ndarray:
    """The float cross product, called 0 when |det| <= eps: the textbook EPS comparison."""
    a, b, c = as_rows(a, b, c, name="orient")
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return np.where(np.abs(det) <= eps, 0, np.sign(det)).astype(np.int8)


def orient_filter(a, b, c, tiny: float = TINY) -> tuple[np.ndarray, np.ndarray]:
    """Shewchuk's stage A: (sign of the float det, whether that sign is certain), each (N,). Rows
    with |detleft| + |detright| < tiny are never certain (the underflow guard; tiny = 0 drops it)."""
    a, b, c = as_rows(a, b, c, name="orient")
    detleft = (a[:, 0] - c[:, 0]) * (b[:, 1] - c[:, 1])  # (N,)
    detright = (a[:, 1] - c[:, 1]) * (b[:, 0] - c[:, 0])
    det = detleft - detright
    detsum = np.abs(detleft) + np.abs(detright)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: never certain
        certain = (np.abs(det) > CCW_ERRBOUND * detsum) & (detsum >= tiny)
    return np.sign(det).astype(np.int8), certain


def orient_exact(a, b, c) -> np.ndarray:
    """Fast exact orientation: the float filter, then `Fraction` for the rows it leaves uncertain."""
    a, b, c = as_rows(a, b, c, name="orient")
    sign, certain = orient_filter(a, b, c)
    unsure = np.flatnonzero(~certain)
    if unsure.size:
        sign[unsure] = orient_fraction(a[unsure], b[unsure], c[unsure])
    return sign


# ---------------------------------------------------------------- expansion arithmetic (Shewchuk 1997)

SPLITTER = 2.0**27 + 1  # Dekker (1971): x * (2^27 + 1) splits a double into two 26-bit halves


def two_sum(a, b):
    """Knuth's Two-Sum: (x, y) with x = fl(a + b) and x + y = a + b exactly. Any floats or arrays."""
    x = a + b
    b_virtual = x - a
    a_virtual = x - b_virtual
    return x, (a - a_virtual) + (b - b_virtual)


def fast_two_sum(a, b):
    """Dekker's Fast-Two-Sum: the same, in 3 operations, when |a| >= |b| (or a == 0)."""
    x = a + b
    return x, b - (x - a)


def split(a):
    """Dekker's split: (hi, lo), a = hi + lo exactly, each with at most 26 significant bits."""
    c = SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


def two_product(a, b):
    """Dekker's Two-Product (no fused multiply-add): (x, y), x = fl(a b), x + y = a b exactly."""
    x = a * b
    ah, al = split(a)
    bh, bl = split(b)
    err = ((x - ah * bh) - al * bh) - ah * bl  # each product of halves is exact (26 + 26 bits)
    return x, al * bl - err


def grow_expansion(e: list, b) -> list:
    """Shewchuk's Grow-Expansion: the components (increasing magnitude, non-overlapping, zeros
    allowed) of sum(e) + b, one longer than e. Components are arrays over rows, (N,) each."""
    out, q = [], b
    for comp in e:
        q, h = two_sum(q, comp)
        out.append(h)
    return out + [q]


def expansion_sign(e: list) -> np.ndarray:
    """The sign of an expansion: the sign of its largest nonzero component, per row. int8 (N,)."""
    sign = np.zeros(np.shape(e[0]), dtype=np.int8)
    for comp in e:  # from the smallest up: a larger nonzero component overrides
        sign = np.where(comp != 0, np.sign(comp), sign).astype(np.int8)
    return sign


def orient_terms(a, b, c) -> list:
    """The 12 components, two per Two-Product, of ax by - ay bx + bx cy - by cx + cx ay - cy ax
    (= (b - a) x (c - a), Shewchuk's orient2dexact): each (N,)."""
    terms = []
    for (p, q) in ((a, b), (b, c), (c, a)):
        terms += two_product(p[:, 0], q[:, 1]) + two_product(-p[:, 1], q[:, 0])  # negating is exact
    return list(terms)


def orient_expansion(a, b, c) -> np.ndarray:
    """Exact orientation of every row by floating-point expansions: 6 Two-Products, their 12 terms
    summed exactly by Grow-Expansion, the sign of the top nonzero component. Exact while every
    nonzero coordinate lies in EXPANSION_RANGE (no product or error term underflows). int8 (N,)."""
    a, b, c = as_rows(a, b, c, name="orient_expansion")
    terms = orient_terms(a, b, c)
    e = [terms[0]]
    for t in terms[1:]:
        e = grow_expansion(e, t)
    return expansion_sign(e)


def in_expansion_range(*xs) -> np.ndarray:
    """Per row: every coordinate is 0 or has magnitude in EXPANSION_RANGE. bool (N,)."""
    lo, hi = EXPANSION_RANGE
    ok = [((x == 0) | ((np.abs(x) >= lo) & (np.abs(x) <= hi))).all(axis=1) for x in xs]
    return np.logical_and.reduce(ok)


def orient_adaptive(a, b, c) -> np.ndarray:
    """The filter on every row; expansions for the uncertain rows in range; Fraction for the few
    whose products could underflow. int8 (N,)."""
    a, b, c = as_rows(a, b, c, name="orient")
    sign, certain = orient_filter(a, b, c)
    unsure = ~certain
    fits = unsure & in_expansion_range(a, b, c)
    if fits.any():
        sign[fits] = orient_expansion(a[fits], b[fits], c[fits])
    rest = np.flatnonzero(unsure & ~fits)
    if rest.size:
        sign[rest] = orient_fraction(a[rest], b[rest], c[rest])
    return sign


def uncertain_share(a, b, c) -> float:
    """The share of rows the filter cannot decide."""
    return float(1.0 - orient_filter(a, b, c)[1].mean()) if len(np.asarray(a)) else 0.0


# ---------------------------------------------------------------- segments


def _orient1(p, q, r) -> int:
    return int(orient_fraction([p], [q], [r])[0])


def _between(p, q, r) -> bool:
    """r, collinear with p and q, lies in their bounding box (so on the closed segment pq)."""
    return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])


def segments_intersect_spec(p1, p2, q1, q2) -> bool:
    """Whether closed segments p1p2 and q1q2 share a point, exactly (Cormen et al., ch. 33.1)."""
    p1, p2, q1, q2 = (np.asarray(x, dtype=np.float64) for x in (p1, p2, q1, q2))
    d1, d2 = _orient1(q1, q2, p1), _orient1(q1, q2, p2)
    d3, d4 = _orient1(p1, p2, q1), _orient1(p1, p2, q2)
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True
    return ((d1 == 0 and _between(q1, q2, p1)) or (d2 == 0 and _between(q1, q2, p2))
            or (d3 == 0 and _between(p1, p2, q1)) or (d4 == 0 and _between(p1, p2, q2)))


# ---------------------------------------------------------------- area


def _polygon(poly) -> np.ndarray:
    poly = np.asarray(poly, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2:
        raise ValueError(f"polygon: expected shape (N, 2), got {poly.shape}")
    return poly


def shoelace_fraction(poly) -> float:
    """Spec: the exact signed shoelace area of the vertices as given, rounded once to float."""
    poly = _polygon(poly)
    if len(poly) < 3:
        return 0.0
    pts = [(Fraction(x), Fraction(y)) for x, y in poly.tolist()]
    twice = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]))
    return float(twice / 2)


def shoelace_raw(poly) -> float:
    """The shoelace formula on raw coordinates: loses digits far from the origin."""
    poly = _polygon(poly)
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) / 2)


def shoelace_translated(poly) -> float:
    """The shoelace formula after moving vertex 0 to the origin."""
    poly = _polygon(poly)
    if len(poly) < 3:
        return 0.0
    return shoelace_raw(poly - poly[0])


# ---------------------------------------------------------------- convex hull


def _start_at_lowest(hull: list) -> np.ndarray:
    k = min(range(len(hull)), key=lambda i: (hull[i][1], hull[i][0]))
    return np.array(hull[k:] + hull[:k], dtype=np.float64).reshape(-1, 2)


def _chain(pts: list, turn) -> np.ndarray:
    """Andrew's monotone chain over points sorted by (x, y), without duplicates; `turn(o, a, b)` is
    the sign of (a - o) x (b - o). Strict: a point where the chain goes straight is dropped."""
    if len(pts) <= 1:
        return np.array(pts, dtype=np.float64).reshape(-1, 2)
    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and turn(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and turn(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return _start_at_lowest(lower[:-1] + upper[:-1])


def _sorted_unique(points) -> list:
    pts = _polygon(points)
    return [tuple(p) for p in np.unique(pts, axis=0).tolist()] if len(pts) else []


def hull_spec(points) -> np.ndarray:
    """Spec: Andrew's monotone chain with exact rational turns; CCW from the lowest point."""
    return _chain(_sorted_unique(points), lambda o, a, b: _orient1(o, a, b))


def hull_float(points) -> np.ndarray:
    """The same chain with the float sign of the cross product: wrong near collinear points."""
    def turn(o, a, b):
        det = (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
        return (det > 0) - (det < 0)
    return _chain(_sorted_unique(points), turn)


def _turn_filtered(o, a, b) -> int:
    """Scalar exact turn: Shewchuk's float filter, `Fraction` when it is unsure."""
    detleft = (o[0] - b[0]) * (a[1] - b[1])
    detright = (o[1] - b[1]) * (a[0] - b[0])
    det = detleft - detright
    detsum = abs(detleft) + abs(detright)
    if abs(det) > CCW_ERRBOUND * detsum and detsum >= TINY:
        return (det > 0) - (det < 0)
    return _orient1(o, a, b)


def convex_hull_fast(points) -> np.ndarray:
    """Exact hull at scale: drop the points strictly inside the polygon of 8 extreme points
    (Akl and Toussaint, 1978) with the vectorised exact orientation, then run the chain."""
    pts = _polygon(points)
    if len(pts) > 64:
        dirs = np.array([[1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0], [-1, -1], [0, -1], [1, -1]], dtype=np.float64)
        extremes = pts[np.unique(np.argmax(pts @ dirs.T, axis=0))]  # (<= 8, 2)
        poly = hull_spec(extremes)
        if len(poly) >= 3:
            inside = np.ones(len(pts), dtype=bool)
            for k in range(len(poly)):  # strictly left of every CCW edge: strictly inside
                idx = np.flatnonzero(inside)
                a = np.broadcast_to(poly[k], (idx.size, 2))
                b = np.broadcast_to(poly[(k + 1) % len(poly)], (idx.size, 2))
                inside[idx] = orient_exact(a, b, pts[idx]) > 0
            pts = pts[~inside]
    return _chain(_sorted_unique(pts), _turn_filtered)


# ---------------------------------------------------------------- the filter as a Triton kernel


@triton.jit
def orient_filter_kernel(
    a_ptr,  # *f64: (N, 2) row-major
    b_ptr,  # *f64: (N, 2)
    c_ptr,  # *f64: (N, 2)
    consts_ptr,  # *f64: [(3 + 16 eps) eps, TINY] (float literals in a kernel are float32)
    sign_ptr,  # *i8: (N,), written
    certain_ptr,  # *i1: (N,), written
    n,  # number of rows
    BLOCK: tl.constexpr,  # rows per program, a power of two
):
    rows = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)  # (BLOCK,)
    mask = rows < n
    ax = tl.load(a_ptr + 2 * rows, mask=mask, other=0.0)
    ay = tl.load(a_ptr + 2 * rows + 1, mask=mask, other=0.0)
    bx = tl.load(b_ptr + 2 * rows, mask=mask, other=0.0)
    by = tl.load(b_ptr + 2 * rows + 1, mask=mask, other=0.0)
    cx = tl.load(c_ptr + 2 * rows, mask=mask, other=0.0)
    cy = tl.load(c_ptr + 2 * rows + 1, mask=mask, other=0.0)
    detleft = (ax - cx) * (by - cy)
    detright = (ay - cy) * (bx - cx)
    det = detleft - detright
    detsum = tl.abs(detleft) + tl.abs(detright)
    errbound = tl.load(consts_ptr) * detsum
    certain = (tl.abs(det) > errbound) & (detsum >= tl.load(consts_ptr + 1))
    sign = tl.where(det > 0, 1, tl.where(det < 0, -1, 0)).to(tl.int8)
    tl.store(sign_ptr + rows, sign, mask=mask)
    tl.store(certain_ptr + rows, certain, mask=mask)


def orient_filter_triton(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, block: int = 1024):
    """(sign int8 (N,), certain bool (N,)) of float64 (N, 2) tensors, on their device."""
    for t in (a, b, c):
        if t.dim() != 2 or t.shape[1] != 2 or t.dtype != torch.float64:
            raise ValueError(f"expected float64 tensors of shape (N, 2), got {t.dtype} {tuple(t.shape)}")
    if not a.shape == b.shape == c.shape:
        raise ValueError(f"the shapes differ: {tuple(a.shape)}, {tuple(b.shape)}, {tuple(c.shape)}")
    n = a.shape[0]
    sign = torch.empty(n, dtype=torch.int8, device=a.device)
    certain = torch.empty(n, dtype=torch.bool, device=a.device)
    if n == 0:
        return sign, certain
    consts = torch.tensor([CCW_ERRBOUND, TINY], dtype=torch.float64, device=a.device)
    grid = (triton.cdiv(n, block),)
    orient_filter_kernel[grid](a.contiguous(), b.contiguous(), c.contiguous(), consts, sign, certain, n, BLOCK=block)
    return sign, certain


def orient_filter_torch(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor):
    """The same filter in plain torch ops (the baseline the kernel is timed against)."""
    detleft = (a[:, 0] - c[:, 0]) * (b[:, 1] - c[:, 1])
    detright = (a[:, 1] - c[:, 1]) * (b[:, 0] - c[:, 0])
    det = detleft - detright
    detsum = detleft.abs() + detright.abs()
    return torch.sign(det).to(torch.int8), (det.abs() > CCW_ERRBOUND * detsum) & (detsum >= TINY)


# ---------------------------------------------------------------- references and checks (the grader's process)


def _unchanged(got) -> None:
    if "unchanged" in got and not bool(got["unchanged"]):
        raise AssertionError("changes its inputs; work on copies (or new arrays), never in place")


def _raises(case: Case, got) -> bool:
    """For a case that must raise: check it did, and say so. False for any other case."""
    if "raise" not in case.kind:
        return False
    said = str(got.get("raised", got.get("error", "nothing")))
    if said != "ValueError":
        raise AssertionError(f"should raise ValueError for this shape, but {'it ' + said if said.startswith('returned') else 'raises ' + said}")
    return True


def _ref_raise_or(case: Case, compute) -> dict:
    return {"raised": np.array("ValueError")} if "raise" in case.kind else compute()


def _ref_orient(case: Case):
    return _ref_raise_or(case, lambda: {"sign": orient_exact(*case.args), "unchanged": np.array(True)})


_ORIENT_HINTS = {
    "long double": "the determinant is below 2^-64 of the products here, so a wider float (np.longdouble: a 64-bit "
             "mantissa) rounds it away too: only rational (or big-integer) arithmetic is exact (section 3)",
    "underflow": "the products are below 2^-1022, where rounding is no longer relative and the float bound "
                 "rounds to 0: send rows with |detleft| + |detright| < 2^-900 to the exact path (the underflow "
                 "guard, section 3)",
    "1e-8": "a fixed eps calls every such triple collinear; there is no eps in an exact test",
    "1e8": "the cross products exceed 2^53 here, so the float det is rounded: fall back to exact arithmetic when the filter is unsure",
    "Kettner": "the float sign is wrong next to the line: trust it only where the error bound says so",
    "ulps": "the float sign is wrong next to the line: trust it only where the error bound says so",
    "decimal": "decimal coordinates are not exact in binary: the exact sign of the float inputs is rarely 0",
}


FRACTIONS_PER_UNSURE_ROW = 64  # 6 coordinates and the arithmetic on them, with room to spare
FRACTIONS_SLACK = 1_000
LINES_PER_UNSURE_ROW = 40  # the exact path's loop body, with room to spare
LINES_SLACK = 2_000


def _check_work(case: Case, got) -> None:
    """The exact path runs on the rows the filter leaves uncertain, not on every row: counted in
    Fractions built, in Python lines run, and refused in object arrays."""
    n = len(case.args[0])
    unsure = int(np.sum(~orient_filter(*case.args)[1]))
    step = "run the exact path only on the rows the filter cannot decide (section 3, Algorithm 1, lines 4 to 7)"
    where = str(got["object_dtype"])
    if where:
        raise AssertionError(f"makes an object array ({where}): NumPy then runs Python arithmetic on every row; {step}, "
                             "and compute the filter in float64 on whole arrays")
    built = int(got["fractions_built"])
    if bool(got["stopped"]) or built > FRACTIONS_PER_UNSURE_ROW * unsure + FRACTIONS_SLACK:
        said = f"more than {built - 1:,}" if bool(got["stopped"]) else f"{built:,}"
        raise AssertionError(f"built {said} Fractions for {n:,} random rows, of which the float filter leaves {unsure} "
                             f"uncertain: {step}, not on every row")
    lines = int(got["lines"])
    if lines > LINES_PER_UNSURE_ROW * unsure + LINES_SLACK:
        said = f"more than {LINE_STOP:,}" if lines > LINE_STOP else f"{lines:,}"
        raise AssertionError(f"ran {said} lines of Python for {n:,} random rows, of which the float filter leaves "
                             f"{unsure} uncertain: a loop over every row is what the filter saves; compute it on whole "
                             f"arrays and {step}")


def _check_orient(case: Case, got, want):
    if _raises(case, got):
        return
    if "fractions_built" in got:
        _check_work(case, got)
    require(got, want)
    _unchanged(got)
    try:
        compare(got["sign"], want["sign"], "sign")
    except AssertionError as e:
        hint = next((h for key, h in _ORIENT_HINTS.items() if key in case.kind), "")
        raise AssertionError(f"{e}{'; ' + hint if hint else ''}") from None


def _ref_expansion(case: Case):
    return _ref_raise_or(case, lambda: {"sign": orient_exact(*case.args), "unchanged": np.array(True)})


_EXPANSION_HINTS = {
    "2^-64": "every product's error term counts here: Two-Product must split both factors into 26-bit halves "
             "(Dekker) so that the four partial products are exact, and Grow-Expansion must keep every Two-Sum's "
             "error term (sections 3a and 3b)",
    "Kettner": "the float sign is wrong next to the line: sum all twelve terms of the six Two-Products exactly, "
               "keeping every Two-Sum's error term (section 3b)",
}
_EXPANSION_STEP = ("keep every Two-Sum's error term, split both factors of each Two-Product (Dekker), and read the "
                   "sign of the largest nonzero component: components are stored from the smallest up (sections 3a, 3b)")


def _check_expansion(case: Case, got, want):
    if _raises(case, got):
        return
    if str(got.get("refused", "")):
        raise AssertionError(f"{got['refused']}: the exact sign must come from float64 expansions, computed on whole "
                             "arrays (section 3b)")
    if bool(got.get("stopped", False)):
        raise AssertionError(f"ran more than {LINE_STOP_EXPANSION:,} lines of Python on {len(case.args[0]):,} rows: a loop "
                             "over rows is what vectorising saves; loop over the expansion's components, each an "
                             "array over all rows (section 3b)")
    require(got, want)
    _unchanged(got)
    g = got["sign"]
    if g.dtype != np.int8 or g.shape != want["sign"].shape:
        raise AssertionError(f"returns {g.dtype} of shape {g.shape}; expected int8 of shape {want['sign'].shape}")
    wrong = int(np.sum(g != want["sign"]))
    if wrong:
        hint = next((h for key, h in _EXPANSION_HINTS.items() if key in case.kind), _EXPANSION_STEP)
        raise AssertionError(f"the sign is wrong on {wrong} of {len(g)} rows; {hint}")


def _ref_segments(case: Case):
    hits = [segments_intersect_spec(*(x[k] for x in case.args)) for k in range(len(case.args[0]))]
    return {"hit": np.array(hits), "not_bool": np.array(""), "unchanged": np.array(True)}


def _check_segments(case: Case, got, want):
    require(got, want)
    _unchanged(got)
    if str(got["not_bool"]):
        raise AssertionError(f"returns {got['not_bool']}, not a Python bool: return bool(...)")
    try:
        compare(got["hit"], want["hit"], "intersects")
    except AssertionError as e:
        wrong = got["hit"] != want["hit"]
        said = "True where the segments are apart" if (got["hit"] & wrong).any() else "False where the segments meet"
        hint = next((h for key, h in _ORIENT_HINTS.items() if key in case.kind), "")
        raise AssertionError(f"{e} (it says {said}){'; ' + hint if hint else ''}") from None


def _ref_area(case: Case):
    return _ref_raise_or(case, lambda: {"area": np.array(shoelace_fraction(*case.args)), "type": np.array("float"),
                                        "unchanged": np.array(True)})


def _check_area(case: Case, got, want):
    if _raises(case, got):
        return
    require(got, want)
    _unchanged(got)
    if str(got["type"]) != "float":
        raise AssertionError(f"returns {got['type']}, not a Python float: return float(...)")
    try:
        compare(got["area"], want["area"], "area")
    except AssertionError as e:
        hint = "; translate by vertex 0 before the products" if "translated" in case.kind else ""
        raise AssertionError(f"{e}{hint}") from None


def _ref_hull(case: Case):
    return _ref_raise_or(case, lambda: {"hull": hull_spec(*case.args), "unchanged": np.array(True)})


def _check_hull(case: Case, got, want):
    if _raises(case, got):
        return
    require(got, want)
    _unchanged(got)
    try:
        _same_hull(got, want)
    except AssertionError as e:
        hint = next((h for key, h in _ORIENT_HINTS.items() if key in case.kind), "")
        raise AssertionError(f"{e}{'; ' + hint if hint else ''}") from None


def _same_hull(got, want) -> None:
    g, w = got["hull"], want["hull"]
    if g.dtype != np.float64 or g.ndim != 2 or g.shape[1:] != (2,):
        raise AssertionError(f"returns an array of dtype {g.dtype} and shape {g.shape}; expected float64 (H, 2)")
    if g.shape == w.shape and np.array_equal(g, w):
        return
    as_set = lambda x: {tuple(r) for r in x.tolist()}  # noqa: E731
    if len(g) == len(w) and as_set(g) == as_set(w):
        rolled = any(np.array_equal(np.roll(g, -k, axis=0), w) for k in range(len(g)))
        raise AssertionError("the right vertices, in the wrong order: " + (
            "start at the lowest point (min y, then min x)" if rolled else "list them counter-clockwise"))
    extra, missing = as_set(g) - as_set(w), as_set(w) - as_set(g)
    if len(g) > len(as_set(g)):
        raise AssertionError("repeats a vertex: merge duplicated points (a turn with the wrong sign can also keep a "
                             "vertex twice)")
    if extra and not missing:
        raise AssertionError(f"keeps {len(extra)} point(s) that are not vertices of the exact hull "
                             "(points on an edge, or points a float orientation misjudged): pop on turn <= 0")
    if missing and not extra:
        raise AssertionError(f"drops {len(missing)} vertices of the exact hull")
    raise AssertionError(f"{len(extra)} row(s) are not vertices of the exact hull and {len(missing)} vertices are missing "
                         "(rows must be input points, computed with an exact orientation)")


def _ref_filter(case: Case):
    def compute():
        sign, certain = orient_filter(*case.args)
        return {"sign": sign, "certain": certain, "launches": np.array(0), "on_device": np.array(True),
                "unchanged": np.array(True)}
    return _ref_raise_or(case, compute)


HOST_OPS_ALLOWED = 40  # checks, allocations, contiguous copies, the constants tensor: a handful


def _check_filter(case: Case, got, want):
    if _raises(case, got):
        return
    require(got, want)
    _unchanged(got)
    n = len(want["sign"])
    for key, dtype in (("sign", np.int8), ("certain", np.bool_)):
        if got[key].shape != (n,) or got[key].dtype != dtype:
            raise AssertionError(f"{key}: expected {np.dtype(dtype).name} of shape ({n},), got {got[key].dtype} {got[key].shape}")
    if not bool(got["on_device"]):
        raise AssertionError("returns tensors on another device: allocate the outputs on the inputs' device")
    launches = int(got["launches"])
    if n == 0 and launches:
        raise AssertionError("launches a kernel for N = 0: return the empty outputs at once")
    if n and not launches:
        raise AssertionError("launched no Triton kernel: the filter must run in your @triton.jit kernel")
    sure = got["certain"]
    known = sure & want["certain"]  # the reference sign is exact there (Shewchuk's theorem)
    wrong = int(np.sum(got["sign"][known] != want["sign"][known]))
    check = np.flatnonzero(sure & ~want["certain"])
    if check.size:
        exact = orient_fraction(*(x[check] for x in case.args))
        wrong += int(np.sum(got["sign"][check] != exact))
    if wrong:
        if "underflow" in case.kind:
            raise AssertionError(f"calls {wrong} row(s) certain whose sign is wrong: below 2^-1022 the products "
                                 "underflow and the float bound rounds to 0; certain also needs |detleft| + |detright| "
                                 ">= 2^-900 (the underflow guard, section 3), loaded from a float64 tensor like the bound")
        raise AssertionError(f"calls {wrong} row(s) certain whose sign is wrong: the bound is too small "
                             "(Shewchuk's (3 + 16 eps) eps (|detleft| + |detright|), eps = 2^-53)")
    if "non-degenerate" in case.kind and sure.mean() < 0.99:
        raise AssertionError(f"leaves {1 - sure.mean():.1%} of random rows uncertain (at most 1% allowed): "
                             "the bound is far too large, or certain is not |det| > errbound")
    if n:
        _kernel_does_the_work(got, n)


def _kernel_does_the_work(got, n: int) -> None:
    """One launch of the learner's orient_filter_kernel, and a host side that only allocates, copies
    and launches (no torch arithmetic, and a handful of ops, not a loop over rows)."""
    kernel_rules(got, kernels={"orient_filter_kernel"}, launches=1, host=True,
                 see="section 7: one launch covers every row, one program per block")
    ops = int(got["host_op_count"])
    if ops > HOST_OPS_ALLOWED:
        raise AssertionError(f"ran {ops} torch ops on the host for {n} rows (at most {HOST_OPS_ALLOWED}): the wrapper "
                             "allocates, makes the inputs contiguous and launches once; a loop over rows (.item(), "
                             "indexing, writing elements) belongs in the kernel (section 7)")


EXERCISES = {
    "orient": TASKS["orient"].graded(_ref_orient, _check_orient),
    "orient_expansion": TASKS["orient_expansion"].graded(_ref_expansion, _check_expansion),
    "segments_intersect": TASKS["segments_intersect"].graded(_ref_segments, _check_segments),
    "polygon_area": TASKS["polygon_area"].graded(_ref_area, _check_area),
    "convex_hull": TASKS["convex_hull"].graded(_ref_hull, _check_hull),
    "orient_filter_triton": TASKS["orient_filter_triton"].graded(_ref_filter, _check_filter),
}


# ---------------------------------------------------------------- benchmark (make bench)


def bench(timer, cuda: bool) -> dict:
    """Rows per second of the orientation filter: the Triton kernel and the same filter in torch
    ops, on float64 (N, 2) inputs (48 bytes read and 2 written per row)."""
    sizes = [2**k for k in range(16, 27, 2)] if cuda else [2**10, 2**12]
    rows = {"rows": [], "dtype": "float64", "triton_rows_per_s": [], "torch_rows_per_s": [], "uncertain_share": []}
    gen = torch.Generator(device="cpu").manual_seed(0)
    for n in sizes:
        a, b, c = (torch.rand(n, 2, generator=gen, dtype=torch.float64).to(DEVICE) for _ in range(3))
        rows["rows"].append(n)
        rows["triton_rows_per_s"].append(n / timer(lambda: orient_filter_triton(a, b, c)))
        rows["torch_rows_per_s"].append(n / timer(lambda: orient_filter_torch(a, b, c)))
        rows["uncertain_share"].append(float(1 - orient_filter_triton(a, b, c)[1].float().mean()))
        del a, b, c
    return rows


# ---------------------------------------------------------------- gpu-check


def gpu_checks(small: bool) -> dict:
    """The filter kernel on the device against the exact orientation: sound on hard inputs, and
    certain on at least 99% of random rows."""
    from autograder.cases.geometry import near_line, wide_magnitudes

    def filter_on(n: int, make):
        def check():
            rng = np.random.default_rng(n)
            a, b, c = make(rng, n)
            sign, certain = orient_filter_triton(*(torch.from_numpy(x).to(DEVICE) for x in (a, b, c)))
            sign, certain = sign.cpu().numpy(), certain.cpu().numpy()
            idx = np.flatnonzero(certain)
            exact = orient_exact(a[idx], b[idx], c[idx])
            assert np.array_equal(sign[idx], exact), f"orient_filter_triton is certain and wrong on {make.__name__}, N = {n}"
            if make is _random:
                assert certain.mean() >= 0.99, f"only {certain.mean():.2%} certain on random rows, N = {n}"
        return check

    sizes = [3001] if small else [2**20 + 7, 2**22]
    return {f"orient_filter_triton {make.__name__} N={n}": filter_on(n, make)
            for n in sizes for make in (_random, near_line, wide_magnitudes)}


def _random(rng, n):
    return tuple(rng.uniform(-1, 1, (n, 2)) for _ in range(3))
