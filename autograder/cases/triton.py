"""Chapter 00's cases: what the learner's add, softmax_rows, matmul and cumsum_rows are run on, and
how (in the learner's kernel).

Inputs that the prompts call "possibly strided" are views into a larger buffer whose other elements
hold NaN (int32: its smallest value), so a kernel that ignores a stride reads them. Every run
watches the call with `Host`: the Triton launches (kernel, grid, constexprs; under the interpreter
every lane of every tl.load/tl.store checked against the tensor arguments, loads and stores counted,
tl.dot precisions, an sm_90 compile), the torch ops the host side runs outside the launch (only
allocation, views and size reads may run: not even a copy, so that no host-side .contiguous() does
the strides' work), and every `torch.empty*` filled with NaN. The prefix sum's runs also count, with
`KernelLoops` (autograder/watch.py), each program's loop iterations and scans. NumPy is refused: it would compute out of the
watch's sight.
"""

import numpy as np
import torch

from autograder.device import DEVICE
from autograder.exercise import Case, NO_NUMPY, Task, dtype_name, to_numpy
from autograder.watch import HostOps, KernelLoops

# sizes the prompts state
SOFTMAX_MAX_C = 8192
CUMSUM_MAX_C = 100_000
MIN_TILE, MAX_TILE = 16, 128  # matmul tiles: tl.dot's smallest, and what a GPU program holds in registers
MIN_CHUNK, MAX_CHUNK = 128, 1024  # cumsum chunks: at least four warps of lanes, at most what one scan holds

# what the host side may run: allocate, view, read sizes (no copy, no arithmetic, no .item())
HOST_ALLOC = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros",
                        "zeros_like", "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like", "new_full",
                        "fill_", "zero_", "detach", "alias", "sym_size", "sym_stride", "sym_numel",
                        "sym_storage_offset", "_unsafe_view"})


class Host(HostOps):
    """HostOps with a stricter host: every op but allocation, views and size reads is recorded."""

    def __init__(self):
        super().__init__(poison=True)
        self.may = set(HOST_ALLOC)


def cumsum_tolerance(x: np.ndarray) -> np.ndarray:
    """What a float32 prefix sum may be off by at element j of a row: 1e-5 + 2e-7 sqrt(j + 1) S_j,
    with S_j the sum of |x| up to j. Rounding errors of float32 additions (unit roundoff 6e-8) grow
    like a random walk, sqrt(j) of them, each relative to the running magnitude, whatever the order
    of the additions; a missed carry or an exclusive scan is off by whole elements."""
    mags = np.cumsum(np.abs(np.asarray(x, np.float64)), axis=-1)
    return 1e-5 + 2e-7 * np.sqrt(np.arange(1, mags.shape[-1] + 1)) * mags


# ---------------------------------------------------------------- strided views


def _sentinel(dtype: torch.dtype):
    return float("nan") if dtype.is_floating_point else torch.iinfo(dtype).min


def vector_view(values: np.ndarray, step: int) -> torch.Tensor:
    """values as a 1-D view with stride `step` into a buffer whose gaps hold the sentinel."""
    t = torch.from_numpy(values)
    buf = torch.full((max(1, len(values) * step),), _sentinel(t.dtype), dtype=t.dtype, device=DEVICE)
    view = buf[::step][: len(values)]
    view.copy_(t)
    return view


def matrix_view(values: np.ndarray, layout: str) -> torch.Tensor:
    """values (R, C) laid out as "contiguous", "wide" (rows of a wider buffer: row stride > C),
    "every other row" (row stride 2C), or "transposed" (a view of a (C, R) tensor: strides (1, R))."""
    t = torch.from_numpy(np.ascontiguousarray(values))
    r, c = t.shape
    fill, kw = _sentinel(t.dtype), dict(dtype=t.dtype, device=DEVICE)
    views = {"contiguous": lambda: torch.empty((r, c), **kw),
             "wide": lambda: torch.full((r, c + 7), fill, **kw)[:, :c],
             "every other row": lambda: torch.full((2 * r, c), fill, **kw)[::2],
             "transposed": lambda: torch.empty((c, r), **kw).T}
    view = views[layout]()
    view.copy_(t)
    return view


def _watched(fn, inputs: list[torch.Tensor], loops=None) -> dict:
    """fn(*inputs) under Host (and `loops`, for the prefix sum): its output and what it did."""
    before = [t.clone() for t in inputs]
    with Host() as host:
        if loops is None:
            out = fn(*inputs)
        else:
            with loops:
                try:
                    out = fn(*inputs)
                except Exception:  # the interpreter wraps LoopBudget in its own error
                    if not loops.exceeded:
                        raise
                    return {**loops.summary(), **host.summary()}
    result = {"out": to_numpy(out), "out_dtype": dtype_name(out),
              "out_contiguous": np.array(bool(getattr(out, "is_contiguous", lambda: False)())),
              "inputs_unchanged": np.array(all(torch.equal(b, a) or (b.is_floating_point() and torch.equal(
                  torch.nan_to_num(b), torch.nan_to_num(a))) for b, a in zip(before, inputs))),
              **host.summary()}
    if loops is not None:
        result.update(loops.summary())
    return result


# ---------------------------------------------------------------- 1. add


def _values(rng, n: int, dtype: str) -> np.ndarray:
    if dtype == "int32":
        return rng.integers(-1000, 1000, n).astype(np.int32)
    return rng.standard_normal(n).astype(dtype)


def _add_cases(rng) -> list[Case]:
    def case(kind, n, dtype, sx=1, sy=1):
        return Case(kind, (_values(rng, n, dtype), _values(rng, n, dtype), sx, sy))

    n = int(rng.integers(1500, 4000))
    return [
        case("n = 0", 0, "float32"),
        case("n = 1", 1, "float32"),
        case("n = 1000, float32, contiguous (the last block has a tail)", 1000, "float32"),
        case(f"n = {n}, float32, x = t[::3] and y = t[::2] (strided views)", n, "float32", 3, 2),
        case("n = 777, float16, x = t[::2]", 777, "float16", 2, 1),
        case("n = 513, int32, y = t[::5]", 513, "int32", 1, 5),
    ]


def _run_add(fn, case: Case):
    x, y, sx, sy = case.args
    return _watched(fn, [vector_view(x, sx), vector_view(y, sy)])


# ---------------------------------------------------------------- 2. softmax_rows


def _softmax_cases(rng) -> list[Case]:
    def case(kind, r, c, dtype="float32", layout="contiguous", scale=1.0, shift=0.0):
        x = (rng.standard_normal((r, c)) * scale + shift).astype(dtype)
        return Case(kind, (x, layout))

    c = int(rng.integers(200, 2000))
    return [
        case("R = 3, C = 5 (a block of 8: three padding lanes)", 3, 5),
        case("C = 1", 2, 1),
        case(f"R = 4, C = {c}, rows of a wider buffer (row stride > C)", 4, c, layout="wide"),
        case("float16, R = 3, C = 300, every other row (row stride 2C)", 3, 300, "float16", "every other row"),
        case("logits of magnitude 1e4 (exp overflows float32 without the max shift)", 3, 77, scale=1e4),
        case("logits near -1e4 (exp underflows to 0 without the max shift)", 2, 50, shift=-1e4),
        case("all logits negative, C = 100 (zero padding would be the max)", 2, 100, shift=-30.0),
        case(f"C = {SOFTMAX_MAX_C} (the longest row), float16", 2, SOFTMAX_MAX_C, "float16", scale=3.0),
    ]


def _run_softmax(fn, case: Case):
    x, layout = case.args
    return _watched(fn, [matrix_view(x, layout)])


# ---------------------------------------------------------------- 3. matmul


def _matmul_cases(rng) -> list[Case]:
    def case(kind, m, k, n, dtype="float32", la="contiguous", lb="contiguous"):
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        return Case(kind, (a, b, la, lb))

    m, k, n = (int(v) for v in rng.integers(17, 90, 3))
    return [
        case("M = 37, K = 29, N = 53 (no size a multiple of a block)", 37, 29, 53),
        case("K = 1", 20, 1, 17),
        case("M = 1, N = 1, K = 70", 1, 70, 1),
        case("a is a transposed view (strides (1, M)), K = 70", 45, 70, 38, la="transposed"),
        case("b is a transposed view, K = 90, N = 100", 3, 90, 100, lb="transposed"),
        case("float16, a rows of a wider buffer, K = 100", 40, 100, 33, "float16", la="wide"),
        case(f"M = {m}, K = {k}, N = {n}, b every other row", m, k, n, lb="every other row"),
        case("M = 150, K = 48, N = 20 (more than one tile of rows)", 150, 48, 20),
    ]


def _run_matmul(fn, case: Case):
    a, b, la, lb = case.args
    return _watched(fn, [matrix_view(a, la), matrix_view(b, lb)])


# ---------------------------------------------------------------- 4. cumsum_rows

def loop_budget(cols: int) -> int:
    """Loop iterations a program may run before it is stopped: one per chunk of MIN_CHUNK, and 2."""
    return -(-cols // MIN_CHUNK) + 2


def _cumsum_cases(rng) -> list[Case]:
    def case(kind, r, c, layout="contiguous", shift=0.0):
        return Case(kind, ((rng.standard_normal((r, c)) + shift).astype(np.float32), layout))

    c = int(rng.integers(1100, 2000))
    return [
        case("C = 1", 3, 1),
        case("C = 100 (one chunk with a tail)", 2, 100),
        case("R = 3, C = 2500, rows of a wider buffer (three chunks of 1024: carry the total)", 3, 2500, "wide"),
        case(f"C = {c}, every other row (row stride 2C)", 2, c, "every other row"),
        case("values near 1 (the running total grows), C = 5000", 1, 5000, shift=1.0),
        case(f"C = {CUMSUM_MAX_C} (the longest row)", 1, CUMSUM_MAX_C),
    ]


def _run_cumsum(fn, case: Case):
    x, layout = case.args
    loops = KernelLoops(getattr(fn, "__globals__", {}), loop_budget(x.shape[1]))
    return _watched(fn, [matrix_view(x, layout)], loops)


LEAVES_TORCH = "NumPy is refused: work done in NumPy would hide from the grader's watch of the host side."
TASKS = {
    "add": Task("add", _add_cases, _run_add, forbidden=NO_NUMPY,
                why="the kernel adds; the host only allocates and launches. " + LEAVES_TORCH),
    "softmax_rows": Task("softmax_rows", _softmax_cases, _run_softmax,
                         forbidden=NO_NUMPY | {".softmax", ".log_softmax", ".logsumexp", "torch.special"},
                         why="the softmax is computed in your kernel (no library softmax). " + LEAVES_TORCH),
    "matmul": Task("matmul", _matmul_cases, _run_matmul,
                   forbidden=NO_NUMPY | {"@", ".matmul", ".mm", ".bmm", ".einsum", "einsum", ".tensordot", ".linear",
                                         ".addmm", ".baddbmm", ".mv", ".inner", ".outer", ".chain_matmul",
                                         "torch.linalg"},
                   why="the product is computed by tl.dot in your kernel (no torch matmul, @ or einsum). "
                       + LEAVES_TORCH),
    "cumsum_rows": Task("cumsum_rows", _cumsum_cases, _run_cumsum,
                        forbidden=NO_NUMPY | {"torch.cumsum", "torch.cumulative_trapezoid"},
                        why="the prefix sum is scanned in your kernel (no torch cumsum). " + LEAVES_TORCH),
}
