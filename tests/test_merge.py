"""Chapter 01's method rules, each shown to bind on its own: with the refused names set aside, the
run-side recorders (line count, read counts, host ops, launches, tile stores, elements loaded and
load calls per program)
still fail every way of getting the right output without the technique, and the solution passes."""
import re
from pathlib import Path

import numpy as np
import pytest

from autograder import notebooks, verifier
from autograder.reference import merge as M
from conftest import ROOT, solved

SLUG = "01-merge"
PREAMBLE = "import numpy as np\nimport torch\nimport triton\nimport triton.language as tl\n" \
           "from autograder.device import DEVICE\n\n"


def _define(source: str, tmp_path: Path, name: str) -> dict:
    """Run a cell's source as a notebook would (module `__main__`, source readable by inspect)."""
    path = tmp_path / f"{name}.py"
    path.write_text(PREAMBLE + source)
    scope = {"__name__": "__main__"}
    exec(compile(path.read_text(), str(path), "exec"), scope)
    return scope


def _solution(grade_id: str) -> str:
    return next(c.source for c in solved(SLUG).cells if notebooks.grade_id(c) == grade_id)


def _submission(name: str) -> str:
    return (ROOT / "tests" / "submissions" / SLUG / f"{name}.py").read_text()


def _reasons(exercise: str, fn, kinds=None) -> list[str]:
    """The check's message for every case (of the given kinds) the function fails, names not refused."""
    ex = M.EXERCISES[exercise]
    out = []
    for case in ex.cases(np.random.default_rng(5)):
        if kinds and not any(case.kind.startswith(k) for k in kinds):
            continue
        try:
            ex.check(case, verifier._run(ex, fn, case), ex.reference(case))
        except AssertionError as e:
            out.append(str(e))
    return out


# ---------------------------------------------------------------- merge

GAP_MERGE = '''def merge(nums1, m, nums2, n):
    # right values, O(1) memory, no list method and no slice: the gap (shell) method, O((m + n) log(m + n))
    for j in range(n):
        nums1[m + j] = nums2[j]
    total, gap = m + n, (m + n + 1) // 2
    while gap > 0:
        for i in range(total - gap):
            if nums1[i] > nums1[i + gap]:
                nums1[i], nums1[i + gap] = nums1[i + gap], nums1[i]
        gap = 0 if gap == 1 else (gap + 1) // 2
'''

SLICE_INSERT = '''def merge(nums1, m, nums2, n):
    # an insertion merge through a slice assignment and del: each moves the tail in C
    for _ in range(n):
        del nums1[len(nums1) - 1]
    i = 0
    for value in nums2:
        while i < len(nums1) and nums1[i] <= value:
            i += 1
        nums1[i:i] = [value]
        i += 1
'''

DUNDER_INSERT = '''def merge(nums1, m, nums2, n):
    # list.insert reached through a dunder lookup instead of its name
    put = type(nums1).__dict__["ins" + "ert"]
    drop = type(nums1).__dict__["po" + "p"]
    for _ in range(n):
        drop(nums1)
    i = 0
    for value in nums2:
        while i < len(nums1) and nums1[i] <= value:
            i += 1
        put(nums1, i, value)
        i += 1
'''


def test_the_merge_solution_passes_every_rule(tmp_path):
    fn = _define(_solution("merge"), tmp_path, "merge")["merge"]
    assert _reasons("merge", fn) == []


@pytest.mark.parametrize("source,says", [
    (_submission("merge_shifts"), "Python lines"),
    (GAP_MERGE, "Python lines"),
    (SLICE_INSERT, "a slice"),
    (DUNDER_INSERT, "`__dict__`"),
])
def test_merge_without_linear_work_fails_without_the_name_check(tmp_path, source, says):
    fn = _define(source, tmp_path, "merge")["merge"]
    reasons = _reasons("merge", fn)
    assert reasons and all(says in r and "section 2" in r for r in reasons), reasons[:2]


def test_list_methods_that_shift_are_refused_by_name():
    refused = M.EXERCISES["merge"].forbidden
    assert {".insert", ".pop", ".remove", "getattr", "operator"} <= refused
    assert "insert" not in refused, "a learner's own variable named insert is fine; only the attribute is refused"


# ---------------------------------------------------------------- merge_path_partition


def test_the_partition_solution_reads_within_the_bound(tmp_path):
    fn = _define(_solution("merge_path_partition"), tmp_path, "partition")["merge_path_partition"]
    assert _reasons("merge_path_partition", fn) == []


@pytest.mark.parametrize("name", ["partition_digitize", "partition_linear_walk"])
def test_partitions_that_read_linearly_fail_on_their_reads(tmp_path, name):
    fn = _define(_submission(name), tmp_path, name)["merge_path_partition"]
    reasons = _reasons("merge_path_partition", fn)
    assert reasons and all("elements of a and b in one call" in r and "section 4" in r for r in reasons), reasons


def test_the_read_bound_allows_four_reads_a_step():
    assert M.read_bound(400, 400) == 44 and M.read_bound(1500, 30) == 28 and M.read_bound(0, 9) == 8


# ---------------------------------------------------------------- triton_merge

TRITON_CASES = ("the sizes are not multiples of the block",)

HOST_RANKS = '''@triton.jit
def merge_kernel(a_ptr, b_ptr, pos_a_ptr, pos_b_ptr, out_ptr, m, n, BLOCK: tl.constexpr):
    k = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + tl.load(pos_a_ptr + k, mask=k < m, other=0), tl.load(a_ptr + k, mask=k < m), mask=k < m)
    tl.store(out_ptr + tl.load(pos_b_ptr + k, mask=k < n, other=0), tl.load(b_ptr + k, mask=k < n), mask=k < n)


def triton_merge(a, b):
    # ranks by comparisons on the host, no refused name; the kernel only scatters
    m, n = a.numel(), b.numel()
    out = torch.empty(m + n, dtype=a.dtype, device=a.device)
    if m + n == 0:
        return out
    pos_a = torch.arange(m) + (b[None, :] < a[:, None]).sum(1)
    pos_b = torch.arange(n) + (a[None, :] <= b[:, None]).sum(1)
    merge_kernel[(triton.cdiv(max(m, n), 256),)](a, b, pos_a, pos_b, out, m, n, BLOCK=256)
    return out
'''


def _variant(source: str, old: str, new: str) -> str:
    assert old in source, old
    return source.replace(old, new)


def _triton_variants() -> dict[str, tuple[str, str]]:
    good = _solution("triton_merge")
    return {
        "host ranks": (HOST_RANKS, "computed on the host"),
        "sort and copy": (_submission("triton_host_sort_copy_kernel"), "computed on the host"),
        "bucketize and copy": (_submission("triton_host_bucketize"), "computed on the host"),
        "ranks scattered": (_submission("triton_rank_scatter"), "spread over"),
        "one big block": (_variant(good, "BLOCK = 256", "BLOCK = 512"), "at most 256"),
        "tiny blocks": (_variant(good, "BLOCK = 256", "BLOCK = 32"), "wants 64 <= BLOCK <= 256",
                        ("each tensor holds one element",)),
        "two launches": (good.rstrip() + "\n\n\n_once = triton_merge\n\n\ndef triton_merge(a, b):\n"
                         "    _once(a[:0], b)\n    return _once(a, b)\n", "exactly 1"),
        "short grid": (_variant(good, "grid = (triton.cdiv(m + n, BLOCK),)", "grid = (triton.cdiv(m + n, BLOCK) + 1,)"),
                       "one program per tile"),
        "never writes": (_variant(good, "tl.store(out_ptr + x_at, x, mask=has_x)",
                                  "tl.store(out_ptr + x_at, x, mask=has_x & (x_at < 0))"), "elements differ"),
        "per-lane global search": (_submission("triton_lane_search"), "elements per output"),
        "reads past its slice": (_variant(good, "x = tl.load(a_ptr + i0 + lane, mask=has_x, other=0)",
                                          "x = tl.load(a_ptr + i0 + lane, mask=i0 + lane < m, other=0)"),
                                 "elements per output"),
        "idle load rounds": (_variant(good, "for _ in range(R_TILE):", "for _ in range(R_TILE + 40):"),
                             "tl.load calls per program"),
    }


def test_the_triton_solution_passes_every_rule(tmp_path):
    fn = _define(_solution("triton_merge"), tmp_path, "triton")["triton_merge"]
    assert _reasons("triton_merge", fn, TRITON_CASES + ("each tensor holds one element",)) == []


@pytest.mark.parametrize("name", list(_triton_variants()))
def test_a_merge_outside_merge_path_fails_without_the_name_check(tmp_path, name):
    source, says, *kinds = _triton_variants()[name]
    fn = _define(source, tmp_path, re.sub(r"\W", "_", name))["triton_merge"]
    reasons = _reasons("triton_merge", fn, kinds[0] if kinds else TRITON_CASES)
    assert reasons and says in reasons[0], reasons


HOST_PYTHON_MERGE = '''@triton.jit
def merge_kernel(src_ptr, out_ptr, total, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.load(src_ptr + offs, mask=offs < total), mask=offs < total)


def triton_merge(a, b):
    # a two-pointer merge on the host through .item() and element copies (no torch op that computes),
    # then a kernel that copies it tile by tile
    m, n = a.numel(), b.numel()
    out = torch.empty(m + n, dtype=a.dtype, device=a.device)
    if m + n == 0:
        return out
    merged = torch.empty_like(out)
    i = j = 0
    for k in range(m + n):
        if j == n or (i < m and a[i].item() <= b[j].item()):
            merged[k].copy_(a[i]); i += 1
        else:
            merged[k].copy_(b[j]); j += 1
    merge_kernel[(triton.cdiv(m + n, 256),)](merged, out, m + n, BLOCK=256)
    return out
'''


def test_a_host_merge_made_of_copies_fails_on_the_kernels_arguments(tmp_path):
    fn = _define(HOST_PYTHON_MERGE, tmp_path, "host_python")["triton_merge"]
    reasons = _reasons("triton_merge", fn, ("the sizes are 17 and 1000",))
    assert reasons and "neither a, b nor the tensor triton_merge returns" in reasons[0], reasons
