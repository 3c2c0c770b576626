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
