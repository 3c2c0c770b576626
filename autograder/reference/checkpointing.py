"""Chapter 06: gradient checkpointing.

The measuring tool: `SavedBytes`, a context manager over `torch.autograd.graph.saved_tensors_hooks`
that counts the bytes of every distinct storage autograd holds for the backward pass, live, over
time (exact and device-independent: the bytes of what autograd saves, not the allocator's peak). The book and the checks
both measure with it.

Specs: plain autograd (store everything), `plan_peak` (the peak of a checkpoint plan under the
chapter's model, evaluated literally) and `brute_force_plan` (every subset). Fast: `checkpoint`
(a torch.autograd.Function that saves only its inputs, restores the RNG state and recomputes),
`checkpoint_sequential` (k segments), `min_peak_plan` (the O(n^2) dynamic programme), `min_recompute_plan` (the least recomputation
within a budget, O(n^2 budget)).
"""
import math
from functools import partial
from itertools import combinations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.device import DEVICE
from autograder.cases.checkpointing import (
    TASKS,
    SavedBytes,
    _ckpt_problem,
    _grads,
    _input_bytes,
    _seq_problem,
    BAD_SEGMENTS,
    _caller_draws,
    _rng_state,
    recompute_work_budget,
    _count_lines,  # noqa: F401  (re-exported for the tests)
)
from autograder.exercise import Case, to_numpy
from autograder.tolerance import compare

# ---------------------------------------------------------------- the measuring tool


# ---------------------------------------------------------------- specs


def run_layers(layers, x: torch.Tensor) -> torch.Tensor:
    """The plain chain: every layer's saved tensors stay until the backward pass reaches it."""
    for layer in layers:
        x = layer(x)
    return x


def plan_peak(act_bytes, kept) -> int:
    """Peak bytes of the checkpoint plan that keeps the outputs of the layers in `kept`.

    Layer i's backward needs its own output (tanh, ReLU, softmax save it), and the backward pass
    walks the spans between consecutive kept layers from the last to the first. Recomputing the
    span (i, j] materialises the outputs of layers i+1..j; while it is processed, the kept outputs
    up to and including layer i are still held (those after it have been used and freed):

        peak = max over spans (i, j] of  sum(a[k] for kept k <= i) + sum(a[i+1..j])

    with i = -1 before the first span and j = n - 1 for the last span.
    """
    a = [int(v) for v in act_bytes]
    n = len(a)
    kept = [int(k) for k in kept]
    if any(k < 0 or k >= n for k in kept) or any(x >= y for x, y in zip(kept, kept[1:])):
        raise ValueError("kept must be sorted, distinct layer indices in [0, n)")
    bounds = [-1, *kept, n - 1]
    held = peak = 0
    for i, j in zip(bounds, bounds[1:]):
        peak = max(peak, held + sum(a[i + 1 : j + 1]))
        if j in kept:
            held += a[j]
    return peak


def brute_force_plan(act_bytes) -> tuple[int, list[int]]:
    """The optimum over every subset (2^n plans): the ground truth for small n."""
    n = len(act_bytes)
    if n == 0:
        raise ValueError("act_bytes is empty: there is no layer to plan for")
    best = (plan_peak(act_bytes, []), [])
    for size in range(1, n + 1):
        for kept in combinations(range(n), size):
            peak = plan_peak(act_bytes, kept)
            if peak < best[0]:
                best = (peak, list(kept))
    return best


def equal_segments(n: int, segments: int) -> list[tuple[int, int]]:
    """[start, stop) of `segments` contiguous groups of n layers whose sizes differ by at most
    one (the first n % segments get the extra layer)."""
    if not 1 <= segments <= n:
        raise ValueError(f"segments must lie in [1, {n}], got {segments}")
    size, extra = divmod(n, segments)
    bounds, start = [], 0
    for t in range(segments):
        stop = start + size + (t < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def sqrt_plan(n: int) -> list[int]:
    """Keep the output at the end of each of round(sqrt(n)) equal segments (not the last)."""
    k = max(1, round(math.sqrt(n)))
    return [stop - 1 for _, stop in equal_segments(n, k)[:-1]]


def greedy_plan(act_bytes, budget: int) -> list[int]:
    """Chen et al.'s budget rule: walk the layers, and keep a layer's output as soon as the
    bytes accumulated since the last kept one exceed `budget`."""
    kept, run = [], 0
    for i, a in enumerate(act_bytes):
        run += int(a)
        if run > budget:
            kept.append(i)
            run = 0
    return kept


# ---------------------------------------------------------------- fast implementations


def _cuda_devices(tensors) -> list[int]:
    return sorted({t.get_device() for t in tensors if t.is_cuda})


class CheckpointFunction(torch.autograd.Function):
    """Forward: run fn without building a graph (Function.forward runs under no_grad), save only
    the inputs and the RNG state. Backward: restore the RNG state, rerun fn with grad enabled on
    detached copies of the inputs, and backpropagate through that fresh graph."""

    @staticmethod
    def forward(ctx, fn, *args):
        ctx.fn = fn
        ctx.devices = _cuda_devices(args)
        ctx.cpu_rng = torch.get_rng_state()
        ctx.cuda_rng = [torch.cuda.get_rng_state(d) for d in ctx.devices]
        ctx.save_for_backward(*args)
        return fn(*args)

    @staticmethod
    def backward(ctx, grad_out):
        inputs = [x.detach().requires_grad_(x.requires_grad) for x in ctx.saved_tensors]
        with torch.random.fork_rng(devices=ctx.devices):  # leave the caller's RNG stream alone
            torch.set_rng_state(ctx.cpu_rng)
            for device, state in zip(ctx.devices, ctx.cuda_rng):
                torch.cuda.set_rng_state(state, device)
            with torch.enable_grad():
                out = ctx.fn(*inputs)
        torch.autograd.backward(out, grad_out)  # reaches the parameters fn closes over, too
        return (None, *(x.grad if x.requires_grad else None for x in inputs))


def checkpoint(fn, *args: torch.Tensor) -> torch.Tensor:
    """fn(*args), keeping only args for the backward pass and recomputing the rest there."""
    return CheckpointFunction.apply(fn, *args)


def checkpoint_sequential(layers, x: torch.Tensor, segments: int) -> torch.Tensor:
    """The chain of `layers` in `segments` checkpointed segments of (nearly) equal length."""
    for start, stop in equal_segments(len(layers), segments):
        x = checkpoint(partial(run_layers, layers[start:stop]), x)
    return x


def checkpoint_plan(layers, x: torch.Tensor, kept) -> torch.Tensor:
    """The chain of `layers`, keeping the outputs of the layers in `kept` (a plan)."""
    bounds = [-1, *kept, len(layers) - 1]
    for i, j in zip(bounds, bounds[1:]):
        if j > i:
            x = checkpoint(partial(run_layers, layers[i + 1 : j + 1]), x)
    return x


def min_peak_plan(act_bytes) -> tuple[int, list[int]]:
    """The minimum of plan_peak over all plans, and one plan that reaches it, in O(n^2).

    With a[1..n] the sizes, a[n+1] = 0 a virtual kept end and S(i, j) = a[i+1] + ... + a[j],
    R(i) = the smallest peak of the layers after a kept layer i, counted from what is held at i:

        R(n + 1) = 0,   R(i) = min over j in (i, n + 1] of max(S(i, j), a[j] + R(j)),

    and the answer is R(0) (layer 0 is the network's input).
    """
    a = [int(v) for v in act_bytes]
    n = len(a)
    if n == 0:
        raise ValueError("act_bytes is empty: there is no layer to plan for")
    if min(a) < 0:
        raise ValueError("activation sizes must be non-negative")
    a = [0, *a, 0]  # 1-based, with the virtual end a[n + 1] = 0
    prefix = [0] * (n + 2)
    for k in range(1, n + 2):
        prefix[k] = prefix[k - 1] + a[k]
    best = [0] * (n + 2)
    choice = [n + 1] * (n + 2)
    for i in range(n, -1, -1):
        top, arg = None, n + 1
        for j in range(i + 1, n + 2):
            cost = max(prefix[j] - prefix[i], a[j] + best[j])
            if top is None or cost < top:
                top, arg = cost, j
        best[i], choice[i] = top, arg
    plan, j = [], choice[0]
    while j <= n:
        plan.append(j - 1)
        j = choice[j]
    return best[0], plan


def plan_recompute(flops, kept) -> int:
    """FLOPs a plan recomputes: every layer whose output is not kept runs once more in the backward
    pass, a kept one does not (its output, and what its backward needs, stays from the forward pass)."""
    kept = set(int(k) for k in kept)
    return sum(int(f) for i, f in enumerate(flops) if i not in kept)


def _recompute_args(act_bytes, flops, budget):
    a, f = [int(v) for v in act_bytes], [int(v) for v in flops]
    if not a:
        raise ValueError("act_bytes is empty: there is no layer to plan for")
    if len(f) != len(a):
        raise ValueError(f"act_bytes has {len(a)} layers and flops {len(f)}")
    if min(a) < 0 or min(f) < 0:
        raise ValueError("sizes and FLOPs must be non-negative")
    return a, f, int(budget)


def brute_force_recompute(act_bytes, flops, budget) -> tuple[int, list[int]]:
    """The least recomputation over every plan (2^n) whose peak fits the budget: the ground truth."""
    a, f, budget = _recompute_args(act_bytes, flops, budget)
    best = None
    for size in range(len(a) + 1):
        for kept in combinations(range(len(a)), size):
            if plan_peak(a, kept) <= budget:
                cost = plan_recompute(f, kept)
                if best is None or cost < best[0]:
                    best = (cost, list(kept))
    if best is None:
        raise ValueError(f"no plan peaks at or below {budget}")
    return best


def min_recompute_plan(act_bytes, flops, budget) -> tuple[int, list[int]]:
    """The plan with the least recomputed FLOPs among those whose plan_peak is at most `budget`,
    in O(n^2 (budget + 1)): C(i, h) = the least recomputation after a kept layer i with h bytes held,
    C(i, h) = min over j with h + S(i, j) <= budget of F(i, j) + C(j, h + a[j]), C(virtual end, h) = 0,
    S the bytes of the span (i, j], F the FLOPs of the dropped layers i+1..j-1."""
    a, f, budget = _recompute_args(act_bytes, flops, budget)
    n = len(a)
    if budget < 0:
        raise ValueError(f"no plan peaks at or below {budget}")
    a, f = [0, *a, 0], [0, *f, 0]  # 1-based; the input is 0, the virtual kept end n + 1
    pa, pf = [0] * (n + 2), [0] * (n + 2)
    for k in range(1, n + 2):
        pa[k], pf[k] = pa[k - 1] + a[k], pf[k - 1] + f[k]
    inf = float("inf")
    cost = [[0] * (budget + 1) for _ in range(n + 2)]  # cost[n + 1][h] = 0
    nxt = [[n + 1] * (budget + 1) for _ in range(n + 2)]
    for i in range(n, -1, -1):
        for h in range(budget + 1):
            top, arg = inf, n + 1
            for j in range(i + 1, n + 2):
                if h + pa[j] - pa[i] > budget:
                    break  # sizes are non-negative: longer spans only grow
                c = pf[j - 1] - pf[i] + cost[j][h + a[j]]
                if c < top:
                    top, arg = c, j
            cost[i][h], nxt[i][h] = top, arg
    if cost[0][0] == inf:
        raise ValueError(f"no plan peaks at or below {budget}")
    plan, i, h = [], 0, 0
    while nxt[i][h] <= n:
        i = nxt[i][h]
        h += a[i]
        plan.append(i - 1)
    return int(cost[0][0]), plan


class _CheckpointNoRng(torch.autograd.Function):
    """Wrong on purpose, for the page: a checkpoint that neither stashes nor restores the RNG state."""

    @staticmethod
    def forward(ctx, fn, x):
        ctx.fn = fn
        ctx.save_for_backward(x)
        return fn(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        x = x.detach().requires_grad_()
        with torch.enable_grad():
            out = ctx.fn(x)
        torch.autograd.backward(out, grad_out)
        return None, x.grad


def checkpoint_no_rng(fn, x: torch.Tensor) -> torch.Tensor:
    """checkpoint without the random-number state: dropout recomputes with another mask."""
    return _CheckpointNoRng.apply(fn, x)


# ---------------------------------------------------------------- cases: checkpoint


def _ref_checkpoint(case: Case):
    f, inputs, params, g, seed = _ckpt_problem(case)
    torch.manual_seed(seed)
    out = f(*inputs)
    _caller_draws()  # the caller draws between the passes, as the graded run does
    (out * g).sum().backward()
    return {"out": to_numpy(out), **_grads(inputs, params), **_rng_state()}


RNG_KEYS = ("rng_after", "rng_after_cuda")


def _check_checkpoint(case: Case, got, want):
    if "error" in got:
        raise AssertionError(f"raises {got['error']}")
    forward_calls, calls = int(got.get("fn_calls_forward", -1)), int(got.get("fn_calls", -1))
    if forward_calls != 1:
        raise AssertionError(f"fn ran {forward_calls} times during the forward pass; run it exactly once there")
    if calls != 2:
        raise AssertionError(
            f"fn ran {calls} times in all; it must run exactly twice: once in the forward pass (no graph) "
            "and once in the backward pass, to recompute the graph it did not keep")
    saved, allowed = int(got.get("forward_saved_bytes", -1)), _input_bytes(case)
    if not 0 <= saved <= allowed:
        raise AssertionError(
            f"autograd held {saved} bytes during the forward pass, more than the {allowed} bytes of the "
            "inputs: run fn without building a graph (Function.forward already runs under no_grad; do not "
            "re-enable grad there) and save only the inputs")
    held = int(got.get("forward_held_bytes", -1))
    if not 0 <= held <= allowed:
        raise AssertionError(
            f"when the forward pass was over, your checkpoint held {held} bytes of tensors for the backward "
            f"pass (saved with save_for_backward or kept as ctx attributes), more than the {allowed} bytes of "
            "the inputs: keep the inputs and nothing else (section 4, Algorithm 1, line 2)")
    if int(got.get("ctx_histories", 1)):
        raise AssertionError(
            "ctx keeps a tensor with an autograd history (or a graph node): a graph built in the forward "
            "pass and kept for later holds every tensor it saved; keep only the inputs and rebuild the "
            "graph in the backward pass (section 4, Algorithm 1, lines 2 and 7)")
    saved_inputs, inputs = int(got.get("inputs_saved", 0)), int(got.get("inputs", 0))
    if saved_inputs != inputs:
        raise AssertionError(
            f"{inputs - saved_inputs} of the {inputs} inputs were not saved with ctx.save_for_backward (kept as "
            "ctx attributes, or copied): save the inputs themselves with save_for_backward, which is what lets "
            "autograd refuse a backward pass after someone modified them in place (section 4, Algorithm 1, "
            "line 2)")
    if int(got.get("params_with_grad", 0)) != int(want["params_with_grad"]):
        raise AssertionError(
            "the parameters fn closes over got no gradient: backpropagate through the recomputed output "
            "with torch.autograd.backward(out, grad_out) (torch.autograd.grad w.r.t. the inputs alone "
            "never reaches them)")
    hint = (" (fn draws random numbers: restore the RNG state saved in the forward pass before recomputing, "
            "so dropout draws the same mask)") if "dropout" in case.kind else ""
    for key, w in want.items():
        if key == "params_with_grad" or key in RNG_KEYS:
            continue
        if key not in got:
            raise AssertionError(f"produced no {key!r}: every input that requires grad must get a gradient")
        try:
            compare(got[key], w, key)
        except AssertionError as e:
            raise AssertionError(f"{e}{hint}") from None
    for key in RNG_KEYS:
        if key in want and not np.array_equal(got.get(key, np.zeros(0)), want[key]):
            raise AssertionError(
                "after the backward pass the caller's random-number stream is not where it is without "
                "checkpointing (the caller drew numbers of its own between the two passes): restore the saved "
                "state inside torch.random.fork_rng(devices=...), which puts the caller's state back once the "
                "recomputation is done (section 4, 'Random numbers: dropout')")


# ---------------------------------------------------------------- cases: checkpoint_sequential


def _ref_sequential(case: Case):
    if "raise" in case.kind:
        return {"raised": np.array(["ValueError"] * len(BAD_SEGMENTS))}
    layers, x, g, _, params = _seq_problem(case)
    log = SavedBytes(exclude=params)
    with log:
        out = run_layers(layers, x)
        (out * g).sum().backward()
    return {"out": to_numpy(out), "grad_x": to_numpy(x.grad), **_grads([], params),
            "plain_peak": np.array(log.peak)}


def _check_sequential(case: Case, got, want):
    if str(got.get("refused", "")):
        raise AssertionError(f"{got['refused']}: NumPy is refused here, since bytes kept in NumPy arrays are "
                             "invisible to the saved-bytes measure")
    if "raise" in case.kind:
        if "error" in got:
            raise AssertionError(f"raises {got['error']}")
        for s, g in zip(BAD_SEGMENTS, got.get("raised", [])):
            if str(g) != "ValueError":
                raise AssertionError(f"segments = {s} should raise ValueError (a chain of n layers has 1 to n "
                                     f"segments); got: {g}")
        return
    if "error" in got:
        raise AssertionError(f"raises {got['error']}")
    for key in ("out", "grad_x", "grad_params"):
        if key not in got:
            raise AssertionError(f"produced no {key!r}: every parameter of every layer must get a gradient")
        try:
            compare(got[key], want[key], key)
        except AssertionError as e:
            raise AssertionError(f"{e} (every layer must run exactly once per pass, in order; when n is not a "
                                 "multiple of segments the last layers still belong to a segment)") from None
    _, x, weights, *_ = case.args
    n = len(weights)
    segments = int(case.args[-1])
    unit = np.asarray(x).nbytes  # one layer's output
    peak = int(got.get("peak_saved_bytes", -1))
    bound = (math.ceil(n / segments) + segments + 2) * unit
    if not 0 <= peak <= bound:
        raise AssertionError(
            f"autograd held up to {peak} bytes; with {segments} checkpointed segments of about n/segments layers "
            f"the peak is at most (ceil(n/segments) + segments + 2) layer outputs = {bound} bytes: run each "
            "segment through checkpoint so that only segment inputs are kept")
    if "30%" in case.kind and peak > 0.3 * int(want["plain_peak"]):
        raise AssertionError(f"autograd held up to {peak} bytes, more than 30% of what the same stack holds "
                             "without checkpointing")
    _check_segments(got, n, segments)


def _check_segments(got, n: int, segments: int) -> None:
    """One checkpoint call per segment, the segments split as Algorithm 2 splits them, every layer
    inside one, and each segment's recomputation running the layers its forward ran."""
    forward = np.asarray(got.get("forward_runs", np.zeros((0, 2)))).reshape(-1, 2)
    backward = np.asarray(got.get("backward_runs", np.zeros((0, 2)))).reshape(-1, 2)
    calls = int(got.get("checkpoint_calls", -1))
    outside = int((forward[:, 0] < 0).sum())
    if outside:
        raise AssertionError(
            f"{outside} layer runs of the forward pass happened outside every checkpoint call: run each layer "
            "inside its segment's checkpoint, called by the name `checkpoint` (section 4, Algorithm 2)")
    if calls != segments:
        raise AssertionError(
            f"called checkpoint {calls} times for segments = {segments}: make exactly one checkpoint call per "
            "segment, as many as the argument asks for (section 4, Algorithm 2)")
    order = forward[:, 1].tolist()
    if order != list(range(n)) or (np.diff(forward[:, 0]) < 0).any():
        raise AssertionError("the layers did not run once each, in order, one segment after the other, in the "
                             "forward pass (section 4, Algorithm 2)")
    sizes = [int((forward[:, 0] == t).sum()) for t in range(segments)]
    if sizes != [stop - start for start, stop in equal_segments(n, segments)]:
        raise AssertionError(
            f"{n} layers in {segments} segments: yours hold {', '.join(map(str, sizes))} layers; with q = n div "
            "segments and r = n mod segments, the first r segments hold q + 1 layers and the rest q "
            "(10 layers in 3 segments: 4, 3, 3), section 4, Algorithm 2, line 2")
    for t in range(segments):
        ran = forward[forward[:, 0] == t, 1].tolist()
        if backward[backward[:, 0] == t, 1].tolist() != ran:
            raise AssertionError(
                f"segment {t} recomputed other layers in the backward pass than it ran in the forward pass: "
                "bind each segment's layers when you create its function (a default argument or "
                "functools.partial), see the hint")


# ---------------------------------------------------------------- cases: min_recompute_plan


def _ref_recompute(case: Case):
    act, flops, budget = ([int(v) for v in case.args[0]], [int(v) for v in case.args[1]], int(case.args[2]))
    try:
        cost, _ = brute_force_recompute(act, flops, budget) if len(act) <= 12 else min_recompute_plan(act, flops, budget)
    except ValueError:
        return {"raised": np.array("ValueError")}
    return {"recomputed": np.array(cost, dtype=np.int64)}


def _check_recompute(case: Case, got, want):
    refused = str(got.get("refused", ""))
    if refused:
        raise AssertionError(
            f"{refused}: min_recompute_plan is plain Python (ints, lists, loops, the builtins len, range, int, "
            "min, max and a few more; no sum, no slicing, no module), because one call of sum or a slice does "
            "O(n) work that the line count cannot see; with prefix sums every span is one subtraction (section 6)")
    if "raised" in want:
        if "error" in got:
            raise AssertionError(f"raises {got['error']}")
        if str(got.get("raised")) != "ValueError":
            why = ("no plan fits this budget: every plan peaks above it, since every layer's output is "
                   "materialised in some span; raise ValueError instead of returning a plan that breaks it"
                   if "budget" in case.kind or "raise" not in case.kind else
                   "the arguments are invalid (empty, lengths that differ, or a negative size); raise ValueError")
            raise AssertionError(f"{why}; got: {got.get('raised', 'a result')}")
        return
    if "error" in got or "raised" in got:
        raise AssertionError(f"raises {got.get('error', got.get('raised'))}, but a plan fits this budget")
    act, flops, budget = ([int(v) for v in case.args[0]], [int(v) for v in case.args[1]], int(case.args[2]))
    n = len(act)
    work = int(got.get("work", 0))
    if bool(got.get("stopped", False)) or work > recompute_work_budget(n, budget):
        raise AssertionError(
            f"ran past the work budget of 10 n^2 (budget + 1) + 10^4 Python lines plus elements read "
            f"(n = {n}, budget = {budget}): a dynamic programme over (kept layer, bytes held, next kept layer) "
            "does O(1) work per triple; do not enumerate plans, recompute span sums in a loop, or read the "
            "arguments again for every pair (section 6, 'Trading compute for memory')")
    if "recomputed" not in got or "plan" not in got:
        raise AssertionError("returned no (recomputed FLOPs, plan) pair")
    plan = [int(k) for k in np.asarray(got["plan"]).ravel()]
    if any(k < 0 or k >= n for k in plan) or any(x >= y for x, y in zip(plan, plan[1:])):
        raise AssertionError("the plan must be a sorted list of distinct layer indices in [0, n): count layers "
                             "from 0, and leave out the chain's input and any virtual end you added")
    if plan_peak(act, plan) > budget:
        raise AssertionError(
            "the plan you return peaks above the budget: every span, recomputed on top of the kept outputs "
            "still held, must fit in it; a next kept layer j is allowed only when held + span (i, j] <= budget "
            "(section 6, 'Trading compute for memory')")
    cost = int(got["recomputed"])
    if cost != plan_recompute(flops, plan):
        raise AssertionError("the FLOPs you return are not what your plan recomputes (every layer whose output "
                             "is not kept runs once more; a kept one does not): check which index you record "
                             "as kept")
    best = int(want["recomputed"])
    if cost > best:
        raise AssertionError(
            "another plan within the budget recomputes fewer FLOPs: minimise the recomputed FLOPs among the plans "
            "that fit, not the peak (the plan with the lowest peak is rarely the cheapest one that fits)")
    if cost < best:
        raise AssertionError("the recomputed FLOPs you return are lower than any plan within the budget reaches")


EXERCISES = {
    "checkpoint": TASKS["checkpoint"].graded(_ref_checkpoint, _check_checkpoint),
    "checkpoint_sequential": TASKS["checkpoint_sequential"].graded(_ref_sequential, _check_sequential),
    "min_recompute_plan": TASKS["min_recompute_plan"].graded(_ref_recompute, _check_recompute),
}


# ---------------------------------------------------------------- benchmark (make bench)


class Block(nn.Module):
    """A GPT-style pre-norm block: causal self-attention and a 4x MLP, each with a residual."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):  # (B, T, d)
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


def bench(timer, cuda: bool) -> dict:
    """A GPT-style stack trained one step three ways: no checkpointing, one segment per layer,
    and round(sqrt(n)) segments. Peak bytes (CUDA: max_memory_allocated, which includes weights
    and gradients; always: the saved-activation peak) and median step time."""
    n, d, heads, batch, seq = (24, 1024, 16, 8, 1024) if cuda else (8, 64, 4, 2, 64)
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(0)
    layers = [Block(d, heads).to(device=DEVICE, dtype=dtype) for _ in range(n)]
    params = [p for layer in layers for p in layer.parameters()]
    x = torch.randn(batch, seq, d, device=DEVICE, dtype=dtype, requires_grad=True)
    modes = {0: lambda: run_layers(layers, x), n: lambda: checkpoint_sequential(layers, x, n)}
    k = max(1, round(math.sqrt(n)))
    modes[k] = lambda: checkpoint_sequential(layers, x, k)

    def step(forward):
        for p in params:
            p.grad = None
        forward().float().square().mean().backward()

    rows = {"config": f"{n} blocks, d={d}, {heads} heads, batch {batch} x {seq} tokens, {str(dtype)[6:]}",
            "segments": [], "saved_peak_bytes": [], "allocated_peak_bytes": [], "step_seconds": []}
    for segments, forward in modes.items():
        log = SavedBytes(exclude=params)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with log:
            step(forward)
        rows["segments"].append(segments)
        rows["saved_peak_bytes"].append(log.peak)
        rows["allocated_peak_bytes"].append(torch.cuda.max_memory_allocated() if cuda else float("nan"))
        rows["step_seconds"].append(timer(lambda: step(forward)))
    return rows
