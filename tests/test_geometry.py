"""Chapter 02 references: the fast exact predicates agree with their rational specs, the filter
kernel agrees with the NumPy filter and is sound, the adversarial cases really defeat the float
and EPS versions they are meant to catch, and every check fails when it should, with a message
that teaches and shows no expected values."""
import numpy as np
import pytest
import torch

from autograder import verifier
from autograder.cases import geometry as C
from autograder.reference import geometry as G

SLUG = "02-geometry"


def _check(name, fn, case):
    ex = G.EXERCISES[name]
    got = verifier._run(ex, fn, case)
    ex.check(case, got, ex.reference(case))


def _case(name, kind):
    return next(c for c in G.EXERCISES[name].cases(np.random.default_rng(0)) if c.kind.startswith(kind))


# ---------------------------------------------------------------- orientation


def test_filtered_orientation_equals_the_rational_spec_on_hard_inputs():
    rng = np.random.default_rng(1)
    families = [C.kettner_grid(24), C.near_line(rng, 1500), C.big_integer_lines(rng, 300), C.wide_magnitudes(rng, 1500),
                tuple(rng.integers(-3, 4, (3, 500, 2)).astype(np.float64)), tuple(C.BOUND_TRAPS[:, k] for k in range(3))]
    for args in families:
        np.testing.assert_array_equal(G.orient_exact(*args), G.orient_fraction(*args))


def test_the_filter_is_sound_and_a_bound_without_the_factor_3_is_not():
    a, b, c = C.near_line(np.random.default_rng(2), 20_000)
    sign, certain = G.orient_filter(a, b, c)
    idx = np.flatnonzero(certain)
    np.testing.assert_array_equal(sign[idx], G.orient_fraction(a[idx], b[idx], c[idx]))
    a, b, c = (C.BOUND_TRAPS[:, k] for k in range(3))  # the traps: uncertain for Shewchuk, wrong for eps * sum
    detleft, detright = (a[:, 0] - c[:, 0]) * (b[:, 1] - c[:, 1]), (a[:, 1] - c[:, 1]) * (b[:, 0] - c[:, 0])
    det, detsum = detleft - detright, np.abs(detleft) + np.abs(detright)
    assert not G.orient_filter(a, b, c)[1].any()
    assert (np.abs(det) > (1 + 16 * G.EPS) * G.EPS * detsum).all()
    assert (np.sign(det) != G.orient_fraction(a, b, c)).all()


def test_the_orient_cases_defeat_the_float_sign_and_the_fixed_eps():
    cases = {c.kind: c for c in G.EXERCISES["orient"].cases(np.random.default_rng(3))}
    for kind, naive in (("Kettner's grid", G.orient_naive), ("near 1e8", G.orient_naive), ("near 1e-8", G.orient_eps),
                        ("decimal", G.orient_eps)):
        case = next(c for k, c in cases.items() if kind in k)
        assert (naive(*case.args) != G.orient_exact(*case.args)).any(), kind


def test_orient_rejects_bad_shapes():
    for args in ((np.zeros((2, 3)),) * 3, (np.zeros((2, 2)), np.zeros((3, 2)), np.zeros((2, 2))), (np.zeros(2),) * 3):
        with pytest.raises(ValueError):
            G.orient_exact(*args)
    assert G.orient_exact(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2))).dtype == np.int8


# ---------------------------------------------------------------- the Triton filter


@pytest.mark.parametrize("n", [1, 7, 1000, 3001])
def test_filter_kernel_equals_the_numpy_filter(n):
    rng = np.random.default_rng(n)
    a, b, c = C.near_line(rng, n)
    a[::2] = rng.uniform(-1, 1, a[::2].shape)  # half clear, half near-degenerate
    sign, certain = G.orient_filter_triton(*(torch.from_numpy(x) for x in (a, b, c)))
    want_sign, want_certain = G.orient_filter(a, b, c)
    assert sign.dtype == torch.int8 and certain.dtype == torch.bool
    np.testing.assert_array_equal(certain.numpy(), want_certain)
    np.testing.assert_array_equal(sign.numpy(), want_sign)


def test_filter_kernel_reads_strided_views_and_skips_empty_inputs():
    x = torch.rand(40, 4, dtype=torch.float64)
    a, b, c = x[:, :2], x[:, 2:], x[:, 1:3]  # non-contiguous (N, 2) views
    sign, certain = G.orient_filter_triton(a, b, c)
    np.testing.assert_array_equal(sign.numpy(), G.orient_filter(a.numpy(), b.numpy(), c.numpy())[0])
    none = torch.zeros(0, 2, dtype=torch.float64)
    launches = []
    original = G.triton.runtime.jit.KernelInterface.__getitem__
    G.triton.runtime.jit.KernelInterface.__getitem__ = lambda self, grid: launches.append(grid) or original(self, grid)
    try:
        assert G.orient_filter_triton(none, none, none)[0].shape == (0,) and not launches
    finally:
        G.triton.runtime.jit.KernelInterface.__getitem__ = original
    with pytest.raises(ValueError):
        G.orient_filter_triton(torch.zeros(3, 2, dtype=torch.float64), none, none)


def test_gpu_checks_pass_at_small_sizes():
    for name, check in G.gpu_checks(small=True).items():
        check()


# ---------------------------------------------------------------- segments, area, hull


def test_segment_spec_is_symmetric_and_the_cases_defeat_float_orientations():
    rng = np.random.default_rng(4)
    for p1, p2, q1, q2 in rng.integers(-2, 3, (300, 4, 2)).astype(np.float64):
        want = G.segments_intersect_spec(p1, p2, q1, q2)
        assert want == G.segments_intersect_spec(q2, q1, p2, p1) == G.segments_intersect_spec(p2, p1, q1, q2)
    p1, p2, q1, q2 = _case("segments_intersect", "near-collinear").args
    float_says = G.orient_naive(q1, q2, p1) * G.orient_naive(q1, q2, p2) <= 0
    exact_says = G.orient_exact(q1, q2, p1) * G.orient_exact(q1, q2, p2) <= 0
    assert (float_says != exact_says).any()


def test_translated_shoelace_keeps_the_digits_raw_loses_them():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64) + 1e12
    assert G.shoelace_fraction(square) == G.shoelace_translated(square) == 1.0 != G.shoelace_raw(square)
    star = C.star_polygon(np.random.default_rng(5), 40) + 3e8
    assert abs(G.shoelace_translated(star) - G.shoelace_fraction(star)) <= 1e-12 * abs(G.shoelace_fraction(star))
    assert G.shoelace_fraction(star[::-1]) == -G.shoelace_fraction(star)
    with pytest.raises(ValueError):
        G.shoelace_fraction(np.zeros(4))


def test_fast_hull_equals_the_spec_and_the_adversarial_cases_defeat_float_turns():
    rng = np.random.default_rng(6)
    for pts in (rng.uniform(-1, 1, (5000, 2)), rng.standard_normal((3000, 2)), rng.integers(0, 5, (400, 2)).astype(float)):
        np.testing.assert_array_equal(G.convex_hull_fast(pts), G.hull_spec(pts))
    for kind in ("adversarial", "Kettner", "points on a decimal line"):
        pts = _case("convex_hull", kind).args[0]
        hull, float_hull = G.hull_spec(pts), G.hull_float(pts)
        assert hull.shape != float_hull.shape or not np.array_equal(hull, float_hull), kind
    assert G.hull_spec(np.array([[0.0, 10.0], [5.0, 5.0], [2.0, 8.0]])).tolist() == [[5.0, 5.0], [0.0, 10.0]]
    assert G.hull_spec(np.zeros((0, 2))).shape == (0, 2) and G.hull_spec(np.ones((3, 2))).shape == (1, 2)


# ---------------------------------------------------------------- cases and checks


@pytest.mark.parametrize("name", list(G.EXERCISES))
def test_cases_are_deterministic_per_seed(name):
    ex = G.EXERCISES[name]
    one, two = ex.cases(np.random.default_rng(5)), ex.cases(np.random.default_rng(5))
    assert [c.kind for c in one] == [c.kind for c in two]
    for c1, c2 in zip(one, two):
        for x, y in zip(c1.args, c2.args):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_checks_teach_without_showing_expected_values():
    def leftmost_start(points):
        return np.roll(G.hull_spec(points), 1, axis=0)

    with pytest.raises(AssertionError, match="start at the lowest point"):
        _check("convex_hull", leftmost_start, _case("convex_hull", "random points in a square"))
    with pytest.raises(AssertionError, match="not a Python float"):
        _check("polygon_area", lambda poly: np.float64(G.shoelace_translated(poly)), _case("polygon_area", "known shapes (a unit"))
    with pytest.raises(AssertionError, match="not a Python bool"):
        _check("segments_intersect", lambda *s: np.bool_(G.segments_intersect_spec(*s)), _case("segments_intersect", "identical"))
    with pytest.raises(AssertionError, match="should raise ValueError"):
        _check("orient", lambda a, b, c: np.zeros(4, np.int8), _case("orient", "a has 3 columns"))

    def changes_input(a, b, c):
        a[:] = 0
        return G.orient_exact(a, b, c)

    with pytest.raises(AssertionError, match="changes its inputs"):
        _check("orient", changes_input, _case("orient", "integer grid"))

    def overconfident(a, b, c):
        sign, certain = G.orient_filter_triton(a, b, c)
        return sign, torch.ones_like(certain)

    case = _case("orient_filter_triton", "near-degenerate rows")
    with pytest.raises(AssertionError, match="certain whose sign is wrong") as e:
        _check("orient_filter_triton", overconfident, case)
    assert "[" not in str(e.value)  # no arrays of expected signs
    with pytest.raises(AssertionError, match="launched no Triton kernel"):
        _check("orient_filter_triton", G.orient_filter_torch, _case("orient_filter_triton", "random non-degenerate points, N = 7"))


# ---------------------------------------------------------------- the technique, not only the output


def _longdouble_sign(a, b, c, origin: int):
    """The sign of the cross product in np.longdouble (a 64-bit mantissa on x86), from one origin."""
    pts = [np.asarray(x, dtype=np.float64).astype(np.longdouble) for x in (a, b, c)]
    o, p, q = pts[origin], pts[(origin + 1) % 3], pts[(origin + 2) % 3]
    u, v = p - o, q - o
    return np.sign(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]).astype(np.int8)


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 63, reason="np.longdouble is float64 here: nothing to defeat")
def test_fine_determinants_defeat_long_double_from_every_origin():
    for seed in range(4):
        a, b, c = C.fine_determinants(np.random.default_rng(seed), 200)
        exact = G.orient_fraction(a, b, c)
        np.testing.assert_array_equal(G.orient_exact(a, b, c), exact)
        fixed = slice(0, 24)  # the triple, rotated and moved: in every seed
        for origin in range(3):
            assert (_longdouble_sign(a, b, c, origin) != exact).mean() > 0.5
            assert (_longdouble_sign(a[fixed], b[fixed], c[fixed], origin) != exact[fixed]).any()
    t = C.FINE_TRIPLE
    assert G.orient_fraction(t[None, 0], t[None, 1], t[None, 2]).tolist() == [-1]


def test_underflow_traps_need_the_guard():
    a, b, c = C.underflow_traps(np.random.default_rng(0))
    exact = G.orient_fraction(a, b, c)
    sign, certain = G.orient_filter(a, b, c)
    assert not certain.any()  # the guard sends every row to the exact path
    for origin in range(3):  # and a filter without it, from any origin, trusts wrong signs on some rows
        pts = (a, b, c)[origin:] + (a, b, c)[:origin]
        sign, certain = G.orient_filter(pts[1], pts[2], pts[0], tiny=0.0)  # Shewchuk's form with origin pts[0]
        assert (certain & (sign != exact)).sum() == 24, origin
    detsum = np.abs((a[:, 0] - c[:, 0]) * (b[:, 1] - c[:, 1])) + np.abs((a[:, 1] - c[:, 1]) * (b[:, 0] - c[:, 0]))
    assert (detsum < 2.0**-1022).all()  # every product underflows


def test_fine_segments_and_hulls_defeat_long_double():
    def side(o, p, q):  # long double orientation of one triple
        return int(_longdouble_sign(o[None], p[None], q[None], 0)[0])

    def boxed(p, q, r):
        return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])

    def long_double_meet(p1, p2, q1, q2):
        d1, d2, d3, d4 = side(q1, q2, p1), side(q1, q2, p2), side(p1, p2, q1), side(p1, p2, q2)
        return (d1 * d2 < 0 and d3 * d4 < 0) or (d1 == 0 and boxed(q1, q2, p1)) or (d2 == 0 and boxed(q1, q2, p2)) \
            or (d3 == 0 and boxed(p1, p2, q1)) or (d4 == 0 and boxed(p1, p2, q2))

    segs = C.fine_segments(np.random.default_rng(7), 40)
    exact = np.array([G.segments_intersect_spec(*(x[k] for x in segs)) for k in range(len(segs[0]))])
    rough = np.array([long_double_meet(*(x[k] for x in segs)) for k in range(len(segs[0]))])
    assert not exact[:8].any() and rough[:8].sum() >= 4  # the triple in 8 orders, in every seed
    assert (exact != rough).mean() > 0.7
    for seed in range(3):
        pts = C.fine_hull(np.random.default_rng(seed))
        hull = G.hull_spec(pts)
        assert len(hull) == 4 and np.array_equal(G.convex_hull_fast(pts), hull)
        assert len(G._chain(G._sorted_unique(pts), lambda o, a, b: side(np.array(o), np.array(a), np.array(b)))) == 3


def test_counting_fractions_stops_an_exact_path_on_every_row():
    from fractions import Fraction

    def everywhere(a, b, c):
        exact = np.frompyfunc(Fraction, 1, 1)
        a, b, c = exact(np.asarray(a)), exact(np.asarray(b)), exact(np.asarray(c))
        det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        return np.array([(d > 0) - (d < 0) for d in det], dtype=np.int8)

    case = _case("orient", "200000 random")
    with pytest.raises(AssertionError, match="run the exact path only on the rows the filter cannot decide"):
        _check("orient", everywhere, case)
    got = verifier._run(G.EXERCISES["orient"], G.orient_exact, case)
    assert int(got["fractions_built"]) < G.FRACTIONS_SLACK
    assert Fraction.__dict__["__new__"].__func__.__qualname__ == "Fraction.__new__"  # restored after the run


def test_a_python_loop_over_every_row_is_stopped_by_the_line_count():
    def integer_loop(a, b, c):  # exact, no Fraction: a loop over rows in Python integers
        out = np.zeros(len(a), dtype=np.int8)
        for k in range(len(a)):
            (ax, ay), (bx, by), (cx, cy) = ([int(v * 2**60) for v in p] for p in (a[k], b[k], c[k]))
            d = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
            out[k] = (d > 0) - (d < 0)
        return out

    with pytest.raises(AssertionError, match="lines of Python for 200,000 random rows"):
        _check("orient", integer_loop, _case("orient", "200000 random"))
    assert C.object_dtypes(integer_loop) == ""
    assert C.object_dtypes(lambda a: a.astype("O")) == "<lambda>, line 1"


def test_the_filter_host_side_may_not_compute():
    def host_filter(a, b, c):  # the filter in torch ops, then the reference kernel on the answer
        sign, certain = G.orient_filter_torch(a, b, c)
        G.orient_filter_triton(a, b, c)
        return sign, certain

    with pytest.raises(AssertionError, match="computed on the host with torch|must be your own"):
        _check("orient_filter_triton", host_filter, _case("orient_filter_triton", "random non-degenerate points, N = 7"))


@pytest.mark.parametrize("name, uses", [("segments_intersect", "import sympy"), ("convex_hull", "from sympy import convex_hull"),
                                        ("polygon_area", "Fraction(0)"), ("polygon_area", "Decimal(0)"),
                                        ("orient", "Decimal(0)"), ("orient", "np.frompyfunc(Fraction, 1, 1)"),
                                        ("orient", "a.astype(object)"), ("orient_filter_triton", "a.numpy()"),
                                        ("orient_expansion", "Fraction(0)"), ("orient_expansion", "a.astype(np.longdouble)"),
                                        ("orient_expansion", "import decimal"), ("orient_expansion", "(1.5).as_integer_ratio()"),
                                        ("orient_expansion", "math.fsum(a)"), ("orient_expansion", "a.view(np.uint64)"),
                                        ("orient_expansion", "list(map(int, a))")])
def test_refused_names(name, uses):
    from autograder import forbidden

    assert forbidden.uses(f"def fn(a=None):\n    {uses}\n", G.EXERCISES[name].forbidden)


# ---------------------------------------------------------------- expansions


def test_error_free_transformations_are_exact_on_adversarial_pairs():
    from fractions import Fraction

    rng = np.random.default_rng(8)
    x = np.concatenate([rng.uniform(1, 2, 400) * 2.0 ** rng.integers(-300, 300, 400), 1 + rng.integers(-9, 9, 100) * 2.0**-52,
                        (2.0**27 + 1) * rng.integers(1, 2**26, 100) * 2.0**-30])
    y = np.concatenate([rng.uniform(-2, 2, 400) * 2.0 ** rng.integers(-300, 300, 400), -(1 + rng.integers(-9, 9, 100) * 2.0**-52),
                        rng.uniform(1, 2, 100)])
    for (hi, lo), exact in ((G.two_sum(x, y), lambda p, q: Fraction(p) + Fraction(q)),
                            (G.two_product(x, y), lambda p, q: Fraction(p) * Fraction(q))):
        assert all(Fraction(h) + Fraction(l) == exact(p, q) for h, l, p, q in zip(hi, lo, x, y))
    big = np.abs(x) >= np.abs(y)
    hi, lo = G.fast_two_sum(x[big], y[big])
    assert all(Fraction(h) + Fraction(l) == Fraction(p) + Fraction(q) for h, l, p, q in zip(hi, lo, x[big], y[big]))
    h, l = G.split(x)
    assert np.array_equal(h + l, x)
    for half in (h, l):  # at most 26 significant bits each
        m, _ = np.frexp(half)
        assert np.array_equal(m * 2.0**26, np.round(m * 2.0**26))


def test_expansion_orientation_is_exact_on_every_case_and_the_cases_are_in_range():
    lo, hi = C.EXPANSION_RANGE
    for case in G.EXERCISES["orient_expansion"].cases(np.random.default_rng(9)):
        if "raise" in case.kind:
            continue
        rows = [np.asarray(x, dtype=np.float64) for x in case.args]
        for x in rows:
            assert ((x == 0) | ((np.abs(x) >= lo) & (np.abs(x) <= hi))).all(), case.kind
        np.testing.assert_array_equal(G.orient_expansion(*rows), G.orient_exact(*rows), err_msg=case.kind)
    a, b, c = C.underflow_traps(np.random.default_rng(0))  # out of range: the adaptive path sends them to Fraction
    np.testing.assert_array_equal(G.orient_adaptive(a, b, c), G.orient_fraction(a, b, c))


def test_expansion_watch_refuses_other_exact_methods_wherever_they_are_made():
    from fractions import Fraction

    case = _case("orient_expansion", "near-degenerate points a few ulps off a line")

    def wide(a, b, c):
        w = [np.asarray(x).astype(np.dtype("g")) for x in (a, b, c)]  # no refused name: caught by the watch
        u, v = w[1] - w[0], w[2] - w[0]
        return G.orient_exact(a, b, c) + 0 * np.sign(u[:, 0] * v[:, 1]).astype(np.int8)

    def rational(a, b, c):
        q = G.Fraction(0.5)
        return G.orient_exact(a, b, c)

    def bits(a, b, c):
        m = np.asarray(a, dtype=np.float64).copy().view("i8")  # a float's bits as integers
        return G.orient_exact(a, b, c)

    def huge(a, b, c):
        n = round(2.0**200)
        return G.orient_exact(a, b, c)

    for fn, said in ((wide, "dtype float128"), (rational, "builds fractions.Fraction"), (bits, "integer array"),
                     (huge, "Python integer of 201 bits")):
        with pytest.raises(AssertionError, match=said):
            _check("orient_expansion", fn, case)
    assert Fraction.__dict__["__new__"].__func__.__qualname__ == "Fraction.__new__"

    def row_loop(a, b, c):
        out = np.zeros(len(a), dtype=np.int8)
        for k in range(len(a)):
            out[k] = G.orient_expansion(a[k:k + 1], b[k:k + 1], c[k:k + 1])[0]
        return out

    with pytest.raises(AssertionError, match="a loop over rows"):
        _check("orient_expansion", row_loop, _case("orient_expansion", "8000 rows"))


def test_expansion_checks_name_the_missing_step():
    case = _case("orient_expansion", "determinants below 2^-64")

    def no_split(a, b, c):
        a, b, c = (np.asarray(x, dtype=np.float64) for x in (a, b, c))
        return np.sign(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0] + b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0]
                       + c[:, 0] * a[:, 1] - c[:, 1] * a[:, 0]).astype(np.int8)

    with pytest.raises(AssertionError, match="Dekker") as e:
        _check("orient_expansion", no_split, case)
    assert "[" not in str(e.value)
    with pytest.raises(AssertionError, match="expected int8"):
        _check("orient_expansion", lambda a, b, c: G.orient_expansion(a, b, c).astype(np.int64), case)
