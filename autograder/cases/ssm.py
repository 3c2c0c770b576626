"""Chapter 10's cases: what the learner's HiPPO, discretisation, convolution and scan functions are
run on, and how (the learner's kernel).

Every run hands the learner copies of the inputs and records whether they came back unchanged (no
exercise may modify its inputs). The convolution and scan runs watch the torch ops with `ScanWatch`,
a TorchDispatchMode that records, outside Triton kernel launches, the op names, the most elements
of any op's output, how many ops ran and how many of them read the input `u` (or a tensor computed
from it), and the ops that computed anything on the host. The PyTorch scan's cost case also counts
the Python lines run; the Triton scan's runs record every launch (`watch.triton`: kernel, grid,
constexprs, loads, compile errors), poison the outputs the wrapper allocates, and count with
`KernelLoops` the loop iterations and `tl.associative_scan` calls of each interpreted program.
NumPy is refused in those exercises, so that no work can hide from the watch on the host.
"""
import inspect
import math

import numpy as np
import torch

from autograder import forbidden
from autograder.device import DEVICE
from autograder.exercise import Case, NO_NUMPY, Task, to_numpy
from autograder.watch import HOST_MAY, KernelLoops, OpWatch, count_lines, tensors

FFT_OPS = {"_fft_r2c", "_fft_c2r", "_fft_c2c"}  # what torch.fft.* dispatch to
MAX_OPS_AROUND_KERNEL = 64  # torch ops a Triton wrapper may run outside its kernel (no loop over time)
LIBRARY_SCANS = frozenset({"cumsum", "cumprod", "logcumsumexp", "cummax", "cummin", "associative_scan"})
CONV_OPS = frozenset({"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                      "convolution", "_convolution"})
MIN_CHUNK, MAX_CHUNK = 16, 256  # time steps per chunk of the Triton scan
CONV_U_OPS = 24  # torch ops that may read u (or what is computed from it) in ssm_conv: one FFT convolution


def scan_op_budget(length: int) -> int:
    """Torch ops selective_scan may run at length L: a fixed number per round of the scan."""
    return 24 * math.ceil(math.log2(max(length, 2))) + 64


def chunk_loop_budget(length: int) -> int:
    """Loop iterations a program of the Triton scan may run: one per chunk of at least MIN_CHUNK
    steps, and 2 more."""
    return -(-length // MIN_CHUNK) + 2


def scan_line_budget(length: int) -> int:
    """Python lines selective_scan may run at length L (lines of the learner's own functions)."""
    return 12 * math.ceil(math.log2(max(length, 2))) + 40


def _ptr(t: torch.Tensor):
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return None


class ScanWatch(OpWatch):
    """Outside Triton launches: op names, the most elements of any op's output, the op count, the
    ops that read `inputs` or anything computed from them (`input_ops`, followed through storage),
    and the host ops that computed anything (not views, allocations or copies: HOST_MAY); and the
    Triton launches (`triton`). `poison=True` fills fresh torch.empty* tensors with NaN."""

    def __init__(self, poison: bool = False, inputs=()):
        super().__init__(poison=poison)
        self.names: set[str] = set()
        self.largest_out = self.ops = self.input_ops = 0
        self.host_ops: dict[str, int] = {}
        self._derived = {_ptr(t) for t in inputs} - {None}

    def on_op(self, name, func, args, kwargs, out):
        outs = list(tensors(out))
        self.names.add(name)
        self.largest_out = max([self.largest_out] + [t.numel() for t in outs])
        self.ops += 1
        if not (func.is_view or name in HOST_MAY):
            self.host_ops[name] = max([self.host_ops.get(name, 0)] + [t.numel() for t in outs])
        if self._derived and any(_ptr(t) in self._derived for t in tensors((args, kwargs))):
            self.input_ops += 1
            self._derived |= {_ptr(t) for t in outs} - {None}

    def summary(self) -> dict:
        ops = sorted(self.host_ops)
        return {"used_fft": np.array(bool(self.names & FFT_OPS)), "largest_out": np.array(self.largest_out),
                "ops": np.array(self.ops), "launches": np.array(self.launches),
                "op_names": np.array(sorted(self.names), dtype=str), "input_ops": np.array(self.input_ops),
                "host_ops": np.array(ops, dtype=str),
                "host_op_elements": np.array([self.host_ops[k] for k in ops], dtype=np.int64)}


def calls_associative_scan(launches) -> np.ndarray:
    """Whether the source of every launched kernel (or a @triton.jit helper it calls) names
    tl.associative_scan."""
    found = []
    for launch in launches:
        fn = launch.fn
        try:
            sources = [inspect.getsource(f) for f in forbidden.reachable(fn)] if fn is not None else []
        except (OSError, TypeError):
            sources = []
        found.append(any(forbidden.uses(src, {"associative_scan"}) for src in sources))
    return np.array(bool(found) and all(found))


def _pair(result, names):
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        raise TypeError(f"return a tuple ({', '.join(names)}), got {type(result).__name__}")
    return result


def _unchanged(before, after) -> np.ndarray:
    return np.array(all(torch.equal(b, a) for b, a in zip(before, after)))


def _stable(rng, n: int) -> np.ndarray:
    """A random A whose eigenvalues have negative real parts: -(M M^T / n + I/2) + skew."""
    m = rng.standard_normal((n, n))
    s = rng.standard_normal((n, n))
    return -(m @ m.T / n + 0.5 * np.eye(n)) + (s - s.T) / 2


def hippo_matrices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """HiPPO-LegS (A, B) in NumPy, to build cases from (the grader checks the learner's own)."""
    q = np.sqrt(2 * np.arange(n) + 1.0)
    a = -np.tril(np.outer(q, q), -1) - np.diag(np.arange(1, n + 1.0))
    return a, q.copy()


# ---------------------------------------------------------------- 1. hippo_legs


def _hippo_cases(rng) -> list[Case]:
    return [
        Case("N = 1", (1,)), Case("N = 2", (2,)), Case("N = 5", (5,)),
        Case("N is random in [6, 64]", (int(rng.integers(6, 65)),)),
        Case("N = 256", (256,)),
        Case("N = 0 (raise ValueError)", (0,)), Case("N = -3 (raise ValueError)", (-3,)),
    ]


def _run_hippo(fn, case):
    (n,) = case.args
    if "ValueError" in case.kind:
        try:
            return {"raised": np.array(f"returned {type(fn(n)).__name__}")}
        except Exception as e:
            return {"raised": np.array(type(e).__name__)}
    a, b = _pair(fn(n), ("A", "B"))
    return {"A": to_numpy(a), "B": to_numpy(b)}


# ---------------------------------------------------------------- 2. discretize


def _discretize_cases(rng) -> list[Case]:
    n = int(rng.integers(3, 9))
    hippo_a, hippo_b = hippo_matrices(8)
    singular = _stable(rng, 5)
    singular[2] = 0.0  # a zero row: A is singular, A^-1 does not exist
    cases = []
    for method in ("zoh", "bilinear"):
        cases += [
            Case(f"{method}: a random stable A (N = {n}), dt = 0.1", (_stable(rng, n), rng.standard_normal(n), 0.1, method)),
            Case(f"{method}: HiPPO-LegS, N = 8, small dt = 1e-3", (hippo_a, hippo_b, 1e-3, method)),
            Case(f"{method}: HiPPO-LegS, N = 8, large dt = 1.0", (hippo_a, hippo_b, 1.0, method)),
            Case(f"{method}: a singular A (a zero row)", (singular, rng.standard_normal(5), 0.05, method)),
            Case(f"{method}: A = 0 (the system integrates u)", (np.zeros((4, 4)), rng.standard_normal(4), 0.3, method)),
            Case(f"{method}: N = 1", (np.array([[-2.0]]), np.array([1.5]), 0.25, method)),
        ]
    cases.append(Case("method = 'euler' (raise ValueError)", (_stable(rng, 3), rng.standard_normal(3), 0.1, "euler")))
    return cases


def _run_discretize(fn, case):
    a, b, dt, method = case.args
    ins = [torch.from_numpy(a.copy()), torch.from_numpy(b.copy())]
    before = [t.clone() for t in ins]
    if "ValueError" in case.kind:
        try:
            got = f"returned {type(fn(*ins, dt, method)).__name__}"
        except Exception as e:
            got = type(e).__name__
        return {"raised": np.array(got)}
    abar, bbar = _pair(fn(*ins, dt, method), ("Abar", "Bbar"))
    return {"Abar": to_numpy(abar), "Bbar": to_numpy(bbar), "inputs_unchanged": _unchanged(before, ins)}


# ---------------------------------------------------------------- 3. ssm_conv

CONV_COST = "L = 2048 (FFT required; no op output of L^2 elements)"


def _lti(rng, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stable discrete system: Abar = expm-free (I + dt A/2)-ish via a scaled random stable A."""
    a = _stable(rng, n)
    dt = 0.1
    eye = np.eye(n)
    abar = np.linalg.solve(eye - dt / 2 * a, eye + dt / 2 * a)  # spectral radius < 1
    bbar = np.linalg.solve(eye - dt / 2 * a, dt * rng.standard_normal(n))
    return abar, bbar, rng.standard_normal(n)


def _conv_cases(rng) -> list[Case]:
    def case(kind, batch, length, n=4):
        return Case(kind, (rng.standard_normal((batch, length)), *_lti(rng, n), length))

    hippo_a, hippo_b = hippo_matrices(16)
    dt, eye = 1.0 / 256, np.eye(16)
    h_abar = np.linalg.solve(eye - dt / 2 * hippo_a, eye + dt / 2 * hippo_a)
    h_bbar = np.linalg.solve(eye - dt / 2 * hippo_a, dt * hippo_b)
    odd = int(rng.integers(20, 200)) | 1
    return [
        case("batch 3, L = 64, N = 4", 3, 64),
        case("L = 1", 2, 1),
        case(f"L = {odd} (not a power of two)", 2, odd, 6),
        case("batch 1, L = 100, N = 1", 1, 100, 1),
        Case("HiPPO-LegS (bilinear, dt = 1/256), N = 16, L = 300: a slowly decaying kernel",
             (rng.standard_normal((2, 300)), h_abar, h_bbar, rng.standard_normal(16), 300)),
        case("u.shape[-1] != L (raise ValueError)", 1, 10),
        case(CONV_COST, 1, 2048),
    ]


def _run_conv(fn, case):
    u, abar, bbar, c, length = case.args
    ins = [torch.from_numpy(x.copy()) for x in (u, abar, bbar, c)]
    before = [t.clone() for t in ins]
    if "ValueError" in case.kind:
        try:
            got = f"returned {type(fn(*ins, length + 1)).__name__}"
        except Exception as e:
            got = type(e).__name__
        return {"raised": np.array(got)}
    if CONV_COST not in case.kind:  # the watch costs a Python call per op: only where a rule reads it
        return {"y": to_numpy(fn(*ins, length)), "inputs_unchanged": _unchanged(before, ins)}
    with ScanWatch(inputs=ins[:1]) as watch:  # follows u: how many ops read it or what came from it
        y = fn(*ins, length)
    return {"y": to_numpy(y), "inputs_unchanged": _unchanged(before, ins), **watch.summary()}


# ---------------------------------------------------------------- 4 and 5. the selective scan

SCAN_COST = "no intermediate of L^2 elements"


def scan_inputs(rng, b: int, d: int, n: int, length: int, mamba_a: bool = False, dt_scale: float = 1.0):
    """u, delta, A, B, C, D in Mamba's reference shapes, float32 (delta > 0 by a softplus)."""
    f32 = lambda x: np.asarray(x, dtype=np.float32)  # noqa: E731
    u = f32(rng.standard_normal((b, d, length)))
    delta = f32(np.log1p(np.exp(rng.standard_normal((b, d, length)) - 1.0)) * dt_scale)
    if mamba_a:  # S4D-real initialisation: A[:, k] = -(k + 1)
        a = f32(-np.tile(np.arange(1, n + 1), (d, 1)))
    else:
        a = f32(-np.exp(rng.standard_normal((d, n)) * 0.5))
    bm, cm = f32(rng.standard_normal((b, n, length))), f32(rng.standard_normal((b, n, length)))
    return u, delta, a, bm, cm, f32(rng.standard_normal(d))


def _scan_cases(rng) -> list[Case]:
    length = int(rng.integers(20, 120))
    cost = int(rng.integers(700, 1500))  # the cost case's length: drawn, so that no code can expect it
    return [
        Case("b = 2, d = 3, n = 4, L = 16", scan_inputs(rng, 2, 3, 4, 16)),
        Case("L = 1", scan_inputs(rng, 2, 2, 3, 1)),
        Case(f"b = 1, d = 4, n = 5, L = {length}", scan_inputs(rng, 1, 4, 5, length)),
        Case("n = 1", scan_inputs(rng, 2, 2, 1, 30)),
        Case("Mamba's A = -(1..16), L = 2048 (exp(delta A) products underflow: never divide by them)",
             scan_inputs(rng, 1, 2, 16, 2048, mamba_a=True)),
        Case("large delta (the state forgets at once)", scan_inputs(rng, 1, 2, 4, 40, dt_scale=8.0)),
        Case(f"b = 1, d = 2, n = 4, L = {cost} ({SCAN_COST}; a scan in O(log L) rounds)", scan_inputs(rng, 1, 2, 4, cost)),
    ]


def _triton_cases(rng) -> list[Case]:
    length = int(rng.integers(17, 250))
    length += length % 2 == 0  # odd: not a power of two
    return [
        Case("L = 1", scan_inputs(rng, 1, 2, 3, 1)),
        Case(f"L = {length} (not a power of two), b = 2, d = 1, n = 5", scan_inputs(rng, 2, 1, 5, length)),
        Case("L = 256 (exactly one chunk)", scan_inputs(rng, 1, 1, 8, 256)),
        Case("L = 300 (two chunks: carry the state across)", scan_inputs(rng, 1, 1, 8, 300)),
        Case("Mamba's A = -(1..16), L = 520 (three chunks)", scan_inputs(rng, 1, 1, 16, 520, mamba_a=True)),
        Case("slow decay (small delta), L = 600: the carried state matters", scan_inputs(rng, 1, 1, 4, 600, dt_scale=0.02)),
    ]


def _run_scan(fn, case):
    """The learner's scan on the case; the op watch and the line count (a Python call per torch op,
    a trace of every line) only in the cost case, where the rules read them."""
    ins = [torch.from_numpy(x.copy()).to(DEVICE) for x in case.args]
    before = [t.clone() for t in ins]
    if SCAN_COST not in case.kind:
        return {"y": to_numpy(fn(*ins)), "inputs_unchanged": _unchanged(before, ins)}
    budget = scan_line_budget(case.args[0].shape[-1])
    with ScanWatch() as watch:
        y, lines = count_lines(fn, ins, budget)  # y is None once the budget is passed (stopped there)
    out = {"inputs_unchanged": _unchanged(before, ins), "lines": np.array(lines), **watch.summary()}
    return out if y is None else {"y": to_numpy(y), **out}


def _run_triton(fn, case):
    """Every case watched: the launches, the host's torch ops, the outputs poisoned, and each
    program's loop iterations and scans (under the interpreter)."""
    ins = [torch.from_numpy(x.copy()).to(DEVICE) for x in case.args]
    before = [t.clone() for t in ins]
    budget = chunk_loop_budget(case.args[0].shape[-1])
    y = None
    with ScanWatch(poison=True) as watch, KernelLoops(getattr(fn, "__globals__", {}), budget, own_combine=True) as loops:
        try:
            y = fn(*ins)
        except Exception:
            if not loops.exceeded:  # the learner's own error: an output like any other
                raise
    out = {"inputs_unchanged": _unchanged(before, ins), **watch.summary(), **watch.triton.summary(),
           **loops.summary(), "calls_scan": calls_associative_scan(watch.triton.launches)}
    return out if y is None else {"y": to_numpy(y), **out}


# ---------------------------------------------------------------- 6. Mamba-2's chunked SSD

SSD_COST = "no L x L matrix; at most ceil(L / chunk) sequential steps; O(L chunk) work"
SSD_WORK = 24  # elements the ops may write: SSD_WORK * b * L * (chunk + n + p + n p)


def ssd_op_budget(length: int, chunk: int) -> int:
    """Torch ops ssd_chunked may run: a fixed number per chunk (the pass that carries the state) and
    a fixed number for the rest (the masked matmuls, vectorised over all chunks)."""
    return 24 * -(-length // chunk) + 128


def ssd_line_budget(length: int, chunk: int) -> int:
    """Python lines ssd_chunked may run (lines of the learner's own functions)."""
    return 16 * -(-length // chunk) + 60


def ssd_work_budget(b: int, length: int, n: int, p: int, chunk: int) -> int:
    return SSD_WORK * b * length * (chunk + n + p + n * p)


def ssd_inputs(rng, b: int, length: int, n: int, p: int, chunk: int, decay=(0.5, 1.0)):
    """x (b, L, p), a (b, L) in (0, 1], B and C (b, L, n), float32, and the chunk length."""
    f32 = lambda v: np.asarray(v, dtype=np.float32)  # noqa: E731
    lo, hi = decay
    return (f32(rng.standard_normal((b, length, p))), f32(rng.uniform(lo, hi, (b, length))),
            f32(rng.standard_normal((b, length, n))), f32(rng.standard_normal((b, length, n))), chunk)


class WorkWatch(ScanWatch):
    """ScanWatch, and the elements all computing (non-view) ops wrote together (`elements`)."""

    def __init__(self):
        super().__init__()
        self.elements = 0

    def on_op(self, name, func, args, kwargs, out):
        super().on_op(name, func, args, kwargs, out)
        if not func.is_view:
            self.elements += sum(t.numel() for t in tensors(out))

    def summary(self) -> dict:
        return {**super().summary(), "elements": np.array(self.elements, dtype=np.int64)}


def _ssd_cases(rng) -> list[Case]:
    odd = int(rng.integers(40, 90)) | 1
    cost = int(rng.integers(2000, 2600))  # drawn, so that no code can expect it
    return [
        Case("b = 2, L = 40, n = 4, p = 3, chunk = 8", ssd_inputs(rng, 2, 40, 4, 3, 8)),
        Case("L = 1", ssd_inputs(rng, 1, 1, 3, 2, 4)),
        Case("chunk = 1", ssd_inputs(rng, 1, 12, 2, 2, 1)),
        Case("chunk >= L (a single chunk)", ssd_inputs(rng, 1, 20, 3, 2, 32)),
        Case(f"L = {odd}, chunk = 16 (the last chunk partial)", ssd_inputs(rng, 2, odd, 4, 2, 16)),
        Case("a = 1 (no decay: every chunk's state carries on whole)",
             (*ssd_inputs(rng, 1, 48, 2, 2, 8)[:1], np.ones((1, 48), np.float32), *ssd_inputs(rng, 1, 48, 2, 2, 8)[2:])),
        Case("strong decay, a in [0.001, 0.05] (products underflow: never divide by them)",
             ssd_inputs(rng, 1, 96, 2, 2, 32, decay=(0.001, 0.05))),
        Case("chunk = 0 (raise ValueError)", ssd_inputs(rng, 1, 8, 2, 2, 0)),
        Case(f"b = 1, L = {cost}, n = 2, p = 2, chunk = 32 ({SSD_COST})", ssd_inputs(rng, 1, cost, 2, 2, 32)),
    ]


def _run_ssd(fn, case):
    *arrays, chunk = case.args
    ins = [torch.from_numpy(v.copy()).to(DEVICE) for v in arrays]
    before = [t.clone() for t in ins]
    if "ValueError" in case.kind:
        try:
            got = f"returned {type(fn(*ins, chunk)).__name__}"
        except Exception as e:
            got = type(e).__name__
        return {"raised": np.array(got)}
    if SSD_COST not in case.kind:
        return {"y": to_numpy(fn(*ins, chunk)), "inputs_unchanged": _unchanged(before, ins)}
    budget = ssd_line_budget(arrays[0].shape[1], chunk)
    with WorkWatch() as watch:
        y, lines = count_lines(fn, [*ins, chunk], budget)  # None once the budget is passed (stopped there)
    out = {"inputs_unchanged": _unchanged(before, ins), "lines": np.array(lines), **watch.summary()}
    return out if y is None else {"y": to_numpy(y), **out}


LEAVES_TORCH = ("NumPy, SciPy and a tensor's raw bytes are refused here: the cost rules are measured on torch ops, "
                "and a detour out of torch would hide work and memory from them.")

# Ways out of torch's dispatch, where the op watch sees nothing: SciPy (through __array__), and the raw bytes.
OUT_OF_TORCH = frozenset({"scipy", ".untyped_storage", ".storage", ".data_ptr", "memoryview", "ctypes", "struct",
                      "__dlpack__", "dlpack"})
TASKS = {
    "hippo_legs": Task("hippo_legs", _hippo_cases, _run_hippo),
    "discretize": Task("discretize", _discretize_cases, _run_discretize,
                       forbidden=frozenset({"scipy", "cont2discrete"}),
                       why="derive the discretisation yourself; the grader checks it against SciPy's."),
    "ssm_conv": Task("ssm_conv", _conv_cases, _run_conv, forbidden=frozenset(CONV_OPS | NO_NUMPY | OUT_OF_TORCH),
                     why="compute the causal convolution with torch.fft (no library convolution). " + LEAVES_TORCH),
    "selective_scan": Task("selective_scan", _scan_cases, _run_scan,
                           forbidden=frozenset(LIBRARY_SCANS | NO_NUMPY | OUT_OF_TORCH | {"torch._higher_order_ops"}),
                           why="the scan is yours, in rounds of the operator of section 5 (no library scan: "
                               "cumsum, cumprod, logcumsumexp, associative_scan). " + LEAVES_TORCH),
    "selective_scan_triton": Task("selective_scan_triton", _triton_cases, _run_triton,
                                  forbidden=frozenset(NO_NUMPY | OUT_OF_TORCH),
                                  why="the scan must run inside your Triton kernel. " + LEAVES_TORCH),
    "ssd_chunked": Task("ssd_chunked", _ssd_cases, _run_ssd, forbidden=frozenset(NO_NUMPY | OUT_OF_TORCH),
                        why="compute it in torch, chunk by chunk. " + LEAVES_TORCH),
}
