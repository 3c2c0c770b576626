"""Chapter 01's cases: what the learner's merge functions are run on, and how (the learner's kernel).

Each run records, besides the outputs, what the exercise's cost rule needs:
- `merge`: the peak of Python and NumPy allocations (tracemalloc, the O(1) extra-memory rule), the
  Python lines the learner's code runs (`count_lines`, the linear-work rule), and the shapes of code
  that move O(m + n) elements in one line (slices, `del`, dunder calls), which no line count sees;
- `merge_path_partition`: the elements each call reads from `a` and `b`, handed over as
  `ReadCounter` sequences (no `__array__`, so NumPy cannot read them behind the counter's back);
- `triton_merge`: the Triton launches and the host-side torch ops (`HostOps`, fresh empties
  poisoned), and under the interpreter which outputs each program stored and how many elements its
  loads read (`TileStores`; the calls per program come from `TritonLaunches.launch_loads`).
"""
import ast
import inspect
import textwrap
import tracemalloc

import numpy as np
import torch

from autograder import forbidden
from autograder.device import DEVICE
from autograder.exercise import NO_NUMPY, Case, Task, to_numpy
from autograder.watch import INTERPRETING, HostOps, ReadCounter, TritonLaunches, count_lines

MEMORY_LIMIT = 64 * 1024  # bytes; a copy of 10^5 list slots alone is 800 kB


def line_budget(total: int) -> int:
    """Python lines `merge` may run on m + n = total values: linear work, one value placed per step
    (the two-pointer loop runs about 5 lines per value)."""
    return 12 * total + 50


def read_bound(m: int, n: int) -> int:
    """Elements one `merge_path_partition` call may read: 4 (ceil(log2(min(m, n) + 1)) + 2), room for
    a binary search over the diagonal's min(m, n) + 1 points that reads up to 4 elements a step."""
    return 4 * (min(m, n).bit_length() + 2)


BLOCK_RANGE = (64, 256)  # the tile's comparison holds BLOCK^2 values; below 64 the corner searches dominate


def load_calls_bound(total: int) -> int:
    """tl.load calls one program of `merge_kernel` may make: the corner searches' rounds, two loads
    each, with room for two scalar searches (4 (bit_length(m + n) + 1)), and a few block loads of the
    tile (8): no loop of loads over the tile's elements or the lanes' searches."""
    return 4 * (total.bit_length() + 1) + 8


def element_load_bound(total: int, programs: int) -> int:
    """Enabled tl.load lanes the whole launch may read: every element of every tile once (m + n in
    all, the tiles partition a and b), and per program the corner searches' probes, at most
    2 corners x 2 loads x (bit_length(m + n) + 1) rounds."""
    return total + programs * 4 * (total.bit_length() + 1)


def _sorted(rng: np.random.Generator, size: int, low: int, high: int, dtype=np.int64) -> np.ndarray:
    return np.sort(rng.integers(low, high, size, endpoint=True)).astype(dtype)


def _list_cases(rng: np.random.Generator) -> list[Case]:
    r = lambda size, lo=-100, hi=100: _sorted(rng, size, lo, hi)  # noqa: E731
    big = 10**9
    m, n = rng.integers(1, 40, 2)
    return [
        *(Case("m and n are random", (r(a), r(b))) for a, b in rng.integers(1, 40, (3, 2))),
        Case("m == 0", (r(0), r(n))),
        Case("n == 0", (r(m), r(0))),
        Case("m == 0 and n == 0", (r(0), r(0))),
        Case("both arrays hold many duplicates", (r(m, 0, 3), r(n, 0, 3))),
        Case("all values are negative", (r(m, -big, -1), r(n, -big, -1))),
        Case("all of nums2 is below all of nums1", (r(m, 0, 50), r(n, -50, -1))),
        Case("all of nums2 is above all of nums1", (r(m, -50, -1), r(n, 0, 50))),
        Case("values sit at -10^9 and 10^9", (np.array([-big, -big, big]), np.array([-big, big, big]))),
        Case("m + n = 2000 (work must stay linear)", (r(1200, -big, big), r(800, -big, big))),
        Case("m + n = 10^5 (extra memory must stay O(1))", (r(60_000, -big, big), r(40_000, -big, big))),
    ]


def _array_cases(rng: np.random.Generator) -> list[Case]:
    r = lambda size, lo=-30, hi=30: _sorted(rng, size, lo, hi)  # noqa: E731
    floats = np.sort(rng.standard_normal(25))
    return [
        *(Case("a and b are random int arrays", (r(a), r(b))) for a, b in rng.integers(1, 25, (2, 2))),
        Case("a and b share many equal values (ties come from a first)", (r(20, 0, 2), r(15, 0, 2))),
        Case("a is empty", (r(0), r(9))),
        Case("b is empty", (r(9), r(0))),
        Case("both are empty", (r(0), r(0))),
        Case("the arrays are float64", (floats[::2].copy(), floats[1::2].copy())),
        Case("diag is outside [0, m + n] (raise ValueError)", (r(5), r(4))),
        Case("m = n = 400 (reads per call must stay O(log min(m, n)))", (r(400, -500, 500), r(400, -500, 500))),
        Case("m = 1500, n = 30 (reads per call must stay O(log min(m, n)))", (r(1500, -900, 900), r(30, -900, 900))),
    ]


def _tensor_cases(rng: np.random.Generator) -> list[Case]:
    def r(size, dtype=np.int32, lo=-1000, hi=1000):
        return _sorted(rng, size, lo, hi, dtype)

    big = 2**31 - 1
    signed_zeros = np.array([-1.0, -0.0, -0.0, 0.0, 2.0], np.float32)
    return [
        Case("both tensors are empty", (r(0), r(0))),
        Case("a is empty", (r(0), r(17))),
        Case("b is empty", (r(17), r(0))),
        Case("each tensor holds one element", (r(1), r(1))),
        Case("the sizes are 17 and 1000", (r(17), r(1000))),
        Case("the sizes are 1000 and 17", (r(1000), r(17))),
        Case("the sizes are not multiples of the block", (r(int(rng.integers(700, 1300))), r(int(rng.integers(300, 700))))),
        Case("a and b share many equal values", (r(300, lo=0, hi=5), r(500, lo=0, hi=5))),
        Case("the dtype is float32", (np.sort(rng.standard_normal(333)).astype(np.float32), np.sort(rng.standard_normal(222)).astype(np.float32))),
        Case("-0.0 and +0.0 tie (a's come first)", (signed_zeros, np.array([-0.0, 0.0, 0.0, 1.0], np.float32))),
        Case("values sit at the int32 extremes", (np.array([-big - 1, 0, big], np.int32), np.array([-big - 1, big, big], np.int32))),
    ]


# ---------------------------------------------------------------- merge: code that moves many elements in one line


def _bulk_moves(fn) -> list[str]:
    """What a line count cannot see in `fn` and the functions it reaches: slices (a copy, or a
    slice assignment that shifts the list), `del` of list elements, and dunder attributes
    (`nums1.__setitem__`, `list.__init__`), each O(m + n) work in one line of C."""
    found = []
    for f in forbidden.reachable(fn):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(f)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Slice):
                found.append(f"a slice (line {node.lineno} of {f.__name__})")
            elif isinstance(node, ast.Delete) and any(isinstance(t, ast.Subscript) for t in node.targets):
                found.append(f"`del` of list elements (line {node.lineno} of {f.__name__})")
            elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr.endswith("__"):
                found.append(f"`{node.attr}` (line {node.lineno} of {f.__name__})")
    return found


# ---------------------------------------------------------------- triton_merge: which outputs each program stores


class TileStores(TritonLaunches):
    """TritonLaunches that also records, under the interpreter, which elements every program of the
    first launch stores, per tensor argument: `tiles(name)` gives each program's lowest and one past
    its highest element offset, and how many distinct elements it wrote. A merge-path program writes
    one contiguous tile of the output, the next program the next tile. `load_lanes` counts the
    elements the first launch's tl.loads read (enabled lanes; `launch_loads` counts calls)."""

    def __init__(self):
        super().__init__()
        self.stored: dict[tuple[int, str], list[np.ndarray]] = {}
        self.load_lanes = 0  # enabled lanes of every tl.load of the first launch: elements read

    def _touch(self, what, ptrs, mask) -> None:
        super()._touch(what, ptrs, mask)  # counts calls, and refuses lanes out of bounds
        if self._current is None or self._current is not self.launches[0]:
            return
        addr = np.asarray(ptrs.data, dtype=np.uint64)
        on = np.broadcast_to(np.asarray(mask.data, dtype=bool), addr.shape)
        if what == "loads":
            self.load_lanes += int(on.sum())
            return
        from triton.runtime.interpreter import interpreter_builder

        addr = addr[on].astype(np.int64)
        size = max(1, ptrs.get_element_ty().primitive_bitwidth // 8)
        program = int(interpreter_builder.grid_idx[0])
        for name, lo, hi in self._extents:
            inside = (addr >= lo) & (addr < hi)
            if inside.any():
                self.stored.setdefault((program, name), []).append((addr[inside] - lo) // size)

    def targets(self) -> list[str]:
        return sorted({name for _, name in self.stored})

    def tiles(self, name: str, programs: int) -> np.ndarray:
        """(programs, 3): first offset, one past the last, distinct offsets written (0, 0, 0: none)."""
        rows = []
        for p in range(programs):
            parts = self.stored.get((p, name))
            if not parts:
                rows.append((0, 0, 0))
                continue
            offs = np.unique(np.concatenate(parts))
            rows.append((int(offs[0]), int(offs[-1]) + 1, offs.size))
        return np.array(rows, dtype=np.int64).reshape(programs, 3)


class MergeWatch(HostOps):
    """HostOps (host-side torch work, fresh empties poisoned) whose launch recorder is TileStores.
    With `compile=False` the launched kernels are not compiled for sm_90 (each specialization costs
    about half a second, and R_TILE differs with min(m, n)): the cases in COMPILED stand for the rest."""

    def __init__(self, compile: bool = True):
        super().__init__(poison=True)
        self.triton = self._triton = TileStores()
        self.compile = compile

    def summary(self) -> dict:
        stores = self._triton
        if not self.compile:
            for launch in stores.launches:
                launch.fn = None  # compile_errors compiles only Python functions
        out = super().summary()
        targets = stores.targets() if stores.launches else []
        out["tiles_measured"] = np.array(bool(INTERPRETING and stores.launches))
        out["store_targets"] = np.array(targets, dtype=str)
        programs = stores.launches[0].programs if stores.launches else 0
        out["tiles"] = stores.tiles(targets[0], programs) if len(targets) == 1 else np.zeros((0, 3), np.int64)
        out["load_lanes"] = np.array(stores.load_lanes if INTERPRETING and stores.launches else -1)
        return out


# ---------------------------------------------------------------- runs


def _run_merge(fn, case: Case):
    moves = _bulk_moves(fn)
    if moves:
        return {"refused": np.array(moves[0])}
    a, b = case.args
    nums1, nums2 = a.tolist() + [0] * len(b), b.tolist()
    measure = "extra memory" in case.kind  # tracemalloc slows Python down: only where it is judged
    if measure:
        tracemalloc.start()
    try:
        _, lines = count_lines(fn, (nums1, len(a), nums2, len(b)), line_budget(len(a) + len(b)))
        peak = tracemalloc.get_traced_memory()[1] if measure else 0
    finally:
        if measure:
            tracemalloc.stop()
    return {"nums1": np.array(nums1, dtype=np.int64), "peak_bytes": np.array(peak), "lines": np.array(lines)}


def _diags(case: Case) -> list[int]:
    a, b = case.args
    if "outside" in case.kind:
        return [-1, len(a) + len(b) + 1]
    if "reads per call" in case.kind:  # 97 diagonals spread over [0, m + n], both ends included
        return sorted(set(np.linspace(0, len(a) + len(b), 97).round().astype(int).tolist()))
    return list(range(len(a) + len(b) + 1))


def _run_partition(fn, case: Case):
    a, b = (x.tolist() for x in case.args)
    if "outside" in case.kind:
        raised = []
        for d in _diags(case):
            try:
                raised.append(f"returned {fn(ReadCounter(a), ReadCounter(b), d)!r}")
            except Exception as e:
                raised.append(type(e).__name__)
        return {"raised": np.array(raised)}
    got, reads = [], []
    for d in _diags(case):
        ra, rb = ReadCounter(a), ReadCounter(b)  # fresh per call: nothing carries over between calls
        got.append(int(fn(ra, rb, d)))
        reads.append(ra.reads + rb.reads)
    return {"i": np.array(got, dtype=np.int64), "reads": np.array(reads, dtype=np.int64)}


# the cases whose kernels are compiled for sm_90: one int32 and one float32 specialization
COMPILED = frozenset({"the sizes are not multiples of the block", "the dtype is float32"})


def _roles(extents, given: dict) -> tuple[list[str], list[str]]:
    """The last launch's tensor arguments (names) and what each is: "a", "b", "out" (the tensor the
    wrapper returned) or "other" (something the host made: a merged copy, ranks, positions)."""
    names, roles = [], []
    for name, lo, hi in extents:
        role = next((r for r, t in given.items() if isinstance(t, torch.Tensor) and t.data_ptr() == lo
                     and hi - lo == t.numel() * t.element_size()), "other")
        names.append(name)
        roles.append(role)
    return names, roles


def _run_triton(fn, case: Case):
    a, b = (torch.from_numpy(x).to(DEVICE) for x in case.args)
    with MergeWatch(compile=case.kind in COMPILED) as watch:
        out = fn(a, b)
    names, roles = _roles(watch.triton._extents, {"a": a, "b": b, "out": out})
    return {"out": to_numpy(out), **watch.summary(),
            "tensor_args": np.array(names, dtype=str), "tensor_roles": np.array(roles, dtype=str)}


# sorting, heaps, bisection, NumPy (whose copies the memory rule would have to catch); list methods whose C work is O(m + n) per call or that resize the list;
# the ways of reaching a method by its name as a string
MERGE_REFUSED = frozenset({
    "sorted", "sort", "argsort", "lexsort", "searchsorted", "heapq", "bisect", "torch", *NO_NUMPY,
    ".insert", ".pop", ".remove", ".index", ".count", ".extend", ".append", ".reverse", ".clear", ".copy",
    "slice", "operator", ".methodcaller", "getattr", "setattr", "eval", "exec", "compile", "__import__",
    "globals", "vars", "locals", "__builtins__", "builtins", "importlib", "sys", "inspect",
})

TASKS = {
    "merge": Task("merge", _list_cases, _run_merge, forbidden=MERGE_REFUSED,
                  why="the inputs are already sorted, so merge them yourself in linear work: no sort, heap or "
                  "bisection, and no list method that shifts, searches or resizes the list (insert, pop, remove, "
                  "index, append, ...: O(m + n) work in one call, so an insertion merge built on them is O(m n)); "
                  "place one value per step from the back with your own indices (see section 2). torch is refused "
                  "too: the O(1) extra-memory rule is measured with tracemalloc, which sees Python lists and NumPy "
                  "arrays but not torch tensors."),
    "merge_path_partition": Task(
        "merge_path_partition", _array_cases, _run_partition,
        forbidden=frozenset({"sort", "argsort", "sorted", "searchsorted", "bisect", "digitize"}),
        why="find the co-rank with your own binary search over the diagonal (see section 4).",
    ),
    "triton_merge": Task("triton_merge", _tensor_cases, _run_triton,
                         forbidden=frozenset({"sort", "argsort", "msort", "sorted", "searchsorted", "bucketize",
                                              "digitize", "scatter", "scatter_", "index_put", "index_put_",
                                              "index_copy", "index_copy_", "topk", "kthvalue", "unique", "heapq",
                                              "bisect", ".tolist", ".numpy"}),
                         why="the inputs are already sorted: no sort, search or scatter on the host; the merge "
                         "happens in your kernel, each program merging its own tile of outputs (see section 7)."),
}
