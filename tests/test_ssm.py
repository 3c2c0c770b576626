"""Chapter 10 references: HiPPO, the discretisations, the FFT convolution and the Triton scan agree
with their specs, the op watch sees what the cost rules rely on, and every check fails when it
should, with a message that teaches and shows no expected values."""
import numpy as np
import pytest
import torch

from autograder import verifier
from autograder.reference import ssm as S

SLUG = "10-ssm"


def _case(name, kind):
    return next(c for c in S.EXERCISES[name].cases(np.random.default_rng(0)) if c.kind.startswith(kind))


def _verdict(name, fn, case):
    ex = S.EXERCISES[name]
    got = verifier._run(ex, fn, case)
    try:
        ex.check(case, got, ex.reference(case))
    except AssertionError as e:
        return str(e)
    return None


# ---------------------------------------------------------------- specs


def test_hippo_follows_its_formula_and_is_stable():
    a, b = S.hippo_legs(4)
    assert a[2, 1] == -np.sqrt(5) * np.sqrt(3) and a[1, 2] == 0 and a[3, 3] == -4 and b[3] == np.sqrt(7)
    assert sorted(torch.linalg.eigvals(a).real.tolist()) == [-4, -3, -2, -1]
    with pytest.raises(ValueError):
        S.hippo_legs(0)


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_discretize_matches_scipy_including_singular_a(method):
    rng = np.random.default_rng(0)
    for a in (-np.eye(3) + 0.3 * rng.standard_normal((3, 3)), np.zeros((3, 3)), np.diag([-1.0, 0.0, -2.0])):
        b = rng.standard_normal(3)
        got = S.discretize(torch.from_numpy(a), torch.from_numpy(b), 0.3, method)
        want = S.cont2discrete(a, b, 0.3, method)
        for g, w in zip(got, want):
            assert np.allclose(g.numpy(), w, atol=1e-12)
    with pytest.raises(ValueError):
        S.discretize(torch.zeros(2, 2), torch.zeros(2), 0.1, "euler")


def test_fft_convolution_equals_the_recurrence_and_the_kernel_its_powers():
    rng = np.random.default_rng(1)
    a = torch.from_numpy(-np.eye(5) + 0.2 * rng.standard_normal((5, 5)))
    abar, bbar = S.discretize(a, torch.from_numpy(rng.standard_normal(5)), 0.2, "zoh")
    c = torch.from_numpy(rng.standard_normal(5))
    for length in (1, 2, 37, 128):
        u = torch.from_numpy(rng.standard_normal((2, length)))
        assert torch.allclose(S.ssm_conv_fft(u, abar, bbar, c, length), S.ssm_recurrent(u, abar, bbar, c), atol=1e-11)
        powers = torch.stack([c @ torch.linalg.matrix_power(abar, k) @ bbar for k in range(length)])
        assert torch.allclose(S.ssm_kernel(abar, bbar, c, length), powers, atol=1e-12)


def test_scan_doubling_equals_the_loop():
    a, b = torch.rand(3, 37) * 0.5 + 0.5, torch.randn(3, 37)
    x, xs = torch.zeros(3), []
    for t in range(37):
        x = a[:, t] * x + b[:, t]
        xs.append(x)
    assert torch.allclose(S.scan_doubling(a, b)[1], torch.stack(xs, 1), atol=1e-5)


@pytest.mark.parametrize("b,d,n,length,chunk", [(1, 2, 4, 1, 256), (2, 3, 5, 37, 256), (1, 2, 16, 300, 256),
                                                (1, 1, 3, 100, 16)])
def test_triton_scan_matches_the_float64_spec_across_chunks(b, d, n, length, chunk):
    args = [torch.from_numpy(x) for x in S.scan_inputs(np.random.default_rng(length), b, d, n, length, mamba_a=True)]
    got = S.selective_scan_triton(*args, chunk=chunk)
    assert got.shape == (b, d, length) and got.dtype == torch.float32
    assert torch.allclose(got.double(), S.selective_scan_spec(*args), atol=1e-5, rtol=1e-5)
    assert torch.allclose(S.selective_scan_loop(*args).double(), S.selective_scan_spec(*args), atol=1e-5, rtol=1e-5)


def test_op_watch_sees_fft_sizes_and_launches():
    from autograder.cases.ssm import ScanWatch

    with ScanWatch() as watch:
        torch.fft.irfft(torch.fft.rfft(torch.randn(64), 128), 128)
        torch.ones(10, 10).sum()
    s = watch.summary()
    assert bool(s["used_fft"]) and int(s["largest_out"]) == 128 and int(s["launches"]) == 0
    args = [torch.from_numpy(x) for x in S.scan_inputs(np.random.default_rng(0), 1, 2, 4, 20)]
    with ScanWatch() as watch:
        S.selective_scan_triton(*args)
    assert watch.launches == 1 and watch.largest_out <= 80 and watch.ops < 20


def test_cases_are_deterministic_per_seed():
    for name, ex in S.EXERCISES.items():
        one, two = ex.cases(np.random.default_rng(5)), ex.cases(np.random.default_rng(5))
        assert [c.kind for c in one] == [c.kind for c in two], name
        for c1, c2 in zip(one, two):
            for x, y in zip(c1.args, c2.args):
                assert np.array_equal(np.asarray(x), np.asarray(y)), name


# ---------------------------------------------------------------- checks fail when they should


def test_references_pass_their_own_checks():
    rng = np.random.default_rng(3)
    fns = {"hippo_legs": S.hippo_legs, "discretize": S.discretize, "selective_scan": S.selective_scan_rounds}
    for name, fn in fns.items():
        for case in S.EXERCISES[name].cases(rng):
            assert _verdict(name, fn, case) is None, (name, case.kind)


def test_reference_kernel_passes_every_kernel_rule_but_ownership():
    """The reference kernel, read as if the notebook had defined it under the exercise's name, passes
    every rule of the Triton scan: one launch, compiles for sm_90, no host work, in bounds, one loop
    iteration, one associative_scan and at most six loads per chunk."""
    ex = S.EXERCISES["selective_scan_triton"]
    for case in ex.cases(np.random.default_rng(3)):
        got = verifier._run(ex, S.selective_scan_triton, case)
        assert str(got["kernel_modules"][0]) == "autograder.reference.ssm"
        got = {**got, "kernels": np.array(["scan_kernel"]), "kernel_modules": np.array(["__main__"])}
        ex.check(case, got, ex.reference(case))
        chunks = -(-case.args[0].shape[-1] // int(S.rules.constexprs(got, 0)["CHUNK"]))
        assert int(got["loop_iterations"]) == chunks and int(got["scans_per_program"]) == chunks, case.kind


def test_scan_methods_that_skip_the_rounds_are_refused():
    case = _case("selective_scan", "b = 1, d = 2, n = 4, L = ")  # the cost case
    assert "log2 L" in _verdict("selective_scan", S.selective_scan_loop, case)

    def library(u, delta, a, b, c, d):  # an exact scan through torch's cumsum, in float64 (no underflow at L = 1024)
        s = torch.cumsum((delta[:, :, None, :] * a[None, :, :, None]).double(), -1)
        bu = (delta[:, :, None, :] * b[:, None] * u[:, :, None, :]).double()
        x = torch.stack([(torch.exp(s[..., t:t + 1] - s[..., :t + 1]) * bu[..., :t + 1]).sum(-1)
                         for t in range(u.shape[-1])], -1)
        return ((x * c[:, None]).sum(2) + d[:, None] * u).float()

    small = _case("selective_scan", "b = 2")
    assert _verdict("selective_scan", library, small) is None  # right values: only the cost case sees it
    assert "torch ops" in _verdict("selective_scan", library, case) or "lines" in _verdict("selective_scan", library, case)


def test_conv_by_the_recurrence_beside_an_fft_is_refused():
    def recurrence(u, abar, bbar, c, length):
        torch.fft.rfft(u, 2 * length)  # for show
        return S.ssm_recurrent(u, abar, bbar, c)

    msg = _verdict("ssm_conv", recurrence, _case("ssm_conv", "L = 2048"))
    assert "read u" in msg and "section 3" in msg

    def transposed(u, abar, bbar, c, length):
        torch.fft.rfft(u, 2 * length)  # for show
        k = S.ssm_kernel(abar, bbar, c, length)
        return torch.nn.functional.conv_transpose1d(u[:, None], k[None, None])[:, 0, :length]  # full, then causal

    assert "library convolution" in _verdict("ssm_conv", transposed, _case("ssm_conv", "L = 2048"))


def test_hippo_in_float32_is_refused():
    msg = _verdict("hippo_legs", lambda n: tuple(t.float() for t in S.hippo_legs(n)), _case("hippo_legs", "N = 5"))
    assert "float64" in msg


def test_conv_rules_teach_without_values():
    case = _case("ssm_conv", "L = 2048")

    def toeplitz(u, abar, bbar, c, length):
        k = S.ssm_kernel(abar, bbar, c, length)
        lag = torch.arange(length)[:, None] - torch.arange(length)[None, :]
        return u @ torch.where(lag >= 0, k[lag.clamp(min=0)], torch.zeros((), dtype=torch.float64)).T

    assert "FFT" in _verdict("ssm_conv", toeplitz, case)
    assert _verdict("ssm_conv", S.ssm_conv_fft, case) is None

    def circular(u, abar, bbar, c, length):
        k = S.ssm_kernel(abar, bbar, c, length)
        return torch.fft.irfft(torch.fft.rfft(u, length) * torch.fft.rfft(k, length), length)

    msg = _verdict("ssm_conv", circular, _case("ssm_conv", "batch 3"))
    assert "max |err|" in msg and "tolerance" in msg


def test_modified_inputs_are_named():
    def in_place(u, delta, a, b, c, d):
        y = S.selective_scan_loop(u, delta, a, b, c, d)
        delta.add_(1.0)
        return y

    assert "modifies its inputs" in _verdict("selective_scan", in_place, _case("selective_scan", "L = 1"))


def test_divide_by_cumulative_products_fails_with_mamba_a():
    def divides(u, delta, a, b, c, d):
        da = torch.exp(delta[..., None, :] * a[None, :, :, None])
        p = torch.cumprod(da, -1)
        x = p * torch.cumsum(delta[..., None, :] * b[:, None] * u[..., None, :] / p, -1)
        return (x * c[:, None]).sum(2) + d[:, None] * u

    assert _verdict("selective_scan", divides, _case("selective_scan", "b = 2")) is None
    verdict = _verdict("selective_scan", divides, _case("selective_scan", "Mamba"))
    assert "NaN at index" in verdict or "max |err|" in verdict, verdict  # the products underflow: 0/0


def test_triton_fallback_in_pytorch_is_refused():
    msg = _verdict("selective_scan_triton", S.selective_scan_loop, _case("selective_scan_triton", "L = 300"))
    assert "launched 0 kernel(s), exactly 1 expected" in msg


# ---------------------------------------------------------------- Mamba-2's chunked SSD


def _ssd(x, a, b, c, chunk):
    if chunk < 1:
        raise ValueError(chunk)
    return S.ssd_chunks(x, a, b, c, chunk)


def test_ssd_forms_agree_and_the_reference_passes_its_checks():
    g = torch.Generator().manual_seed(0)
    x, a = torch.randn(2, 37, 3, generator=g), 0.5 + 0.5 * torch.rand(2, 37, generator=g)
    b, c = torch.randn(2, 37, 4, generator=g), torch.randn(2, 37, 4, generator=g)
    want = S.ssd_spec(x, a, b, c)
    assert torch.allclose(S.ssd_dense(x, a, b, c), want, atol=1e-12)
    for chunk in (1, 5, 16, 37, 64):
        assert torch.allclose(S.ssd_chunks(x, a, b, c, chunk).double(), want, atol=1e-5)
    for case in S.EXERCISES["ssd_chunked"].cases(np.random.default_rng(4)):
        assert _verdict("ssd_chunked", _ssd, case) is None, case.kind


def test_ssd_shortcuts_are_refused_each_by_its_rule():
    cost = _case("ssd_chunked", "b = 1, L = ")

    def dense(x, a, b, c, chunk):
        return S.ssd_dense(x, a, b, c).float()

    def time_loop(x, a, b, c, chunk):
        h, ys = torch.zeros(x.shape[0], b.shape[-1], x.shape[-1]), []
        for t in range(x.shape[1]):
            h = a[:, t, None, None] * h + b[:, t, :, None] * x[:, t, None, :]
            ys.append((c[:, t, :, None] * h).sum(1))
        return torch.stack(ys, 1)

    def blocked(x, a, b, c, chunk):  # every output chunk against all earlier inputs: O(L^2) work
        cum, outs = a.log().cumsum(-1), []
        for s in range(0, x.shape[1], chunk):
            e = min(s + chunk, x.shape[1])
            keep = torch.arange(s, e)[:, None] >= torch.arange(e)[None, :]
            m = (cum[:, s:e, None] - cum[:, None, :e]).masked_fill(~keep, -float("inf")).exp()
            outs.append((m * (c[:, s:e] @ b[:, :e].transpose(1, 2))) @ x[:, :e])
        return torch.cat(outs, 1)

    assert "(L, L) mask" in _verdict("ssd_chunked", dense, cost)
    assert "lines of Python" in _verdict("ssd_chunked", time_loop, cost)
    assert "O(L^2) work" in _verdict("ssd_chunked", blocked, cost)
    assert _verdict("ssd_chunked", blocked, _case("ssd_chunked", "b = 2")) is None  # right values: only the cost case sees it
