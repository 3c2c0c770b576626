"""Chapter 09's cases: what the learner's FVSBN and NADE log-likelihoods, MADE masks and NADE
sampler are run on, and how (the learner's kernel).

Every run also records whether the learner's function changed its inputs or torch's global random
state. The NADE run counts the work of the forward pass under a TorchDispatchMode (`WorkCounter`:
elements read and written by every op that is not a view, plus the multiply-adds of matrix
products and convolutions); NumPy is refused in that exercise, so the count sees everything the
call computes. The NADE sampler is counted the same way at n = 256, together with the Python lines
its notebook code runs (`count_lines`), and Python numbers are refused there as well. `LogitsFn` is
a logits function built from arrays that counts its calls (the page's and the tests' generic
sampler runs on it).
"""
import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from autograder.exercise import Case, NO_NUMPY, Task, dtype_name, to_numpy
from autograder.watch import count_lines, tensors

WORK_FACTOR = 48  # the NADE forward may do at most WORK_FACTOR * B * n * H units of work
_FREE = {"detach", "alias", "lift_fresh", "_to_copy_", "set_"}


def _macs(name: str, args, out) -> int:
    """Multiply-adds of a matrix product or convolution (0 for every other op)."""
    if name in ("mm", "addmm", "_addmm_activation"):
        a, b = (args[0], args[1]) if name == "mm" else (args[1], args[2])
        return a.shape[0] * a.shape[1] * b.shape[1]
    if name in ("bmm", "baddbmm", "addbmm"):
        a, b = (args[0], args[1]) if name == "bmm" else (args[1], args[2])
        return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
    if name in ("mv", "addmv"):
        return (args[0] if name == "mv" else args[1]).numel()
    if name in ("dot", "vdot"):
        return args[0].numel()
    if "convolution" in name or name.startswith("conv") or name.startswith("_conv"):
        weight = args[1]
        return sum(t.numel() for t in tensors(out)) * (weight[0].numel() if weight.dim() else 1)
    return 0


class WorkCounter(TorchDispatchMode):
    """Counts the work of the torch ops run under it: `elements`, the elements read and written by
    every op that is not a view, and `macs`, the multiply-adds of matrix products and convolutions.
    `work` is their sum."""

    def __init__(self):
        super().__init__()
        self.elements = self.macs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if not func.is_view and name not in _FREE:
            self.elements += sum(t.numel() for t in tensors((args, kwargs))) + sum(t.numel() for t in tensors(out))
            self.macs += _macs(name, args, out)
        return out

    @property
    def work(self) -> int:
        return self.elements + self.macs


_DT = {"float64": torch.float64, "float32": torch.float32}


def all_binary(n: int) -> np.ndarray:
    """Every 0/1 vector of length n, one per row, (2^n, n)."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(np.float64)


def _bits(rng, b, n, p=0.35):
    return (rng.random((b, n)) < p).astype(np.float64)


# ---------------------------------------------------------------- cases: FVSBN


def _fvsbn_args(rng, b, n, dtype="float64", scale=0.5, x=None):
    x = _bits(rng, b, n) if x is None else x
    alpha = rng.standard_normal((n, n)) * scale  # diagonal and upper triangle nonzero: they must be ignored
    bias = rng.standard_normal(n) * scale
    return x, alpha, bias, dtype


def _fvsbn_cases(rng) -> list[Case]:
    b, n = (int(v) for v in rng.integers(5, 30, 2))
    return [
        Case("float64, random B and n", _fvsbn_args(rng, b, n)),
        Case("float32, B = 32, n = 64", _fvsbn_args(rng, 32, 64, "float32")),
        Case("alpha's diagonal and upper triangle are large (only j < i may count)",
             (_bits(rng, 12, 10), np.tril(rng.standard_normal((10, 10)) * 0.3, -1)
              + np.triu(rng.standard_normal((10, 10)) * 40.0), rng.standard_normal(10) * 0.3, "float64")),
        Case("n = 8, all 256 inputs (the probabilities must sum to 1)", _fvsbn_args(rng, 0, 8, x=all_binary(8))),
        Case("logits of +-50 and more, float64 (log-sigmoid, no clamping)", _fvsbn_args(rng, 20, 16, scale=60.0)),
        Case("logits of +-50 and more, float32 (log-sigmoid, no clamping)", _fvsbn_args(rng, 20, 16, "float32", 60.0)),
        Case("n = 1 (x_1 has no predecessors)", _fvsbn_args(rng, 7, 1)),
        Case("B = 0 (an empty batch gives shape (0,))", _fvsbn_args(rng, 0, 6)),
    ]


# ---------------------------------------------------------------- cases: NADE

WORK_KIND = "B = 2, n = 512, H = 32 (work must stay O(nH) per example)"


def _nade_args(rng, b, n, h, dtype="float64", scale=0.7, v_scale=0.7, x=None):
    x = _bits(rng, b, n) if x is None else x
    w = rng.standard_normal((h, n)) * scale
    c = rng.standard_normal(h) * scale
    v = rng.standard_normal((n, h)) * v_scale
    bias = rng.standard_normal(n) * v_scale
    return x, w, c, v, bias, dtype


def _nade_cases(rng) -> list[Case]:
    b, n, h = (int(v) for v in rng.integers(3, 25, 3))
    return [
        Case("float64, random B, n and H", _nade_args(rng, b, n, h)),
        Case("float32, B = 16, n = 64, H = 32", _nade_args(rng, 16, 64, 32, "float32", 0.3, 0.3)),
        Case("H = 1", _nade_args(rng, 9, 11, 1)),
        Case("n = 1 (x_1 has no predecessors: h_1 = sigmoid(c))", _nade_args(rng, 5, 1, 4)),
        Case("n = 8, all 256 inputs (the probabilities must sum to 1)", _nade_args(rng, 0, 8, 6, x=all_binary(8))),
        Case("logits of +-50 and more (log-sigmoid, no clamping)", _nade_args(rng, 10, 20, 8, v_scale=60.0)),
        Case("B = 0 (an empty batch gives shape (0,))", _nade_args(rng, 0, 7, 3)),
        Case(WORK_KIND, _nade_args(rng, 2, 512, 32, "float32", 0.1, 0.3)),
    ]


# ---------------------------------------------------------------- cases: MADE masks


def _not_involution(rng, n):
    """A random permutation of range(n) that is not its own inverse (n >= 3)."""
    while True:
        order = rng.permutation(n)
        if not np.array_equal(order[order], np.arange(n)):
            return order


def _made_cases(rng) -> list[Case]:
    seed = int(rng.integers(0, 2**31))
    n = int(rng.integers(5, 12))
    return [
        Case("hidden = [] (the direct n x n mask), an order that is not its own inverse",
             (6, (), _not_involution(rng, 6), seed)),
        Case("one hidden layer, the identity order", (7, (12,), np.arange(7), seed + 1)),
        Case("two hidden layers, an order that is not its own inverse", (n, (20, 15), _not_involution(rng, n), seed + 2)),
        Case("three layers narrower than n (no dead units)", (10, (4, 3, 5), _not_involution(rng, 10), seed + 3)),
        Case("wide layers (16 n units: every output sees every earlier input)",
             (8, (128, 128), _not_involution(rng, 8), seed + 4)),
        Case("the same seed twice gives the same masks, another seed others", (9, (30, 30), _not_involution(rng, 9), seed + 5)),
        Case("n_in = 1 and hidden = [] (one input: a 1 x 1 mask of zeros)", (1, (), np.arange(1), seed + 6)),
        Case("n_in = 0 (raise ValueError)", (0, (4,), np.arange(0), seed)),
        Case("order repeats a value (raise ValueError)", (4, (8,), np.array([0, 1, 1, 3]), seed)),
        Case("order is too short (raise ValueError)", (5, (8,), np.array([0, 2, 1, 3]), seed)),
        Case("order holds a value outside range(n_in) (raise ValueError)", (3, (8,), np.array([0, 1, 3]), seed)),
        Case("a hidden width of 0 (raise ValueError)", (5, (8, 0), np.arange(5), seed)),
    ]


# ---------------------------------------------------------------- cases: NADE sampling

SAMPLE_WORK_FACTOR = 48  # nade_sample may do at most SAMPLE_WORK_FACTOR * n_samples * n * H units of work
SAMPLE_WORK_KIND = "n_samples = 2, n = 256, H = 32 (work must stay O(nH) per sample)"
SAMPLE_LINES = (20, 200)  # and run at most 20 n + 200 Python lines of the notebook's own code there


def _nade_sample_args(rng, n, h, n_samples, dtype="float64", scale=1.0, v_scale=1.0):
    w = rng.standard_normal((h, n)) * scale
    v = rng.standard_normal((n, h)) * v_scale
    b = rng.standard_normal(n) * v_scale
    c = rng.standard_normal(h) * scale
    return w, v, b, c, n_samples, int(rng.integers(0, 2**31)), dtype


def _nade_sample_cases(rng) -> list[Case]:
    n, h = (int(v) for v in rng.integers(6, 20, 2))
    return [
        Case("float64, random n and H, 64 samples", _nade_sample_args(rng, n, h, 64)),
        Case("float64, strong weights (every draw depends on the ones before it)",
             _nade_sample_args(rng, 12, 6, 48, scale=2.0, v_scale=3.0)),
        Case("H = 1", _nade_sample_args(rng, 9, 1, 32)),
        Case("n = 1 (x_1 has no predecessors: h_1 = sigmoid(c))", _nade_sample_args(rng, 1, 4, 32)),
        Case("float32 (probabilities and samples in float32)", _nade_sample_args(rng, 16, 8, 32, "float32")),
        Case("n_samples = 0 (shape (0, n))", _nade_sample_args(rng, 5, 3, 0)),
        Case(SAMPLE_WORK_KIND, _nade_sample_args(rng, 256, 32, 2, "float32", 0.1, 0.3)),
    ]


# ---------------------------------------------------------------- runs


class _Inputs:
    """Copies of the tensors a call gets, to tell afterwards whether it changed them."""

    def __init__(self, *tensors):
        self.tensors, self.copies = tensors, [t.detach().clone() for t in tensors]

    def unchanged(self) -> np.ndarray:
        return np.array(all(torch.equal(t.detach(), c) for t, c in zip(self.tensors, self.copies)))


def _grads(params, names) -> dict:
    out = {}
    for p, name in zip(params, names):
        out[f"grad_{name}"] = to_numpy(p.grad) if p.grad is not None else to_numpy(torch.zeros_like(p))
        out[f"has_grad_{name}"] = np.array(p.grad is not None)
    return out


def _logp_run(fn, x, params, names, counter=None):
    """Call fn(x, *params) with gradients on the parameters, record log p, dtypes and gradients."""
    inputs = _Inputs(x, *params)
    if counter is None:
        out = fn(x, *params)
    else:
        with counter:
            out = fn(x, *params)
    result = {"logp": to_numpy(out), "logp_dtype": dtype_name(out), "inputs_unchanged": inputs.unchanged()}
    if x.shape[0] and isinstance(out, torch.Tensor) and out.requires_grad:
        out.sum().backward()
    result.update(_grads(params, names))
    if x.shape[0] == 2 ** x.shape[1] and x.shape[1] == 8:  # every input of an n = 8 model
        result["log_total"] = to_numpy(torch.logsumexp(out.detach().double(), 0))
    return result


def _run_fvsbn(fn, case: Case):
    x, alpha, bias, dtype = case.args
    dt = _DT[dtype]
    xt = torch.tensor(x, dtype=dt)
    params = [torch.tensor(a, dtype=dt, requires_grad=True) for a in (alpha, bias)]
    return _logp_run(fn, xt, params, ("alpha", "bias"))


def _run_nade(fn, case: Case):
    x, w, c, v, bias, dtype = case.args
    dt = _DT[dtype]
    xt = torch.tensor(x, dtype=dt)
    params = [torch.tensor(a, dtype=dt, requires_grad=True) for a in (w, c, v, bias)]
    counter = WorkCounter()
    result = _logp_run(fn, xt, params, ("W", "c", "V", "b"), counter)
    result["work"] = np.array(counter.work, dtype=np.int64)
    return result


def _run_made(fn, case: Case):
    n_in, hidden, order, seed = case.args
    order_t = torch.tensor(order, dtype=torch.int64)
    inputs = _Inputs(order_t)
    state = torch.random.get_rng_state()
    try:
        masks = fn(n_in, list(hidden), order_t, seed)
    except Exception as e:
        if "raise ValueError" in case.kind:
            return {"raised": np.array(type(e).__name__)}
        raise
    if "raise ValueError" in case.kind:
        return {"raised": np.array(f"returned {type(masks).__name__}")}
    if not isinstance(masks, (list, tuple)) or not all(isinstance(m, torch.Tensor) for m in masks):
        raise TypeError(f"return a list of tensors, got {type(masks).__name__}")
    out = {"count": np.array(len(masks)), "inputs_unchanged": inputs.unchanged(),
           "rng_unchanged": np.array(torch.equal(state, torch.random.get_rng_state()))}
    for i, m in enumerate(masks):
        out[f"mask{i}"] = to_numpy(m)
        out[f"dtype{i}"] = dtype_name(m)
    if "same seed" in case.kind:
        again = fn(n_in, list(hidden), order_t, seed)
        other = fn(n_in, list(hidden), order_t, seed + 1)
        out["same_twice"] = np.array(len(again) == len(masks) and all(torch.equal(a, m) for a, m in zip(again, masks)))
        out["other_seed_differs"] = np.array(any(not torch.equal(a, m) for a, m in zip(other, masks)))
    return out


class LogitsFn:
    """logits(x) = bias + x @ A.T in the given dtype; counts its calls, notes whether gradients were
    on, and keeps a copy of the first row of every x it was given."""

    def __init__(self, a, bias, dtype):
        self.a, self.bias = torch.tensor(a, dtype=dtype), torch.tensor(bias, dtype=dtype)
        self.calls, self.grad_on, self.seen = 0, False, []

    def __call__(self, x):
        self.calls += 1
        self.grad_on |= torch.is_grad_enabled()
        self.seen.append(x[0].detach().float().clone())
        return self.bias + x.to(self.a.dtype) @ self.a.T


def _run_nade_sample(fn, case: Case):
    w, v, b, c, n_samples, seed, dtype = case.args
    dt = _DT[dtype]
    params = [torch.tensor(a, dtype=dt) for a in (w, v, b, c)]
    inputs = _Inputs(*params)
    gen = torch.Generator().manual_seed(seed)
    state = torch.random.get_rng_state()
    out = {}
    if case.kind == SAMPLE_WORK_KIND:
        counter = WorkCounter()
        with counter:
            x, lines = count_lines(fn, (*params, n_samples, gen), SAMPLE_LINES[0] * len(b) + SAMPLE_LINES[1])
        out.update(work=np.array(counter.work, dtype=np.int64), lines=np.array(lines, dtype=np.int64),
                   finished=np.array(x is not None))
        if x is None:  # stopped at the line budget
            x = torch.zeros(n_samples, len(b), dtype=dt)
    else:
        x = fn(*params, n_samples, gen)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"return a tensor, got {type(x).__name__}")
    out.update(samples=to_numpy(x), samples_dtype=dtype_name(x), generator_state=to_numpy(gen.get_state()),
               rng_unchanged=np.array(torch.equal(state, torch.random.get_rng_state())),
               inputs_unchanged=inputs.unchanged())
    return out


# ---------------------------------------------------------------- the tasks

NO_NUMPY_OR_NUMBERS = NO_NUMPY | {".item"}  # .item() would leave torch for Python numbers
LEAVES_TORCH = ("stay in torch: the gradients must flow back to W, c, V and b, and the O(nH) work rule is "
                "counted on torch ops, which a detour through NumPy or Python numbers would hide.")

NO_PYTHON_NUMBERS = NO_NUMPY_OR_NUMBERS | {"float"}  # float(t) leaves torch too (the line budget binds the rest)
SAMPLE_LEAVES_TORCH = ("stay in torch: the O(nH) work rule is counted on torch ops (and on the Python lines of "
                       "your own code), which a detour through NumPy or Python numbers would hide.")

TASKS = {
    "fvsbn_log_prob": Task("fvsbn_log_prob", _fvsbn_cases, _run_fvsbn),
    "nade_log_prob": Task("nade_log_prob", _nade_cases, _run_nade, forbidden=NO_NUMPY_OR_NUMBERS, why=LEAVES_TORCH),
    "made_masks": Task("made_masks", _made_cases, _run_made),
    "nade_sample": Task("nade_sample", _nade_sample_cases, _run_nade_sample, forbidden=NO_PYTHON_NUMBERS,
                        why=SAMPLE_LEAVES_TORCH),
}
