"""Chapter 06 references: the measuring tool counts what autograd really saves, checkpointing
agrees with plain autograd, the peak model predicts the measured peak to the byte, the dynamic
programmes are the brute-force optima, and every check fails when it should, without showing the
expected values."""
import itertools
import math
import re

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder import notebooks, verifier
from autograder.exercise import Case
from autograder.reference import checkpointing as C

F64 = torch.float64


def _stack(widths, seed=0):
    """Linear + tanh layers mapping widths[i] -> widths[i + 1], float64."""
    torch.manual_seed(seed)
    return [nn.Sequential(nn.Linear(a, b), nn.Tanh()).to(F64) for a, b in zip(widths, widths[1:])]


def _params(layers):
    return [p for layer in layers for p in layer.parameters()]


def _grads(x, params):
    return [t.grad.clone() for t in (x, *params)]


def _zero(x, params):
    for t in (x, *params):
        t.grad = None


# ---------------------------------------------------------------- the measuring tool

def test_saved_bytes_counts_each_layer_output_once_and_returns_to_zero():
    layers = _stack([16] * 9)  # 8 layers
    x = torch.randn(4, 16, dtype=F64, requires_grad=True)
    log = C.SavedBytes(exclude=_params(layers))
    with log:
        C.run_layers(layers, x).sum().backward()
    unit = 4 * 16 * 8
    assert log.peak == 9 * unit, "x plus one output per layer: tanh's result is also the next linear's input"
    assert log.live == 0 and log.timeline[-1] == 0, "everything saved is freed by the end of backward"
    assert max(log.timeline) == log.peak


def test_saved_bytes_counts_parameters_unless_excluded():
    layer = nn.Linear(8, 8).to(F64)
    x = torch.randn(2, 8, dtype=F64, requires_grad=True)
    with C.SavedBytes() as everything:
        layer(x).sum().backward()
    with C.SavedBytes(exclude=layer.parameters()) as activations:
        layer(x).sum().backward()
    assert activations.peak == 2 * 8 * 8, "the input only"
    assert everything.peak == activations.peak + 8 * 8 * 8, "the weight (seen through a transposed view) is counted once"


def test_saved_bytes_marks_and_reset_peak():
    x = torch.randn(100, dtype=F64, requires_grad=True)
    log = C.SavedBytes()
    with log:
        y = x.exp()  # saves its result
        log.mark("forward done")
        log.reset_peak()
        y.sum().backward()
    assert log.marks["forward done"] == 1 and log.peak == 800


# ---------------------------------------------------------------- checkpoint

def _mlp_problem(seed=0, p=0.0):
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(6, 24, dtype=F64, generator=g).requires_grad_()
    w2 = torch.randn(24, 6, dtype=F64, generator=g).requires_grad_()
    x = torch.randn(5, 6, dtype=F64, generator=g).requires_grad_()
    return (lambda x: F.dropout(torch.tanh(x @ w1), p=p, training=p > 0) @ w2), x, [w1, w2]


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_checkpoint_matches_plain_autograd(p):
    f, x, params = _mlp_problem(p=p)
    torch.manual_seed(3)
    f(x).sum().backward()
    want = _grads(x, params)
    _zero(x, params)
    torch.manual_seed(3)
    C.checkpoint(f, x).sum().backward()
    for got, w in zip(_grads(x, params), want):
        torch.testing.assert_close(got, w, rtol=1e-12, atol=1e-12)


def test_checkpoint_saves_only_inputs_and_runs_fn_twice():
    f, x, params = _mlp_problem()
    calls = []
    log = C.SavedBytes(exclude=params)
    with log:
        y = C.checkpoint(lambda x: calls.append(1) or f(x), x)
        assert log.peak == x.numel() * 8 and len(calls) == 1
        y.sum().backward()
    assert len(calls) == 2 and log.live == 0


def test_checkpoint_leaves_the_callers_rng_stream_alone():
    f, x, _ = _mlp_problem(p=0.5)
    torch.manual_seed(7)
    y = C.checkpoint(f, x)
    after_forward = torch.get_rng_state()
    y.sum().backward()
    assert torch.equal(torch.get_rng_state(), after_forward)


# ---------------------------------------------------------------- checkpoint_sequential and the peak model

@pytest.mark.parametrize("n,segments", [(1, 1), (10, 3), (10, 4), (12, 12), (13, 5)])
def test_checkpoint_sequential_matches_plain_autograd(n, segments):
    layers = _stack([8] * (n + 1), seed=n)
    params = _params(layers)
    x = torch.randn(3, 8, dtype=F64, requires_grad=True)
    C.run_layers(layers, x).square().sum().backward()
    want = _grads(x, params)
    _zero(x, params)
    C.checkpoint_sequential(layers, x, segments).square().sum().backward()
    for got, w in zip(_grads(x, params), want):
        torch.testing.assert_close(got, w, rtol=1e-12, atol=1e-12)


def test_equal_segments_cover_every_layer_and_refuse_bad_counts():
    for n in range(1, 30):
        for k in range(1, n + 1):
            bounds = C.equal_segments(n, k)
            sizes = [b - a for a, b in bounds]
            assert bounds[0][0] == 0 and bounds[-1][1] == n and max(sizes) - min(sizes) <= 1
            assert all(s == t for (_, s), (t, _) in zip(bounds, bounds[1:]))
    for bad in (0, -1, 6):
        with pytest.raises(ValueError):
            C.equal_segments(5, bad)


def test_peak_model_predicts_the_measured_peak_exactly():
    """Non-uniform widths, random plans: measured live saved bytes = plan_peak + the input."""
    rng = np.random.default_rng(0)
    for trial in range(25):
        n = int(rng.integers(1, 11))
        widths = [int(w) for w in rng.integers(1, 40, n + 1)]
        layers = _stack(widths, seed=trial)
        x = torch.randn(2, widths[0], dtype=F64, requires_grad=True)
        act = [2 * w * 8 for w in widths[1:]]  # bytes of each layer's output
        kept = sorted(int(k) for k in rng.choice(n, int(rng.integers(0, n + 1)), replace=False))
        log = C.SavedBytes(exclude=_params(layers))
        with log:
            C.checkpoint_plan(layers, x, kept).sum().backward()
        assert log.peak == C.plan_peak(act, kept) + x.numel() * 8, (widths, kept)


def test_sqrt_n_segments_cut_the_peak_to_a_quarter_for_64_layers():
    layers = _stack([16] * 65)
    x = torch.randn(4, 16, dtype=F64, requires_grad=True)
    peaks = {}
    for k in (None, 8):
        log = C.SavedBytes(exclude=_params(layers))
        with log:
            out = C.run_layers(layers, x) if k is None else C.checkpoint_sequential(layers, x, k)
            out.sum().backward()
        peaks[k] = log.peak
    unit = 4 * 16 * 8
    assert peaks[None] == 65 * unit and peaks[8] == (1 + 7 + 8) * unit  # x + 7 kept + one segment


# ---------------------------------------------------------------- the plan

def test_plan_peak_extremes_and_a_hand_example():
    a = [3, 1, 4, 1, 5]
    assert C.plan_peak(a, []) == C.plan_peak(a, range(5)) == sum(a)
    # keep layer 2: span (-1, 2] = 3 + 1 + 4 = 8; span (2, 4] = 4 held + 1 + 5 = 10
    assert C.plan_peak(a, [2]) == 10
    with pytest.raises(ValueError):
        C.plan_peak(a, [2, 1])
    with pytest.raises(ValueError):
        C.plan_peak(a, [5])


@pytest.mark.parametrize("n", range(1, 13))
def test_dynamic_programme_equals_brute_force(n):
    rng = np.random.default_rng(n)
    trials = 40 if n <= 8 else 6
    for _ in range(trials):
        high = int(rng.choice([3, 20, 10**9]))
        a = [int(v) for v in rng.integers(0, high, n)]
        peak, plan = C.min_peak_plan(a)
        assert peak == C.brute_force_plan(a)[0], a
        assert C.plan_peak(a, plan) == peak, (a, plan)


def test_dynamic_programme_on_equal_layers_is_about_sqrt_2n():
    """Span t is processed while t kept outputs are held, so its length can be L - t: the best
    peak L is the smallest with L + (L - 1) + ... + 1 >= n, about sqrt(2n), below 2 sqrt(n)."""
    for n in (1, 2, 16, 64, 100, 300):
        peak, plan = C.min_peak_plan([1] * n)
        assert peak == next(L for L in range(1, n + 1) if L * (L + 1) // 2 >= n)
        assert peak <= C.plan_peak([1] * n, C.sqrt_plan(n)) <= 2 * math.sqrt(n) + 1


def test_dynamic_programme_beats_or_ties_the_heuristics():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = [int(v) for v in rng.integers(1, 1000, int(rng.integers(5, 60)))]
        peak, _ = C.min_peak_plan(a)
        greedy = min(C.plan_peak(a, C.greedy_plan(a, b)) for b in range(0, sum(a) + 1, max(1, sum(a) // 200)))
        assert peak <= greedy and peak <= C.plan_peak(a, C.sqrt_plan(len(a)))


def test_min_peak_plan_refuses_bad_input():
    for bad in ([], [1, -2, 3]):
        with pytest.raises(ValueError):
            C.min_peak_plan(bad)


def test_notebook_plan_peak_is_the_reference_formula():
    """The exercise notebook carries its own copy of plan_peak; it must be the same function."""
    source = next(c.source for c in notebooks.source_notebook("06-checkpointing").cells
                  if c.cell_type == "code" and c.source.startswith("def plan_peak"))
    namespace = {}
    exec(source.split("\nprint(")[0], namespace)
    rng = np.random.default_rng(2)
    for _ in range(200):
        n = int(rng.integers(1, 10))
        a = [int(v) for v in rng.integers(0, 50, n)]
        kept = sorted(int(k) for k in rng.choice(n, int(rng.integers(0, n + 1)), replace=False))
        assert namespace["plan_peak"](a, kept) == C.plan_peak(a, kept)


def test_min_recompute_plan_equals_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(150):
        n = int(rng.integers(1, 9))
        a, f = [int(v) for v in rng.integers(0, 8, n)], [int(v) for v in rng.integers(0, 30, n)]
        budget = int(rng.integers(0, sum(a) + 2))
        try:
            want = C.brute_force_recompute(a, f, budget)[0]
        except ValueError:
            with pytest.raises(ValueError):
                C.min_recompute_plan(a, f, budget)
            continue
        got, plan = C.min_recompute_plan(a, f, budget)
        assert got == want and C.plan_peak(a, plan) <= budget and C.plan_recompute(f, plan) == got, (a, f, budget)


def test_min_recompute_plan_ends_at_the_two_extremes():
    """A budget that holds everything recomputes nothing; the smallest feasible budget is the
    min-peak plan's peak, and one byte less raises."""
    rng = np.random.default_rng(4)
    for _ in range(20):
        a = [int(v) for v in rng.integers(1, 6, int(rng.integers(2, 15)))]
        f = [int(v) for v in rng.integers(1, 20, len(a))]
        assert C.min_recompute_plan(a, f, sum(a))[0] == 0
        low = C.min_peak_plan(a)[0]
        C.min_recompute_plan(a, f, low)
        with pytest.raises(ValueError):
            C.min_recompute_plan(a, f, low - 1)


def test_min_recompute_plan_refuses_bad_input():
    for bad in (([], [], 3), ([1, 2], [1], 3), ([1, -2, 3], [1, 1, 1], 9), ([1, 2], [1, -1], 9)):
        with pytest.raises(ValueError):
            C.min_recompute_plan(*bad)


def test_notebook_plan_recompute_is_the_reference_formula():
    source = next(c.source for c in notebooks.source_notebook("06-checkpointing").cells
                  if c.cell_type == "code" and c.source.startswith("def plan_peak"))
    namespace = {}
    exec(source.split("\nprint(")[0], namespace)
    rng = np.random.default_rng(5)
    for _ in range(100):
        n = int(rng.integers(1, 10))
        f = [int(v) for v in rng.integers(0, 50, n)]
        kept = sorted(int(k) for k in rng.choice(n, int(rng.integers(0, n + 1)), replace=False))
        assert namespace["plan_recompute"](f, kept) == C.plan_recompute(f, kept)


# ---------------------------------------------------------------- exercises: cases, checks and what they say

REFERENCES = {"checkpoint": C.checkpoint, "checkpoint_sequential": C.checkpoint_sequential,
              "min_recompute_plan": C.min_recompute_plan}


@pytest.mark.parametrize("name", list(C.EXERCISES))
def test_reference_passes_its_own_checks(name):
    ex = C.EXERCISES[name]
    for case in ex.cases(np.random.default_rng(11)):
        ex.check(case, ex.run(REFERENCES[name], case), ex.reference(case))


@pytest.mark.parametrize("name", list(C.EXERCISES))
def test_cases_are_deterministic_per_seed(name):
    ex = C.EXERCISES[name]
    one, two = ex.cases(np.random.default_rng(5)), ex.cases(np.random.default_rng(5))
    assert [c.kind for c in one] == [c.kind for c in two]
    for c1, c2 in zip(one, two):
        for x, y in zip(c1.args, c2.args):
            np.testing.assert_array_equal(x, y)


def _first_failure(name, fn, seed=11):
    ex = C.EXERCISES[name]
    for case in ex.cases(np.random.default_rng(seed)):
        got = verifier._run(ex, fn, case)
        want = ex.reference(case)
        try:
            ex.check(case, got, want)
        except AssertionError as e:
            return case, str(e), want
    return None, None, None


class _NoRng(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, *args):
        ctx.fn = fn
        ctx.save_for_backward(*args)
        return fn(*args)

    @staticmethod
    def backward(ctx, grad_out):
        inputs = [a.detach().requires_grad_(a.requires_grad) for a in ctx.saved_tensors]
        with torch.enable_grad():
            out = ctx.fn(*inputs)
        torch.autograd.backward(out, grad_out)
        return (None, *(a.grad if a.requires_grad else None for a in inputs))


def _no_rng(fn, *args):
    return _NoRng.apply(fn, *args)


def _plain(fn, *args):
    return fn(*args)


def _three_times(fn, *args):
    fn(*args)
    return C.checkpoint(fn, *args)


class _SavesAll(_NoRng):
    @staticmethod
    def forward(ctx, fn, *args):
        ctx.fn = fn
        ctx.save_for_backward(*args)
        with torch.enable_grad():  # a graph with every intermediate, kept alive on ctx
            ctx.kept = fn(*[a.detach().requires_grad_(a.is_floating_point()) for a in args])
        return ctx.kept.detach()


def _saves_everything(fn, *args):
    return _SavesAll.apply(fn, *args)


class _NoParams(_NoRng):
    @staticmethod
    def backward(ctx, grad_out):
        inputs = [a.detach().requires_grad_(a.requires_grad) for a in ctx.saved_tensors]
        with torch.enable_grad():
            out = ctx.fn(*inputs)
        grads = iter(torch.autograd.grad(out, [a for a in inputs if a.requires_grad], grad_out))
        return (None, *(next(grads) if a.requires_grad else None for a in inputs))


def _no_params(fn, *args):
    return _NoParams.apply(fn, *args)


class _RewindsRng(_NoRng):
    """Restores the forward's RNG state for the recompute, but not inside fork_rng: the caller's
    stream is rewound to where the forward pass began."""

    @staticmethod
    def forward(ctx, fn, *args):
        ctx.state = torch.get_rng_state()
        return _NoRng.forward(ctx, fn, *args)

    @staticmethod
    def backward(ctx, grad_out):
        torch.set_rng_state(ctx.state)
        return _NoRng.backward(ctx, grad_out)


class _CtxAttributes(_NoRng):
    """Keeps the inputs as ctx attributes: nothing goes through save_for_backward."""

    @staticmethod
    def forward(ctx, fn, *args):
        ctx.fn, ctx.inputs = fn, [a.detach() for a in args]
        return fn(*args)

    @staticmethod
    def backward(ctx, grad_out):
        inputs = [a.detach().requires_grad_(a.requires_grad) for a in ctx.inputs]
        with torch.enable_grad():
            out = ctx.fn(*inputs)
        torch.autograd.backward(out, grad_out)
        return (None, *(a.grad if a.requires_grad else None for a in inputs))


class _CtxCopies(_NoRng):
    """Saves the inputs, and keeps copies of them in a dict on ctx as well."""

    @staticmethod
    def forward(ctx, fn, *args):
        ctx.spare = {"copies": [(a.clone(),) for a in args]}
        return _NoRng.forward(ctx, fn, *args)


class _GraphOnCtx(_NoRng):
    """Builds the forward's graph under save_on_cpu (hooks of its own, which the measure's never
    see) and keeps it on ctx, in a closure."""

    @staticmethod
    def forward(ctx, fn, *args):
        ctx.save_for_backward(*args)
        leaves = [a.detach().requires_grad_(a.requires_grad) for a in args]
        with torch.enable_grad(), torch.autograd.graph.save_on_cpu():
            out = fn(*leaves)
        ctx.fn = lambda *a, kept=(out.grad_fn,): fn(*a)  # the graph, alive through its last node
        return out.detach()


@pytest.mark.parametrize("fn,kind,message", [
    (_RewindsRng.apply, "", "torch.random.fork_rng"),
    (_CtxAttributes.apply, "", "were not saved with ctx.save_for_backward"),
    (_CtxCopies.apply, "", "kept as ctx attributes"),
    (_GraphOnCtx.apply, "", "autograd history"),
    (_no_rng, "dropout", "restore the RNG state"),
    (_plain, "", "fn ran 1 times in all"),
    (_three_times, "", "fn ran 2 times during the forward pass"),
    (_saves_everything, "", "more than the"),
    (_no_params, "", "parameters fn closes over got no gradient"),
])
def test_checkpoint_checks_fail_with_a_lesson(fn, kind, message):
    case, text, _ = _first_failure("checkpoint", fn)
    assert case is not None and kind in case.kind and message in text, (case and case.kind, text)


def _seq_skips_tail(layers, x, segments):
    if not 1 <= segments <= len(layers):
        raise ValueError
    size = len(layers) // segments
    for t in range(segments):
        x = checkpoint(lambda h, s=layers[t * size:(t + 1) * size]: C.run_layers(s, h), x)  # noqa: F821  (injected)
    return x


def _seq_by_bounds(bounds):
    """A checkpoint_sequential that cuts the chain where bounds(n, segments) says, one checkpoint
    call per (start, stop)."""
    def run(layers, x, segments):
        if not 1 <= segments <= len(layers):
            raise ValueError
        for a, b in bounds(len(layers), segments):
            x = checkpoint(lambda h, s=layers[a:b]: C.run_layers(s, h), x)  # noqa: F821  (injected)
        return x
    return run


def _sqrt_bounds(n, segments):
    return C.equal_segments(n, max(1, round(math.sqrt(n))))


def _remainder_last(n, segments):
    size = n // segments
    return [(t * size, n if t == segments - 1 else (t + 1) * size) for t in range(segments)]


def _seq_late_binding(layers, x, segments):
    """The hint's mistake: every segment's function reads the loop's last slice when it recomputes."""
    if not 1 <= segments <= len(layers):
        raise ValueError
    bounds = C.equal_segments(len(layers), segments)
    for a, b in bounds:
        x = checkpoint(lambda h: C.run_layers(layers[a:b], h), x)  # noqa: F821, B023
    return x


def _seq_numpy(layers, x, segments):
    x.detach().numpy().copy()  # a copy "for later": bytes no saved-tensor hook sees
    return _seq_clamps(layers, x, segments)


def _seq_own_checkpoint(layers, x, segments):
    """Right segments, but through C.checkpoint directly instead of the name `checkpoint`."""
    for a, b in C.equal_segments(len(layers), segments):
        x = C.checkpoint(lambda h, s=layers[a:b]: C.run_layers(s, h), x)
    return x


def _seq_plain(layers, x, segments):
    if not 1 <= segments <= len(layers):
        raise ValueError
    return C.run_layers(layers, x)


def _seq_clamps(layers, x, segments):
    segments = min(max(segments, 1), len(layers))
    for a, b in C.equal_segments(len(layers), segments):
        x = checkpoint(lambda h, s=layers[a:b]: C.run_layers(s, h), x)  # noqa: F821  (injected)
    return x


def _seq_uses_global_checkpoint(layers, x, segments):
    if not 1 <= segments <= len(layers):
        raise ValueError
    for a, b in C.equal_segments(len(layers), segments):
        x = checkpoint(lambda h, s=layers[a:b]: C.run_layers(s, h), x)  # noqa: F821  (injected)
    return x


@pytest.mark.parametrize("fn,kind,message", [
    (_seq_skips_tail, "not divisible", "every layer must run"),
    (_seq_plain, "30%", "autograd held up to"),
    (_seq_clamps, "raise", "should raise ValueError"),
    (_seq_by_bounds(_sqrt_bounds), "segments = 1", "checkpoint 2 times for segments = 1"),
    (_seq_late_binding, "", "grad"),
    (_seq_by_bounds(_remainder_last), "not divisible", "the first r segments hold q + 1"),
    (_seq_own_checkpoint, "", "outside every checkpoint call"),
    (_seq_numpy, "", "NumPy is refused"),
])
def test_checkpoint_sequential_checks_fail_with_a_lesson(fn, kind, message):
    case, text, _ = _first_failure("checkpoint_sequential", fn)
    assert case is not None and kind in case.kind and message in text, (case and case.kind, text)


def test_checkpoint_sequential_is_graded_with_the_reference_checkpoint():
    """A global `checkpoint` that saves everything (a broken exercise 1) does not cost exercise 2,
    and the learner's module is left as it was."""
    globals()["checkpoint"] = _saves_everything
    try:
        case, text, _ = _first_failure("checkpoint_sequential", _seq_uses_global_checkpoint)
        assert case is None, text
        assert globals()["checkpoint"] is _saves_everything
    finally:
        del globals()["checkpoint"]
    assert "checkpoint" not in globals()


def _recompute_keeps_all(act, flops, budget):
    return 0, list(range(len(act)))


def _recompute_no_raise(act, flops, budget):
    try:
        return C.min_recompute_plan(act, flops, budget)
    except ValueError:
        return 0, []


def _recompute_min_peak(act, flops, budget):
    peak, plan = C.min_peak_plan(act)
    if peak > budget:
        raise ValueError
    return C.plan_recompute(flops, plan), plan


def _recompute_lies(act, flops, budget):
    cost, plan = C.min_recompute_plan(act, flops, budget)
    return cost + 1, plan


def _recompute_shifted(act, flops, budget):
    cost, plan = C.min_recompute_plan(act, flops, budget)
    return cost, [k + 1 for k in plan]


def _recompute_brute(act, flops, budget):
    n, best = len(act), None
    if n == 0 or len(flops) != n:
        raise ValueError
    for mask in range(1 << n):
        held = peak = run = cost = 0
        for k in range(n):
            run += act[k]
            peak = max(peak, held + run)
            if mask >> k & 1:
                held, run = held + act[k], 0
            else:
                cost += flops[k]
        if peak <= budget and (best is None or cost < best[0]):
            best = (cost, [k for k in range(n) if mask >> k & 1])
    if best is None:
        raise ValueError
    return best


@pytest.mark.parametrize("fn,kind,message", [
    (_recompute_keeps_all, "n = ", "budget"),
    (_recompute_no_raise, "", "raise ValueError"),
    (_recompute_min_peak, "", "not the peak"),
    (_recompute_lies, "", "not what your plan recomputes"),
    (_recompute_shifted, "", "count layers from 0"),
    (_recompute_brute, "", "Python lines"),
])
def test_min_recompute_plan_checks_fail_with_a_lesson(fn, kind, message, monkeypatch):
    # these variants call the reference module (C.min_recompute_plan, ...) to test the other checks: let them
    import autograder.cases.checkpointing as cases

    monkeypatch.setattr(cases, "plain_python_refusal", lambda fn: "")
    case, text, want = _first_failure("min_recompute_plan", fn)
    assert case is not None and kind in case.kind and message in text, (case and case.kind, text)
    if "recomputed" in want and int(want["recomputed"]) > 9:
        assert str(int(want["recomputed"])) not in text, "a message must not show the expected FLOPs"


def test_line_count_is_only_the_learners_module():
    # the reference's own table, counted in its own module, stays far inside the budget at n = 40
    act, flops, budget = [2] * 40, [3] * 40, 30
    result, lines = C._count_lines(C.min_recompute_plan, (act, flops, budget), C.recompute_work_budget(40, budget))
    assert result is not None and lines < 0.25 * C.recompute_work_budget(40, budget)


def test_verify_records_and_the_grader_agrees(tmp_path, monkeypatch):
    monkeypatch.setenv(verifier.SEED_VAR, "4321")
    monkeypatch.setenv(verifier.RECORD_VAR, str(tmp_path))
    for name, fn in REFERENCES.items():
        verifier.verify("06-checkpointing", name, fn)
        assert verifier.check_record("06-checkpointing", name, 4321, tmp_path / f"{name}.npz") is None


def test_forbidden_names_catch_torch_utils_checkpoint():
    from autograder import forbidden

    names = C.EXERCISES["checkpoint"].forbidden
    assert forbidden.uses("from torch.utils.checkpoint import checkpoint as ck", set(names))
    assert forbidden.uses("y = torch.utils.checkpoint.checkpoint(f, x)", set(names))
    assert forbidden.uses("with torch.autograd.graph.saved_tensors_hooks(p, u): pass", set(names))
    assert not forbidden.uses("class CheckpointFunction:\n    pass\ndef checkpoint(fn, *args):\n    return 1", set(names))
    seq = set(C.EXERCISES["checkpoint_sequential"].forbidden)
    assert forbidden.uses("from torch.utils.checkpoint import checkpoint_sequential", seq)
    assert not forbidden.uses("x = checkpoint(f, x)", seq)


def test_bench_runs_on_the_cpu():
    rows = C.bench(lambda fn: (fn(), 0.0)[1], cuda=False)
    n = len(rows["segments"])
    assert n == 3 and all(len(rows[k]) == n for k in ("saved_peak_bytes", "step_seconds"))
    assert rows["saved_peak_bytes"][0] > rows["saved_peak_bytes"][2] > 0
    assert re.search(r"\d+ blocks", rows["config"])


def _plan_cubic_sums(act):
    """The right recurrence, each span summed by sum() over a slice: O(n) work in C per pair."""
    n = len(act)
    a = [0, *act, 0]
    best, nxt = [0] * (n + 2), [n + 1] * (n + 2)
    for i in range(n, -1, -1):
        top = None
        for j in range(i + 1, n + 2):
            cost = max(sum(a[i + 1 : j + 1]), a[j] + best[j])
            if top is None or cost < top:
                top, nxt[i] = cost, j
        best[i] = top
    return best[0], []


def _plan_sums_a_generator(act):
    return sum(v for v in act), []


def _plan_accumulates(act):
    return list(itertools.accumulate(act))[-1], []


_total = sum


def _plan_alias(act):
    return _total(act), []


def _plan_private(act):
    return act._items[0], []


def _plan_tensor(act):
    return int(_TENSOR.new_tensor(list(act)).cumsum(0)[-1]), []


_TENSOR = torch.zeros(1)


def _plan_default(act, total=sum):
    return total(act), []


def _closing_over(add):
    def plan(act):
        return list(add(act))[-1], []
    return plan


_plan_closure = _closing_over(itertools.accumulate)


class _Adder:
    total = sum


def _plan_class_attribute(act):
    return _Adder.total(act), []


def _sum_helper(a):
    return sum(a)


def _plan_helper_default(act, helper=_sum_helper):
    return helper(act), []


@pytest.mark.parametrize("fn,message", [
    (_plan_cubic_sums, "slices a sequence"),
    (_plan_sums_a_generator, "uses `sum`"),
    (_plan_accumulates, "uses the module `itertools`"),
    (_plan_alias, "uses `_total`"),
    (_plan_private, "reads the attribute `_items`"),
    (_plan_tensor, "uses `_TENSOR`"),
    (_plan_default, "binds `sum`"),
    (_plan_closure, "binds `accumulate`"),
    (_plan_class_attribute, "binds `sum`"),
    (_plan_helper_default, "uses `sum`"),
    (C.min_recompute_plan, ""),
])
def test_plans_are_plain_python(fn, message):
    import autograder.cases.checkpointing as cases

    refusal = cases.plain_python_refusal(fn)
    assert (message in refusal) if message else refusal == "", refusal


def test_sums_over_slices_lose_the_exercise_with_a_lesson():
    def sums(act, flops, budget):
        return sum(flops[0:len(flops)]), []
    case, text, _ = _first_failure("min_recompute_plan", sums)
    assert case is not None and "no sum, no slicing" in text and "section 6" in text, text


def test_reads_of_the_arguments_count_as_work():
    def rereads(act, flops, budget):  # few lines, but reads all of flops for every pair
        n, top = len(act), 0
        for i in range(n):
            for j in range(i, n):
                top = max(top, max(flops))
        return top, []
    case = Case("n = 100", (np.ones(100, dtype=np.int64), np.ones(100, dtype=np.int64), 0))
    got = C.EXERCISES["min_recompute_plan"].run(rereads, case)
    assert int(got["lines"]) <= C.recompute_work_budget(100, 0) < int(got["work"])
