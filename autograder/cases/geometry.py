"""Chapter 02's cases: what the learner's geometry functions are run on, and how (the learner's kernel).

Every run also records whether the learner's function changed its inputs (no exercise may). The
adversarial generators live here too, because the page draws its pictures from the same inputs
the grader uses: Kettner et al.'s grid of points next to a line, near-degenerate triples built by
rounding a point on a line and nudging it by a few units in the last place, and integer lines whose
products no longer fit in a float64 mantissa.
"""
import ast
import copy
import decimal
import fractions
import inspect
import sys
import textwrap
from fractions import Fraction

import numpy as np
import torch

from autograder.device import DEVICE

from autograder.exercise import NO_NUMPY, Case, Task, to_numpy
from autograder.forbidden import reachable
from autograder.watch import HostOps, count_lines

U = 2.0**-53  # the unit roundoff of float64

# Rows (a, b, c) found by search on which |det| lies between eps * (|detleft| + |detright|) and
# Shewchuk's (3 + 16 eps) eps * (...), with the float sign of det wrong: a filter whose bound
# forgets the factor 3 calls them certain. (Computed without fused multiply-adds.)
BOUND_TRAPS = np.array([
    [[0.9096540326892106, -0.2694879561767678], [-0.3492136747996517, -0.9054208226003304], [0.705900516243703, -0.3724166094310007]],
    [[0.6871820774332562, 0.07303753391445089], [-0.8093168770306378, -0.5505798383456173], [-0.06253599475371369, -0.2393831415016658]],
    [[0.06246126846952027, -0.5287068079786552], [-0.23892914745522198, 0.6804517325541568], [-0.09312910419313648, 0.09551154134241822]],
    [[0.8777133520105451, 0.3332085270389782], [-0.8167145167358068, -0.268469136355193], [-0.2661119649687634, -0.07295461318391792]],
    [[0.7633783776789802, -0.7223013522160553], [-0.31366667319080754, 0.17544803382729723], [0.26205767476631775, -0.30443549517766116]],
])  # (5, 3, 2)

# Rows (a, b, c) near 1e-158 on which every product underflows below 2^-1022: the two products of
# Shewchuk's determinant (origin c) round to neighbouring multiples of 2^-1074, so the float det is
# +-2^-1074, the float bound (3 + 16 eps) eps (|detleft| + |detright|) rounds to 0, and a filter
# without its underflow guard calls the float sign certain; it is wrong on every row (the exact
# sign is +1, the float one -1). Built by rounding a - c and b - c (c_x is a quarter of an ulp of
# a_x) so that the exact products fall on either side of a rounding boundary. (5, 3, 2)
UNDERFLOW_TRAPS = np.array([
    [[1.4255878696015992e-160, 1.3679900716355163e-160], [2.6579696709505364e-160, 2.5505801487949018e-160], [-7.896825413969131e-177, 0.0]],
    [[2.41217195926283e-159, 2.519186526026575e-159], [4.2281072465259994e-159, 4.4156846965830453e-159], [-1.263492066235061e-175, 0.0]],
    [[3.675725472676474e-158, 3.406705667905964e-158], [6.808658934440904e-158, 6.310345306040752e-158], [-2.0215873059760975e-174, 0.0]],
    [[6.233389734210104e-157, 5.98253359426008e-157], [1.1600499198199259e-156, 1.1133649446388838e-156], [-3.234539689561756e-173, 0.0]],
    [[4.809219096461792e-156, 4.544667908667572e-156], [9.064964920930267e-156, 8.566308654903753e-156], [-2.587631751649405e-172, 0.0]],
    [[2.345830014559537e-159, 2.1517429655040567e-159], [4.3778308652087754e-159, 4.015622065500877e-159], [-1.263492066235061e-175, 0.0]],
])

# a = (0, 0), b = (1 + 2^-52, 1), c = (1, 1 - 2^-52): the exact determinant is -2^-104, below 2^-64
# of the products, so an 80-bit long double (64-bit mantissa) rounds it away. (3, 2)
FINE_TRIPLE = np.array([[0.0, 0.0], [1.0 + 2.0**-52, 1.0], [1.0, 1.0 - 2.0**-52]])


# ---------------------------------------------------------------- generators shared with the page


def kettner_grid(n: int = 64, base=(0.5, 0.5), q=(12.0, 12.0), r=(24.0, 24.0)):
    """Kettner et al. (2008)'s example: p = base + (i, j) * 2^-53 for an n x n grid, next to the
    line through q and r. Returns p, q, r as (n*n, 2) arrays (q and r repeated), i fastest in y."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    p = np.stack([base[0] + i.ravel() * U, base[1] + j.ravel() * U], axis=1)  # (n*n, 2)
    return p, np.tile(q, (n * n, 1)), np.tile(r, (n * n, 1))


def near_line(rng: np.random.Generator, n: int, scale: float = 1.0, ulps: int = 4):
    """n triples (a, b, c) with c a rounded point of line ab (between and beyond a and b), nudged
    by up to `ulps` units in the last place per coordinate: orientation's hardest inputs."""
    a = rng.uniform(-scale, scale, (n, 2))
    b = rng.uniform(-scale, scale, (n, 2))
    t = rng.uniform(-1.0, 2.0, (n, 1))
    c = a + t * (b - a)
    c = c + rng.integers(-ulps, ulps + 1, (n, 2)) * np.spacing(np.abs(c))
    return a, b, c


def big_integer_lines(rng: np.random.Generator, n: int, size: int = 10**8):
    """n triples of integer points near `size`: even rows exactly collinear, odd rows with b - a
    and c - a almost parallel, their cross product exactly +-1 (extended Euclid). Products reach
    1e17 > 2^53, so float64 rounds them and the float det is noise."""
    a = rng.integers(-size, size, (n, 2))
    ba, ca = np.zeros((n, 2), np.int64), np.zeros((n, 2), np.int64)
    for k in range(n):
        p, q = (int(v) for v in rng.integers(size, 3 * size, 2))
        if k % 2 == 0:  # collinear: c - a = m * (b - a) / g with g = gcd
            g, m = int(np.gcd(p, q)), int(rng.integers(1, 3))
            ba[k], ca[k] = (p, q), (-(p // g) * m, -(q // g) * m)
            continue
        while np.gcd(p, q) != 1:
            q += 1
        x, y = _bezout(p, q)  # p x + q y = 1, so (p, q) x (-y, x) = 1
        ba[k], ca[k] = ((p, q), (-y, x)) if k % 4 == 1 else ((-y, x), (p, q))
    return a.astype(np.float64), (a + ba).astype(np.float64), (a + ca).astype(np.float64)


def _bezout(p: int, q: int) -> tuple[int, int]:
    """x, y with p x + q y = gcd(p, q) (the extended Euclidean algorithm)."""
    x0, y0, x1, y1 = 1, 0, 0, 1
    while q:
        t = p // q
        p, q, x0, y0, x1, y1 = q, p - t * q, x1, y1, x0 - t * x1, y0 - t * y1
    return x0, y0


def decimal_line(n: int, slope: float = 0.7, icpt: float = 0.3, step: float = 0.1):
    """n points x = k * step, y = icpt + slope * x as float64 decimals: collinear on paper,
    not quite in float64."""
    x = np.arange(1, n + 1) * step
    return np.stack([x, icpt + slope * x], axis=1)


def wide_magnitudes(rng: np.random.Generator, n: int):
    """n triples with coordinates of random sign and magnitude in [1e-30, 1e30], a tenth of them 0;
    every other c a rounded point of line ab."""
    def coords():
        x = rng.choice([-1.0, 1.0], (n, 2)) * 10.0 ** rng.uniform(-30, 30, (n, 2))
        return np.where(rng.random((n, 2)) < 0.1, 0.0, x)
    a, b, c = coords(), coords(), coords()
    t = rng.uniform(0, 1, (n, 1))
    c[::2] = (a + t * (b - a))[::2]
    return a, b, c


def symmetry(p: np.ndarray, k: int) -> np.ndarray:
    """One of four exact maps of the plane, on the last axis: identity, negation, rotation by 90
    degrees, reflection x <-> y (which flips every orientation)."""
    x, y = p[..., 0], p[..., 1]
    return np.stack([(x, y), (-x, -y), (-y, x), (y, x)][k % 4], axis=-1)


def exactly_moved(points: np.ndarray, offset) -> np.ndarray:
    """points + offset where every coordinate of the sum is exact (checked in rationals); else
    points unchanged, so that the moved rows keep their exact orientations."""
    moved = points + offset
    ok = all(Fraction(float(m)) == Fraction(float(p)) + Fraction(float(o)) for m, p, o in
             zip(moved.ravel(), points.ravel(), np.broadcast_to(offset, points.shape).ravel()))
    return moved if ok else points


def underflow_traps(rng: np.random.Generator) -> tuple:
    """UNDERFLOW_TRAPS under the four exact symmetries and the three rotations of the roles (so that
    a filter with its origin at a, b or c meets rows built against it), in a random order: 72 rows."""
    rows = [symmetry(t, k)[list(roles)] for t in UNDERFLOW_TRAPS for k in range(4)
            for roles in ((0, 1, 2), (2, 0, 1), (1, 2, 0))]
    rows = np.stack(rows)[rng.permutation(len(rows))]  # (72, 3, 2)
    return rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy()


def _place(rng: np.random.Generator, points: np.ndarray) -> np.ndarray:
    """points (..., 2) under a random exact symmetry, power-of-two scale and (exact) translation."""
    points = symmetry(points, int(rng.integers(4))) * 2.0 ** int(rng.integers(-20, 21))
    top = 2.0 ** np.floor(np.log2(np.abs(points).max()))
    offset = rng.integers(-3, 4, 2) * 2.0 ** int(rng.integers(-3, 2)) * top
    return exactly_moved(points, offset)


def _exact_sign(o, a, b) -> int:
    """The sign of (a - o) x (b - o) in rationals (to place the cases' points; graded elsewhere)."""
    (ox, oy), (ax, ay), (bx, by) = ([Fraction(float(v)) for v in p] for p in (o, a, b))
    d = (ax - ox) * (by - oy) - (ay - oy) * (bx - ox)
    return (d > 0) - (d < 0)


def _fine_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """n triples (m, p, q) with m = (0, 0) between p = (1 + k1 u, 1 + k2 u) and q = (-1 + k3 u,
    -1 + k4 u), u = 2^-52, k2 + k4 = k1 + k3: the exact determinant is (k1 k4 - k2 k3) u^2 (0 on
    about one row in seven), while every product, from any origin, needs about 105 bits. (n, 3, 2)"""
    k1, k2, k3 = rng.integers(-6, 7, (3, n))
    k4 = k1 + k3 - k2
    p = np.stack([1 + k1 * 2.0**-52, 1 + k2 * 2.0**-52], axis=1)
    q = np.stack([-1 + k3 * 2.0**-52, -1 + k4 * 2.0**-52], axis=1)
    return np.stack([np.zeros((n, 2)), p, q], axis=1)


def fine_determinants(rng: np.random.Generator, n: int) -> tuple:
    """Triples whose exact determinant is below 2^-64 of its products, so that no 64-bit mantissa
    (np.longdouble on x86) holds it: FINE_TRIPLE with its roles rotated and reflected, under the four
    symmetries and two exact translations (24 rows, every seed), then n rows of `_fine_rows`, each
    with its roles permuted, moved by a random exact symmetry, scale and translation."""
    fixed = [exactly_moved(symmetry(FINE_TRIPLE[list(roles)], k), off) for roles in
             ((0, 1, 2), (1, 2, 0), (2, 0, 1)) for k in range(4) for off in ((0.0, 0.0), (0.5, -1.0))]
    rows = [_place(rng, t[rng.permutation(3)]) for t in _fine_rows(rng, n)]
    rows = np.stack(fixed + rows)  # (24 + n, 3, 2)
    return rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy()


def fine_segments(rng: np.random.Generator, n: int) -> tuple:
    """Segment pairs where an end point m of p lies 2^-104 (relative) off the line of segment q,
    inside q's box, and p's other end lies on the same side: the segments are apart, but an
    orientation that rounds the determinant to 0 puts m on q. FINE_TRIPLE's pair in all 8 orders of
    ends and segments first (every seed), then n from `_fine_rows`, in random orders, moved exactly.
    Four (8 + n, 2) arrays: p1, p2, q1, q2."""
    def pair(m, q1, q2):  # p = (m, p2) with p2 on m's side of q, farther off
        away = np.array([-(q2 - q1)[1], (q2 - q1)[0]]) * 0.25  # left of q1 -> q2
        side = _exact_sign(q1, q2, m)
        return np.stack([m, m + (side if side else 1) * away, q1, q2])  # (4, 2)

    base = pair(*FINE_TRIPLE[[2, 0, 1]])  # m = (1, 1 - 2^-52) on segment (0, 0) -> (1 + 2^-52, 1)
    orders = [[p1, p2, q1, q2] for p1, p2 in ((0, 1), (1, 0)) for q1, q2 in ((2, 3), (3, 2))]
    quads = [base[o] for o in orders] + [base[o[2:] + o[:2]] for o in orders]
    for m, q1, q2 in _fine_rows(rng, n):
        quad = pair(m, q1, q2)[orders[int(rng.integers(4))]]
        quads.append(_place(rng, quad if rng.integers(2) else quad[[2, 3, 0, 1]]))
    quads = np.stack(quads)  # (8 + n, 4, 2)
    return tuple(quads[:, k].copy() for k in range(4))


def fine_hull(rng: np.random.Generator) -> np.ndarray:
    """A hull with a vertex 2^-104 (relative) outside the line of its two neighbours: the points of
    a `_fine_rows` triple whose middle point m is not on the line, an apex on the other side of
    it, and a few interior points; moved by a random exact symmetry, scale and translation."""
    while True:
        m, p, q = _fine_rows(rng, 1)[0]
        side = _exact_sign(m, p, q)
        if side:
            break
    apex = side * np.array([-0.5, 0.5])  # m is left of p -> q when side > 0: the apex goes right
    inner = np.round(((p + q + apex) / 3 + rng.uniform(-0.05, 0.05, (4, 2))) * 256) / 256  # dyadic: moves exactly
    return _place(rng, np.concatenate([np.stack([m, p, q, apex]), inner]))[rng.permutation(8)]


def star_polygon(rng: np.random.Generator, n: int, radius: float = 1.0) -> np.ndarray:
    """A random simple polygon, counter-clockwise: n vertices at sorted angles, random radii."""
    theta = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = radius * rng.uniform(0.3, 1.0, n)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)  # (n, 2)


# ---------------------------------------------------------------- orient


def _orient_cases(rng: np.random.Generator) -> list[Case]:
    p, q, r = kettner_grid(32)
    ka, kb, kc = near_line(rng, 2000)
    grid = rng.integers(-3, 4, (3, 600, 2)).astype(np.float64)
    tiny = rng.uniform(-1, 1, (3, 500, 2)) * 1e-8
    dec = decimal_line(40)
    i, j, k = rng.integers(0, 40, (3, 400))
    big = big_integer_lines(rng, 600)
    fine = fine_determinants(rng, 200)
    n = 200_000  # a loop over them, or exact arithmetic on each, passes the stops below at once
    rows = [rng.uniform(-1, 1, (n, 2)) for _ in range(3)]
    return [
        Case("integer grid points (many exactly collinear)", tuple(grid)),
        Case("exactly collinear points with decimal coordinates", (dec[i], dec[j], dec[k])),
        Case("adversarial near-collinear points (Kettner's grid), float sign wrong", (p, q, r)),
        Case("adversarial near-collinear points (Kettner's grid, roles rotated)", (q, r, p)),
        Case("near-degenerate points a few ulps off a line", (ka, kb, kc)),
        Case("integer coordinates near 1e8 on common lines", big),
        Case("determinants below 2^-64 of the products (no 64-bit mantissa holds them: long double is not exact)", fine),
        Case("coordinates near 1e-158 whose products underflow (the float bound rounds to 0)", underflow_traps(rng)),
        Case("coordinates near 1e-8", tuple(tiny)),
        Case("N = 1", (np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))),
        Case("N = 0 (an empty int8 array)", (np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)))),
        Case("inputs are nested Python lists", tuple(x[:50].tolist() for x in big)),
        Case(f"{n} random float rows (vectorise: a float filter first)", tuple(rows)),
        Case("a has 3 columns (raise ValueError)", (np.zeros((4, 3)), np.zeros((4, 2)), np.zeros((4, 2)))),
        Case("the row counts differ (raise ValueError)", (np.zeros((4, 2)), np.zeros((5, 2)), np.zeros((4, 2)))),
        Case("the inputs are single points of shape (2,) (raise ValueError)", (np.zeros(2), np.ones(2), np.zeros(2))),
    ]


def _same(before, after) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(before, after))


def _copies(args):
    return [copy.deepcopy(x) for x in args]


def _raised(fn, args) -> dict:
    try:
        out = fn(*args)
        return {"raised": np.array(f"returned {type(out).__name__}")}
    except Exception as e:
        return {"raised": np.array(type(e).__name__)}


class TooManyFractions(Exception):
    """Raised inside the learner's code once it has built more Fractions than a case allows."""


class CountFractions:
    """Counts the `fractions.Fraction` objects built while active (every construction, from a float,
    an int or another Fraction's arithmetic) and stops the call with TooManyFractions past `stop`:
    exact arithmetic on every one of 200,000 rows is the cost the filter exists to avoid."""

    def __init__(self, stop: int):
        self.stop, self.built, self.stopped = stop, 0, False

    def __enter__(self) -> "CountFractions":
        self._new = new = Fraction.__dict__["__new__"]
        watch = self

        def counting(cls, *args, **kwargs):
            watch.built += 1
            if watch.built > watch.stop:
                watch.stopped = True
                raise TooManyFractions(f"built more than {watch.stop} Fractions")
            return new(cls, *args, **kwargs)

        fractions.Fraction.__new__ = counting
        return self

    def __exit__(self, *exc) -> None:
        fractions.Fraction.__new__ = self._new


FRACTION_STOP = 100_000  # far above what the exact path needs on random rows (a few per uncertain row)
LINE_STOP = 20_000  # Python lines run in the learner's functions: a loop over 200,000 rows passes it at once


def object_dtypes(fn) -> str:
    """Where fn (or a function of its notebook that it reaches) names NumPy's object dtype as a string
    ("O", "object"): "fn, line N", or "". An object array runs Python arithmetic on every element
    inside NumPy's loops, out of sight of a line count."""
    for f in reachable(fn):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(f)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip("|=<>") in ("O", "object"):
                return f"{f.__name__}, line {node.lineno}"
    return ""


def _run_orient(fn, case: Case):
    args, before = case.args, _copies(case.args)
    if "raise" in case.kind:
        return _raised(fn, args)
    if "vectorise" not in case.kind:
        return {"sign": to_numpy(fn(*args)), "unchanged": np.array(_same(before, args))}
    where = object_dtypes(fn)
    if where:  # refused before it runs a Python loop per row inside NumPy
        return {"fractions_built": np.array(0), "stopped": np.array(False), "lines": np.array(0),
                "object_dtype": np.array(where)}
    out, lines = None, 0
    with CountFractions(FRACTION_STOP) as count:
        try:
            out, lines = count_lines(fn, args, LINE_STOP)
        except TooManyFractions:
            pass
    work = {"fractions_built": np.array(count.built), "stopped": np.array(count.stopped), "lines": np.array(lines),
            "object_dtype": np.array("")}
    if out is None:
        return work
    return {"sign": to_numpy(out), "unchanged": np.array(_same(before, args)), **work}


# ---------------------------------------------------------------- orient_expansion

EXPANSION_RANGE = (2.0**-300, 2.0**300)  # the promise: every nonzero coordinate lies in here


def in_range(*xs) -> tuple:
    """The rows of (N, 2) arrays xs whose nonzero coordinates all lie in EXPANSION_RANGE."""
    lo, hi = EXPANSION_RANGE
    ok = np.logical_and.reduce([((x == 0) | ((np.abs(x) >= lo) & (np.abs(x) <= hi))).all(axis=1) for x in xs])
    return tuple(x[ok].copy() for x in xs)


def scaled(args: tuple, power: int) -> tuple:
    """Rows times 2^power (exact, orientations unchanged), kept where they stay in range."""
    return in_range(*(x * 2.0**power for x in args))


def _expansion_cases(rng: np.random.Generator) -> list[Case]:
    p, q, r = kettner_grid(16)
    grid = tuple(rng.integers(-3, 4, (3, 300, 2)).astype(np.float64))
    dec = decimal_line(40)
    i, j, k = rng.integers(0, 40, (3, 200))
    fine = fine_determinants(rng, 150)
    mixed = near_line(rng, EXPANSION_ROWS)
    mixed[0][::2] = rng.uniform(-1, 1, mixed[0][::2].shape)  # half clear, half near a line
    return [
        Case("integer grid points (many exactly collinear)", grid),
        Case("exactly collinear points with decimal coordinates", (dec[i], dec[j], dec[k])),
        Case("adversarial near-collinear points (Kettner's grid), float sign wrong", (p, q, r)),
        Case("adversarial near-collinear points (Kettner's grid, roles rotated)", (q, r, p)),
        Case("near-degenerate points a few ulps off a line", near_line(rng, 600)),
        Case("near-degenerate points a few ulps off a line, scaled by 2^200", scaled(near_line(rng, 300), 200)),
        Case("near-degenerate points a few ulps off a line, scaled by 2^-200", scaled(near_line(rng, 300), -200)),
        Case("integer coordinates near 1e8 on common lines", big_integer_lines(rng, 200)),
        Case("determinants below 2^-64 of the products (every product's error term counts)", fine),
        Case("coordinates with |x| in [1e-30, 1e30] or 0", wide_magnitudes(rng, 600)),
        Case("N = 1", (np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))),
        Case("N = 0 (an empty int8 array)", (np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)))),
        Case("inputs are nested Python lists", tuple(x[:40].tolist() for x in fine)),
        Case(f"{EXPANSION_ROWS} rows, half random, half near a line (vectorise over rows)", mixed),
        Case("a has 3 columns (raise ValueError)", (np.zeros((4, 3)), np.zeros((4, 2)), np.zeros((4, 2)))),
        Case("the row counts differ (raise ValueError)", (np.zeros((4, 2)), np.zeros((5, 2)), np.zeros((4, 2)))),
    ]


EXPANSION_ROWS = 8_000
EXPANSION_LINE_STOP = 5_000  # Python lines per call: expansions over whole arrays need a few hundred, a row loop 8,000+
WIDE_INT = 2**31  # integer arrays at or above this hold mantissas or bits, not indices or counts


def _refused_value(name: str, value) -> str:
    """Why a local of the learner's code is not floating-point expansion arithmetic, or ""."""
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        dt = value.dtype
        if dt == object:
            return f"`{name}` is an object array (Python arithmetic on every element)"
        if dt.kind in "fc" and dt.itemsize > (8 if dt.kind == "f" else 16):
            return f"`{name}` has dtype {dt.name} (a wider float: not exact either, and not float64)"
        if dt.kind in "iu" and np.size(value) and int(np.max(np.abs(value.astype(np.float64)))) >= WIDE_INT:
            return f"`{name}` is an integer array holding values of 2^31 or more (integer mantissas or a float's bits)"
        return ""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int) and value.bit_length() > 53:
        return f"`{name}` is a Python integer of {value.bit_length()} bits"
    if isinstance(value, (Fraction, decimal.Decimal)):
        return f"`{name}` is a {type(value).__name__}"
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], (list, tuple)):
        for item in value[:4]:
            why = _refused_value(name + "[...]", item)
            if why:
                return why
    return ""


class ExpansionWatch:
    """sys.settrace over the learner's notebook while its function runs: counts the lines run (and
    stops the call past a budget), and reads the dtype of every local at every line and return, so a
    long double, an object array, a big Python integer, an integer array of mantissas or bits, a
    Fraction or a Decimal is caught wherever it is made."""

    def __init__(self, fn, stop: int):
        self.home, self.stop, self.lines, self.refused = getattr(fn, "__globals__", None), stop, 0, ""

    def _look(self, frame, arg=None) -> None:
        if self.refused:
            return
        for name, value in list(frame.f_locals.items()) + ([("the return value", arg)] if arg is not None else []):
            why = _refused_value(name, value)
            if why:
                self.refused = f"{why}, in {frame.f_code.co_name}"
                return

    def _local(self, frame, event, arg):
        if event == "line":
            self.lines += 1
            if self.lines > self.stop:
                raise TooManyFractions("line budget")
            self._look(frame)
        elif event == "return":
            self._look(frame, arg)
        return self._local

    def _call(self, frame, event, arg):
        return self._local if self.home is None or frame.f_globals is self.home else None

    def run(self, fn, args):
        previous = sys.gettrace()
        sys.settrace(self._call)
        try:
            with CountFractions(0) as fractions_made:
                try:
                    return fn(*args)
                except TooManyFractions:
                    return None
        finally:
            sys.settrace(previous)
            if fractions_made.built and not self.refused:
                self.refused = "it builds fractions.Fraction objects"


def _run_expansion(fn, case: Case):
    args, before = case.args, _copies(case.args)
    if "raise" in case.kind:
        return _raised(fn, args)
    where = object_dtypes(fn)
    watch = ExpansionWatch(fn, EXPANSION_LINE_STOP)
    out = None if where else watch.run(fn, args)
    work = {"lines": np.array(watch.lines), "stopped": np.array(watch.lines > EXPANSION_LINE_STOP),
            "refused": np.array(f"it names NumPy's object dtype ({where})" if where else watch.refused)}
    if out is None:
        return work
    sign = to_numpy(out)
    return {"sign": sign, "unchanged": np.array(_same(before, args)), **work}


# ---------------------------------------------------------------- segments_intersect


def _segment_rows(*rows) -> tuple:
    """[(p1, p2, q1, q2), ...] -> four (K, 2) float64 arrays."""
    return tuple(np.array(x, dtype=np.float64) for x in zip(*rows))


def _near_collinear_segments(rng: np.random.Generator, n: int) -> tuple:
    """q1 q2 random; p1 a rounded point inside segment q, nudged by a few ulps; p2 well off the line.
    The segments meet exactly when p1 is on q's line or on the side opposite p2."""
    q1, q2 = rng.uniform(-1, 1, (n, 2)), rng.uniform(-1, 1, (n, 2))
    t = rng.uniform(0.2, 0.8, (n, 1))
    p1 = q1 + t * (q2 - q1)
    p1 = p1 + rng.integers(-3, 4, (n, 2)) * np.spacing(np.abs(p1))
    normal = np.stack([-(q2 - q1)[:, 1], (q2 - q1)[:, 0]], axis=1)
    p2 = p1 + rng.choice([-1.0, 1.0], (n, 1)) * 0.5 * normal
    return p1, p2, q1, q2


def _segment_cases(rng: np.random.Generator) -> list[Case]:
    big = rng.integers(-4, 5, (4, 1000, 2)).astype(np.float64)
    return [
        Case("the segments touch at an endpoint", _segment_rows(
            ((0, 0), (2, 2), (2, 2), (3, 0)), ((0, 0), (1, 0), (1, 0), (5, 5)), ((1, 1), (0, 0), (1, 1), (2, 3)))),
        Case("a T-junction (an endpoint inside the other segment)", _segment_rows(
            ((0, 0), (4, 0), (2, 0), (2, 3)), ((1, -1), (1, 5), (1, 2), (7, 2)), ((0, 0), (4, 4), (3, 1), (2, 2)))),
        Case("collinear and overlapping (horizontal, vertical, diagonal)", _segment_rows(
            ((0, 0), (4, 0), (2, 0), (6, 0)), ((1, 0), (1, 5), (1, 3), (1, -2)), ((0, 0), (3, 3), (1, 1), (2, 2)),
            ((5, 5), (1, 1), (0, 0), (2, 2)), ((0, 0), (2, 0), (2, 0), (3, 0)))),
        Case("collinear and disjoint (horizontal, vertical, diagonal)", _segment_rows(
            ((0, 0), (1, 0), (2, 0), (3, 0)), ((0, 0), (0, 1), (0, 2), (0, 5)), ((0, 0), (1, 1), (2, 2), (3, 3)),
            ((3, 3), (2, 2), (1, 1), (0, 0)), ((0, 0), (1, 2), (3, 6), (2, 4)))),
        Case("point segments (p1 == p2 or q1 == q2)", _segment_rows(
            ((1, 1), (1, 1), (0, 0), (2, 2)), ((1, 1), (1, 1), (0, 0), (2, 3)), ((1, 1), (1, 1), (1, 1), (1, 1)),
            ((1, 1), (1, 1), (2, 2), (2, 2)), ((0, 0), (4, 0), (3, 0), (3, 0)), ((0, 0), (4, 0), (5, 0), (5, 0)))),
        Case("identical segments", _segment_rows(((0, 0), (2, 1), (0, 0), (2, 1)), ((0, 0), (2, 1), (2, 1), (0, 0)))),
        Case("near-collinear adversarial segments (a float orientation decides them wrongly)",
             _near_collinear_segments(rng, 400)),
        Case("an end point 2^-104 off the other segment's line (long double is not exact)", fine_segments(rng, 40)),
        Case("random small-integer segments (many degenerate)", tuple(big)),
    ]


def _run_segments(fn, case: Case):
    args, before = case.args, _copies(case.args)
    hits, not_bool = [], ""
    for k in range(len(args[0])):
        form = (list, tuple, np.array)[k % 3]  # 2-vectors as lists, tuples or arrays
        out = fn(*(form(x[k].tolist()) for x in args))
        if type(out) is not bool and not not_bool:
            not_bool = type(out).__module__ + "." + type(out).__name__
        hits.append(bool(out))
    return {"hit": np.array(hits), "not_bool": np.array(not_bool), "unchanged": np.array(_same(before, args))}


# ---------------------------------------------------------------- polygon_area


def _area_cases(rng: np.random.Generator) -> list[Case]:
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64)
    ell = np.array([[0, 0], [3, 0], [3, 1], [1, 1], [1, 2], [0, 2]], dtype=np.float64)
    star = star_polygon(rng, 30)
    return [
        Case("known shapes (a unit square, CCW)", (square,)),
        Case("known shapes (an L of area 4, CCW)", (ell,)),
        Case("known shapes (a triangle, CCW)", (np.array([[0.0, 0.0], [4.0, 0.0], [1.0, 3.0]]),)),
        Case("clockwise polygons (negative area)", (ell[::-1].copy(),)),
        Case("a random star-shaped polygon", (star,)),
        Case("a clockwise random polygon", (star_polygon(rng, 25)[::-1].copy(),)),
        Case("a polygon translated to near 1e8 (translate by a vertex first)", (star + rng.uniform(0.9e8, 1.1e8, 2),)),
        Case("a unit square translated to near 1e12", (square + 1e12 + rng.integers(0, 1000, 2),)),
        Case("a random polygon translated to near 1e12", (star_polygon(rng, 20) + rng.uniform(0.9e12, 1.1e12, 2),)),
        Case("a polygon translated to near -1e9", (ell - 1e9,)),
        Case("N = 2 (area 0.0)", (np.array([[0.0, 0.0], [1.0, 1.0]]),)),
        Case("N = 1 (area 0.0)", (np.array([[5.0, 5.0]]),)),
        Case("N = 0, shape (0, 2) (area 0.0)", (np.zeros((0, 2)),)),
        Case("the shape is (N, 3) (raise ValueError)", (np.zeros((4, 3)),)),
        Case("the shape is 1-D (raise ValueError)", (np.zeros(6),)),
    ]


def _run_area(fn, case: Case):
    args, before = case.args, _copies(case.args)
    if "raise" in case.kind:
        return _raised(fn, args)
    out = fn(*args)
    return {"area": np.array(float(out), dtype=np.float64), "type": np.array(type(out).__name__),
            "unchanged": np.array(_same(before, args))}


# ---------------------------------------------------------------- convex_hull


def _hull_cases(rng: np.random.Generator) -> list[Case]:
    square = rng.uniform(-1, 1, (600, 2))
    disk = rng.standard_normal((600, 2))
    flat = np.concatenate([rng.uniform(0, 1, (200, 2)), np.stack([rng.integers(-5, 5, 9) * 0.25, np.zeros(9)], 1)])
    gx, gy = np.meshgrid(np.arange(7.0), np.arange(5.0))
    lattice = np.stack([gx.ravel(), gy.ravel()], axis=1)
    line = np.stack([np.arange(9.0), 2.0 * np.arange(9.0) + 1], 1)[rng.permutation(9)]
    neg = np.stack([np.arange(6.0), 10 - np.arange(6.0)], 1)[rng.permutation(6)]
    dups = np.concatenate([lattice, lattice[rng.integers(0, len(lattice), 40)]])[rng.permutation(75)]
    # near-collinear: 200 random points of Kettner's grid (64 x 64 ulps at (0.5, 0.5)) and the line's
    # points (12, 12), (24, 24), with one point below it
    near = 0.5 + rng.integers(0, 64, (200, 2)) * U
    adversarial = np.concatenate([near, [[12.0, 12.0], [24.0, 24.0], [30.0, 12.0]]])[rng.permutation(203)]
    kp, _, _ = kettner_grid(12)
    kettner = np.concatenate([kp, [[12.0, 12.0], [24.0, 24.0], [30.0, 12.0]]])
    dec = np.concatenate([decimal_line(60), [[3.0, 0.0]]])
    traps = [symmetry(UNDERFLOW_TRAPS[i], int(rng.integers(4))) for i in rng.choice(len(UNDERFLOW_TRAPS), 2, replace=False)]
    return [
        Case("random points in a square", (square,)),
        Case("random Gaussian points", (disk,)),
        Case("a flat bottom (several lowest points: start at the leftmost)", (flat,)),
        Case("a lattice (collinear points on every edge)", (lattice,)),
        Case("duplicated points", (dups,)),
        Case("all points collinear (2 rows, the lowest first)", (line,)),
        Case("all points collinear on a falling line", (neg,)),
        Case("all points equal (1 row)", (np.full((5, 2), 0.25),)),
        Case("a single point", (np.array([[3.0, -2.0]]),)),
        Case("empty input, shape (0, 2)", (np.zeros((0, 2)),)),
        Case("adversarial near-collinear edge (a float orientation builds a wrong hull)", (adversarial,)),
        Case("Kettner's grid next to a line", (kettner,)),
        Case("points on a decimal line y = 0.3 + 0.7 x", (dec,)),
        Case("a vertex 2^-104 off its neighbours' line (long double is not exact)", (fine_hull(rng),)),
        Case("a vertex 2^-104 off its neighbours' line, moved (long double is not exact)", (fine_hull(rng),)),
        Case("a triangle near 1e-158 whose turns' products underflow (the float bound rounds to 0)", (traps[0],)),
        Case("another triangle near 1e-158 whose products underflow", (traps[1],)),
        Case("the shape is (N, 3) (raise ValueError)", (np.zeros((5, 3)),)),
    ]


def _run_hull(fn, case: Case):
    args, before = case.args, _copies(case.args)
    if "raise" in case.kind:
        return _raised(fn, args)
    return {"hull": to_numpy(fn(*args)), "unchanged": np.array(_same(before, args))}


# ---------------------------------------------------------------- orient_filter_triton


def _filter_cases(rng: np.random.Generator) -> list[Case]:
    def rand(n):
        return tuple(rng.uniform(-1, 1, (n, 2)) for _ in range(3))

    p, q, r = kettner_grid(32)
    traps = tuple(BOUND_TRAPS[:, k].copy() for k in range(3))
    return [
        Case("random non-degenerate points, N = 1", rand(1)),
        Case("random non-degenerate points, N = 7", rand(7)),
        Case("random non-degenerate points, N = 3001 (not a multiple of a block)", rand(3001)),
        Case("coordinates with |x| in [1e-30, 1e30] or 0", wide_magnitudes(rng, 4000)),
        Case("near-degenerate rows where a bound without the factor 3 is wrong", traps),
        Case("coordinates near 1e-158 whose products underflow (the float bound rounds to 0)", underflow_traps(rng)),
        Case("near-degenerate points a few ulps off a line", near_line(rng, 40_000)),
        Case("Kettner's grid (all near-collinear)", (p, q, r)),
        Case("exactly collinear integer points", tuple(rng.integers(-3, 4, (3, 500, 2)).astype(np.float64))),
        Case("N = 0 (empty outputs, no launch)", (np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)))),
        Case("a has 3 columns (raise ValueError)", (np.zeros((4, 3)), np.zeros((4, 2)), np.zeros((4, 2)))),
        Case("the row counts differ (raise ValueError)", (np.zeros((4, 2)), np.zeros((4, 2)), np.zeros((3, 2)))),
    ]


class HostOpCount(HostOps):
    """HostOps, plus how many torch ops the host side ran in all (allocations and copies included):
    a wrapper that loops over rows on the host (`.item()`, indexing, writing one element at a time)
    runs thousands where a wrapper that launches once runs a handful."""

    def __init__(self):
        super().__init__(poison=True)
        self.count = 0

    def on_op(self, name, func, args, kwargs, out):
        self.count += 1
        super().on_op(name, func, args, kwargs, out)

    def summary(self) -> dict:
        return {**super().summary(), "host_op_count": np.array(self.count)}


def _run_filter(fn, case: Case):
    a, b, c = (torch.from_numpy(x.copy()).to(DEVICE) for x in case.args)
    if "raise" in case.kind:
        return _raised(fn, (a, b, c))
    with HostOpCount() as watch:
        sign, certain = fn(a, b, c)
    on_device = all(getattr(t, "device", None) == a.device for t in (sign, certain))
    unchanged = all(np.array_equal(t.cpu().numpy(), x) for t, x in zip((a, b, c), case.args))
    return {"sign": to_numpy(sign), "certain": to_numpy(certain), **watch.summary(),
            "on_device": np.array(on_device), "unchanged": np.array(unchanged)}


GEOMETRY_LIBRARIES = frozenset({"scipy", "ConvexHull", "shapely", "sympy", "mpmath", "gmpy2"})
EXACT_ARITHMETIC = frozenset({"Fraction", "fractions", "Decimal", "decimal", ".as_integer_ratio", "sympy", "mpmath", "gmpy2"})

EXPANSION_REFUSED = frozenset({
    "Fraction", "fractions", "Decimal", "decimal", "sympy", "mpmath", "gmpy2", "frompyfunc", "vectorize", "object",
    "longdouble", "longfloat", "float128", "float96", "clongdouble", "clongfloat", "complex256", "complex192",
    "as_integer_ratio", "from_bytes", "to_bytes", "fsum", "fma", "tolist", ".item", "int", "map", "getattr",
    "eval", "exec", "__import__", "importlib", "ctypes", ".view", "frombuffer", "operator", "itertools", "starmap",
    "functools",
})

TASKS = {
    "orient": Task("orient", _orient_cases, _run_orient,
                   forbidden=frozenset({"Decimal", "decimal", "sympy", "mpmath", "gmpy2", "frompyfunc", "vectorize", "object"}),
                   why="exact arithmetic on every row is what the float filter saves (and object arrays, np.frompyfunc "
                       "and np.vectorize run Python arithmetic on every row): decide the rows the filter can in float64 "
                       "and loop over the few it leaves uncertain in fractions.Fraction (section 3, Algorithm 1)."),
    "orient_expansion": Task("orient_expansion", _expansion_cases, _run_expansion, forbidden=EXPANSION_REFUSED,
                             why="the exact sign comes from float64 expansions here: Two-Sum, Two-Product by Dekker's "
                                 "split, Grow-Expansion, the sign of the top nonzero component (section 3b); rational "
                                 "or decimal numbers, big integers, integer views of a float's bits, wider floats and "
                                 "correctly rounded sums (math.fsum) are other methods, and a fused multiply-add is "
                                 "not in NumPy."),
    "segments_intersect": Task("segments_intersect", _segment_cases, _run_segments, forbidden=GEOMETRY_LIBRARIES,
                               why="a geometry library decides the intersection for you: write the straddle test and "
                                   "its degenerate cases on an exact orientation yourself (section 4, Algorithm 2)."),
    "polygon_area": Task("polygon_area", _area_cases, _run_area, forbidden=EXACT_ARITHMETIC | GEOMETRY_LIBRARIES,
                         why="exact arithmetic (or a library) on the raw coordinates skips what this exercise teaches: "
                             "move vertex 0 to the origin and sum the shoelace terms in float64 (section 5)."),
    "convex_hull": Task("convex_hull", _hull_cases, _run_hull, forbidden=GEOMETRY_LIBRARIES,
                        why="Qhull (scipy's ConvexHull), shapely and sympy build the hull for you (Qhull and shapely "
                            "decide turns in floating point with a tolerance); build Andrew's monotone chain on an "
                            "exact orientation test yourself (section 6)."),
    "orient_filter_triton": Task("orient_filter_triton", _filter_cases, _run_filter,
                                 forbidden=NO_NUMPY | EXACT_ARITHMETIC | {"ctypes", ".untyped_storage", ".storage"},
                                 why="the filter runs in your kernel: the wrapper checks shapes, allocates the outputs, "
                                     "makes the inputs contiguous and launches once (section 7); NumPy, lists and "
                                     "Python arithmetic on the host would compute it outside the kernel."),
}
