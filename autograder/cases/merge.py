"""Chapter 01's cases: what the learner's merge functions are run on, and how (the learner's kernel).

The run of `merge` measures the peak of Python and NumPy allocations with tracemalloc during the
call (the O(1) extra-memory rule); the run of `triton_merge` counts Triton kernel launches.
"""
import tracemalloc

import numpy as np
import torch

from autograder.device import DEVICE
from autograder.exercise import Case, Task, to_numpy
from autograder.watch import TritonLaunches

MEMORY_LIMIT = 64 * 1024  # bytes; a copy of 10^5 list slots alone is 800 kB

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
        Case("the sizes are not multiples of the block", (r(int(rng.integers(1500, 2500))), r(int(rng.integers(700, 1500))))),
        Case("a and b share many equal values", (r(700, lo=0, hi=5), r(900, lo=0, hi=5))),
        Case("the dtype is float32", (np.sort(rng.standard_normal(777)).astype(np.float32), np.sort(rng.standard_normal(555)).astype(np.float32))),
        Case("-0.0 and +0.0 tie (a's come first)", (signed_zeros, np.array([-0.0, 0.0, 0.0, 1.0], np.float32))),
        Case("values sit at the int32 extremes", (np.array([-big - 1, 0, big], np.int32), np.array([-big - 1, big, big], np.int32))),
    ]


# ---------------------------------------------------------------- runs


def _run_merge(fn, case: Case):
    a, b = case.args
    nums1, nums2 = a.tolist() + [0] * len(b), b.tolist()
    tracemalloc.start()
    try:
        fn(nums1, len(a), nums2, len(b))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"nums1": np.array(nums1, dtype=np.int64), "peak_bytes": np.array(peak)}


def _diags(case: Case) -> list[int]:
    a, b = case.args
    if "outside" in case.kind:
        return [-1, len(a) + len(b) + 1]
    return list(range(len(a) + len(b) + 1))


def _run_partition(fn, case: Case):
    a, b = case.args
    if "outside" in case.kind:
        raised = []
        for d in _diags(case):
            try:
                raised.append(f"returned {fn(a.copy(), b.copy(), d)!r}")
            except Exception as e:
                raised.append(type(e).__name__)
        return {"raised": np.array(raised)}
    return {"i": np.array([int(fn(a.copy(), b.copy(), d)) for d in _diags(case)], dtype=np.int64)}


def _run_triton(fn, case: Case):
    a, b = (torch.from_numpy(x).to(DEVICE) for x in case.args)
    with TritonLaunches() as launches:
        out = fn(a, b)
    return {"out": to_numpy(out), "launches": np.array(launches.count)}


NO_SORT = "the inputs are already sorted, and the point is to merge them in linear work, not to sort again."

TASKS = {
    "merge": Task("merge", _list_cases, _run_merge, forbidden=frozenset({"sorted", "sort", "heapq", "bisect", "torch"}),
                  why=NO_SORT + " torch is refused too: the O(1) extra-memory rule is measured with tracemalloc, "
                  "which sees Python lists and NumPy arrays but not torch tensors."),
    "merge_path_partition": Task(
        "merge_path_partition", _array_cases, _run_partition,
        forbidden=frozenset({"sort", "argsort", "sorted", "searchsorted", "bisect"}),
        why="find the co-rank with your own binary search over the diagonal.",
    ),
    "triton_merge": Task("triton_merge", _tensor_cases, _run_triton,
                         forbidden=frozenset({"sort", "argsort", "msort", "sorted", "searchsorted"}), why=NO_SORT),
}
