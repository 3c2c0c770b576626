"""Chapter 06's cases: what the learner's checkpoint, checkpoint_sequential and min_peak_plan are run
on, and how (the learner's kernel).

The measuring tool is here: `SavedBytes`, a context manager over
`torch.autograd.graph.saved_tensors_hooks` that counts the bytes of every distinct storage
autograd holds for the backward pass, live, over time (exact, device-independent, and the same
on the CPU as on a GPU). The book and the checks both measure with it. Work is measured in
Python lines (`_count_lines`), which is why these exercises refuse NumPy: bytes held in NumPy
arrays and work done inside NumPy calls are invisible to both measures.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

from autograder.device import DEVICE
from autograder.exercise import Case, NO_NUMPY, Task, to_numpy
from autograder.watch import count_lines as _count_lines


class _Held:
    """What the pack hook returns instead of a saved tensor: the tensor, plus a receipt that
    tells the log when autograd lets go of it (when this object is freed)."""

    __slots__ = ("log", "tensor", "key")

    def __init__(self, log: "SavedBytes", tensor: torch.Tensor, key, nbytes: int):
        self.log, self.tensor, self.key = log, tensor, key
        counted = log._acquire(key, nbytes)
        log.records.append((tuple(tensor.shape), str(tensor.dtype).replace("torch.", ""), nbytes, counted))

    def __del__(self):
        self.log._release(self.key)


def _storage_key(t: torch.Tensor):
    return (t.device.type, t.device.index, t.untyped_storage().data_ptr())


class SavedBytes:
    """Count the bytes autograd saves for the backward pass while the context is active.

    Every tensor a backward node saves passes through the pack hook. Bytes are counted per
    distinct storage (a tensor saved by two nodes, or a view of a saved tensor, costs its storage
    once), and a storage stays live until the last node holding it lets go. Storages of the
    tensors in `exclude` (the parameters: they exist whether or not anything is saved) are not
    counted. Attributes:

      live      bytes held now
      peak      the largest `live` seen (`reset_peak()` starts a new maximum)
      timeline  `live` after every change, starting at 0: the memory trace of the run
      marks     {label: index into timeline} set by `mark(label)`
      records   (shape, dtype, storage bytes, counted) for every tensor packed; counted is False
                when its storage was already held
    """

    def __init__(self, exclude=()):
        self._skip = {_storage_key(t) for t in exclude}
        self._held: dict = {}  # storage key -> [holders, nbytes]
        self.live = self.peak = 0
        self.timeline = [0]
        self.marks: dict[str, int] = {}
        self.records: list[tuple] = []

    def _acquire(self, key, nbytes: int) -> bool:
        entry = self._held.get(key)
        if entry is not None:
            entry[0] += 1
            return False
        self._held[key] = [1, nbytes]
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        self.timeline.append(self.live)
        return True

    def _release(self, key) -> None:
        entry = self._held[key]
        entry[0] -= 1
        if entry[0] == 0:
            del self._held[key]
            self.live -= entry[1]
            self.timeline.append(self.live)

    def _pack(self, t: torch.Tensor):
        key = _storage_key(t)
        if key in self._skip:
            return t
        return _Held(self, t, key, t.untyped_storage().nbytes())

    @staticmethod
    def _unpack(held):
        return held.tensor if isinstance(held, _Held) else held

    def mark(self, label: str) -> None:
        self.marks[label] = len(self.timeline) - 1

    def reset_peak(self) -> None:
        self.peak = self.live

    def __enter__(self) -> "SavedBytes":
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


F64 = np.float64


def _ckpt_cases(rng: np.random.Generator) -> list[Case]:
    r = lambda *shape: rng.standard_normal(shape)  # noqa: E731
    seed = lambda: np.array(int(rng.integers(0, 2**31)))  # noqa: E731
    b, d = (int(v) for v in rng.integers(2, 9, 2))
    t = int(rng.integers(3, 9))
    return [
        Case("fn is a two-layer MLP that closes over its weights",
             ("mlp", r(b, d), r(d, 4 * d) / d**0.5, r(4 * d, d) / d**0.5, r(b, d))),
        Case("fn takes two inputs that both require grad", ("two", r(b, d), r(b, d), r(d, d) / d**0.5, r(b, d))),
        Case("one input does not require grad", ("mask", r(b, d), r(b, d), r(d, d) / d**0.5, r(b, d))),
        Case("one input is an integer index tensor (it cannot require grad)",
             ("index", r(b + 3, d), rng.integers(0, b + 3, 2 * b), r(d, d) / d**0.5, r(2 * b, d))),
        Case("fn contains dropout (the recompute must draw the same mask)",
             ("dropout", r(b, d), r(d, 4 * d) / d**0.5, r(4 * d, d) / d**0.5, r(b, d), seed())),
        Case("fn is a single-head attention block with a residual",
             ("attention", r(t, d), r(d, 3 * d) / d**0.5, r(d, d) / d**0.5, r(t, d))),
    ]


def _ckpt_problem(case: Case):
    """(f, inputs, params, g, seed) on DEVICE in float64: the loss is (f(*inputs) * g).sum()."""
    kind, *arrays = case.args
    arrays = [torch.from_numpy(np.asarray(v)).to(DEVICE) for v in arrays]
    seed = int(arrays.pop()) if str(kind) == "dropout" else 0
    g = arrays.pop()
    leaf = lambda v, grad=True: v.clone().requires_grad_(grad)  # noqa: E731
    kind = str(kind)
    if kind in ("mlp", "dropout"):
        x, w1, w2 = arrays
        w1, w2 = leaf(w1), leaf(w2)
        p = 0.5 if kind == "dropout" else 0.0
        f = lambda x: F.dropout(F.gelu(x @ w1), p=p, training=p > 0) @ w2  # noqa: E731
        return f, [leaf(x)], [w1, w2], g, seed
    if kind == "two":
        x, y, w = arrays
        w = leaf(w)
        return (lambda x, y: torch.tanh(x @ w) * y + y.sin()), [leaf(x), leaf(y)], [w], g, seed
    if kind == "mask":
        x, m, w = arrays
        w = leaf(w)
        return (lambda x, m: torch.relu(x @ w) * m), [leaf(x), m.clone()], [w], g, seed
    if kind == "index":
        x, idx, w = arrays
        w = leaf(w)
        return (lambda x, idx: (x[idx] @ w).sin()), [leaf(x), idx.clone()], [w], g, seed
    if kind == "attention":
        x, wqkv, wo = arrays
        wqkv, wo = leaf(wqkv), leaf(wo)

        def attention(x):  # (T, d)
            q, k, v = (x @ wqkv).chunk(3, dim=-1)  # (T, d) each
            scores = q @ k.T / math.sqrt(x.shape[-1])  # (T, T)
            return x + (scores.softmax(dim=-1) @ v) @ wo  # (T, d)

        return attention, [leaf(x)], [wqkv, wo], g, seed
    raise ValueError(f"unknown checkpoint case {kind}")


def _grads(inputs, params) -> dict:
    out = {f"grad_input{i}": to_numpy(x.grad) for i, x in enumerate(inputs) if x.requires_grad and x.grad is not None}
    with_grad = [p for p in params if p.grad is not None]
    out["params_with_grad"] = np.array(len(with_grad))
    if len(with_grad) == len(params):
        out["grad_params"] = to_numpy(torch.cat([p.grad.flatten() for p in params]))
    return out


def _run_checkpoint(fn, case: Case):
    f, inputs, params, g, seed = _ckpt_problem(case)
    calls = [0]

    def counted(*args):
        calls[0] += 1
        return f(*args)

    log = SavedBytes(exclude=params)
    torch.manual_seed(seed)
    with log:
        out = fn(counted, *inputs)
        forward_peak, forward_calls = log.peak, calls[0]
        (out * g).sum().backward()
    return {"out": to_numpy(out), **_grads(inputs, params), "fn_calls": np.array(calls[0]),
            "fn_calls_forward": np.array(forward_calls), "forward_saved_bytes": np.array(forward_peak)}


def _input_bytes(case: Case) -> int:
    """Bytes of the tensors checkpoint is given (the ones it may save)."""
    kind, *arrays = case.args
    inputs = arrays[:2] if str(kind) in ("two", "mask", "index") else arrays[:1]
    return sum(np.asarray(v).nbytes for v in inputs)


def _seq_cases(rng: np.random.Generator) -> list[Case]:
    def stack(n, segments, batch=4, width=16):
        return ("tanh", rng.standard_normal((batch, width)),
                rng.standard_normal((n, width, width)) / width**0.5, 0.1 * rng.standard_normal((n, width)),
                rng.standard_normal((batch, width)), np.array(segments))

    n = int(rng.integers(10, 30))
    k = int(rng.integers(2, n // 2))
    if n % k == 0:
        n += 1
    m = int(rng.integers(2, 40))
    return [
        Case("n = 64 equal layers and segments = 8 (peak at most 30% of no checkpointing)", stack(64, 8)),
        Case("segments = 1", stack(6, 1)),
        Case("segments = n", stack(7, 7)),
        Case("n is not divisible by segments (10 layers, 3 segments)", stack(10, 3)),
        Case(f"n is not divisible by segments ({n} layers, {k} segments)", stack(n, k)),
        Case("n and segments are random", stack(m, int(rng.integers(1, m + 1)))),
        Case("segments < 1 or segments > n (raise ValueError)", stack(5, 1)),
    ]


def _seq_problem(case: Case):
    _, x, weights, biases, g, segments = (np.asarray(v) for v in case.args)
    n, width = weights.shape[0], weights.shape[1]
    layers = []
    for w, b in zip(weights, biases):
        linear = nn.Linear(width, width).to(device=DEVICE, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(nn.Sequential(linear, nn.Tanh()))
    segments = int(segments)
    x = torch.from_numpy(x).to(DEVICE).requires_grad_()
    g = torch.from_numpy(g).to(DEVICE)
    params = [p for layer in layers for p in layer.parameters()]
    return layers, x, g, segments, params


BAD_SEGMENTS = (0, -1, "n + 1")


def _run_sequential(fn, case: Case):
    layers, x, g, segments, params = _seq_problem(case)
    if "raise" in case.kind:
        raised = []
        for s in BAD_SEGMENTS:
            s = len(layers) + 1 if s == "n + 1" else s
            try:
                fn(layers, x, s)
                raised.append(f"returned for segments = {s}")
            except Exception as e:
                raised.append(type(e).__name__)
        return {"raised": np.array(raised)}
    # Grade this exercise alone: the learner's function runs with torch's own (reentrant)
    # checkpoint in place of the one from exercise 1, so a mistake there is not counted twice.
    namespace = getattr(fn, "__globals__", {})
    before = namespace.get("checkpoint", _MISSING)
    namespace["checkpoint"] = _library_checkpoint
    log = SavedBytes(exclude=params)
    try:
        with log:
            out = fn(layers, x, segments)
            (out * g).sum().backward()
    finally:
        if before is _MISSING:
            namespace.pop("checkpoint", None)
        else:
            namespace["checkpoint"] = before
    return {"out": to_numpy(out), "grad_x": to_numpy(x.grad), **_grads([], params),
            "peak_saved_bytes": np.array(log.peak)}


_MISSING = object()


def _library_checkpoint(fn, *args):
    """torch's reentrant checkpoint: like exercise 1's, a Function that saves only its inputs."""
    return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=True)


def _plan_cases(rng: np.random.Generator) -> list[Case]:
    small = [Case(f"n = {n} (compared with the best of all 2^n plans)", (rng.integers(0, 100, n),))
             for n in (1, 2, 3, 5, *rng.integers(6, 13, 4))]
    sizes = lambda n, hi: rng.integers(1, hi, n)  # noqa: E731
    spike = rng.integers(1, 10, 11)
    spike[int(rng.integers(0, 11))] = 1000
    return [
        *small,
        Case("n = 12 with sizes of up to 10^9 bytes", (rng.integers(0, 10**9, 12),)),
        Case("one layer is 100 times larger than the others", (spike,)),
        Case("all sizes are equal (n = 16)", (np.full(16, 7),)),
        Case("some sizes are zero", (np.where(rng.random(12) < 0.4, 0, rng.integers(1, 50, 12)),)),
        Case("n = 100, random sizes", (sizes(100, 1000),)),
        Case("n = 500, random sizes (the work must stay O(n^2))", (sizes(500, 10**6),)),
        Case("act_bytes is empty (raise ValueError)", (np.zeros(0, np.int64),)),
        Case("a size is negative (raise ValueError)", (np.array([3, -1, 4]),)),
    ]


def work_budget(n: int) -> int:
    """Python lines a quadratic programme may run for n layers: 10 n^2 + 10^4, several times what
    a plain double loop needs (about 1.5 n^2), far below what a cubic or exponential one runs at
    n = 500."""
    return 10 * n * n + 10_000


def _run_plan(fn, case: Case):
    act = [int(v) for v in case.args[0]]
    if "raise" in case.kind:
        try:
            return {"raised": np.array(f"returned {fn(act)!r}"[:200])}
        except Exception as e:
            return {"raised": np.array(type(e).__name__)}
    result, lines = _count_lines(fn, (list(act),), work_budget(len(act)))
    if result is None:
        return {"work": np.array(lines)}
    peak, plan = result
    return {"peak": np.array(int(peak), dtype=np.int64), "plan": np.array([int(k) for k in plan], dtype=np.int64),
            "work": np.array(lines)}


LEAVES_TORCH = ("NumPy is refused here: the saved bytes and the work are measured on torch tensors and Python "
                "lines, and NumPy would hide both.")

TASKS = {
    "checkpoint": Task(
        "checkpoint", _ckpt_cases, _run_checkpoint,
        forbidden=frozenset({"checkpoint", "saved_tensors_hooks", *NO_NUMPY}),
        why="write the recomputation yourself, on your own torch.autograd.Function, not with "
            "torch.utils.checkpoint or saved-tensor hooks. " + LEAVES_TORCH,
    ),
    "checkpoint_sequential": Task(
        "checkpoint_sequential", _seq_cases, _run_sequential,
        forbidden=frozenset({"checkpoint_sequential", "utils"}),
        why="cut the layers into segments yourself and run each through your `checkpoint`.",
    ),
    "min_peak_plan": Task("min_peak_plan", _plan_cases, _run_plan, forbidden=frozenset(NO_NUMPY), why=LEAVES_TORCH),
}
