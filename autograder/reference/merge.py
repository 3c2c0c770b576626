"""Chapter 01: merging sorted arrays.

Spec: a stable merge (equal keys from `a` before `b`) written as the stable sort of the
concatenation, obviously right and never shown to learners as a method. Fast: a two-level
merge-path kernel in Triton (co-rank per program, then per lane inside the program's tile).
"""
import numpy as np
import torch

from autograder.device import DEVICE  # noqa: F401  (sets TRITON_INTERPRET before triton loads)
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from autograder import rules
from autograder.cases.merge import MEMORY_LIMIT, TASKS, _diags, line_budget, load_bound, read_bound
from autograder.exercise import Case, check_outputs, require
from autograder.watch import ReadCounter

# ---------------------------------------------------------------- spec


def stable_merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The stable merge of sorted a and b: ties keep every a before every b."""
    both = np.concatenate([a, b])
    return both[np.argsort(both, kind="stable")]


def _values(x) -> np.ndarray:
    """x as an array; a ReadCounter's items are taken without counting them (the spec is not graded)."""
    return np.asarray(x._items if isinstance(x, ReadCounter) else x)


def merge_back(nums1, m, nums2, n, on_step=None):
    """The in-place merge from the back (the page's Algorithm 1); on_step(nums1, i, j, k) sees the
    state at the top of every iteration (the page draws it)."""
    i, j, k = m - 1, n - 1, m + n - 1
    while j >= 0:
        if on_step is not None:
            on_step(nums1, i, j, k)
        if i >= 0 and nums1[i] > nums2[j]:
            nums1[k] = nums1[i]
            i -= 1
        else:
            nums1[k] = nums2[j]
            j -= 1
        k -= 1


def co_rank_search(a, b, d, trace=None):
    """The co-rank search on one diagonal (the page's Algorithm 2); `trace`, a list, receives
    (lo, hi, mid, P(mid)) for every probe."""
    m, n = len(a), len(b)
    lo, hi = max(0, d - n), min(d, m)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        ok = a[mid - 1] <= b[d - mid]
        if trace is not None:
            trace.append((lo, hi, mid, bool(ok)))
        lo, hi = (mid, hi) if ok else (lo, mid - 1)
    return lo


def co_rank(a: np.ndarray, b: np.ndarray, diag: int) -> int:
    """i such that the first `diag` outputs of the stable merge are a[:i] and b[:diag - i]."""
    if not 0 <= diag <= len(a) + len(b):
        raise ValueError(f"diag {diag} outside [0, {len(a) + len(b)}]")
    both = np.concatenate([_values(a), _values(b)])
    return int(np.sum(np.argsort(both, kind="stable")[:diag] < len(a)))


# ---------------------------------------------------------------- fast: Triton merge path


@triton.jit
def _co_rank(a_ptr, b_ptr, d, lo, hi, n, ITERS: tl.constexpr):
    """Largest i in [lo, hi] with a[i-1] <= b[d-i]: the co-rank of diagonal d (scalar or block)."""
    for _ in range(ITERS):
        active = lo < hi
        mid = (lo + hi + 1) // 2  # >= 1 whenever active, and d - mid < n
        a_prev = tl.load(a_ptr + mid - 1, mask=active, other=0)
        b_here = tl.load(b_ptr + d - mid, mask=active & (d - mid < n), other=0)
        too_far = active & (d - mid < n) & (a_prev > b_here)  # a[mid-1] belongs after b[d-mid]
        hi = tl.where(too_far, mid - 1, hi)
        lo = tl.where(active & ~too_far, mid, lo)
    return lo


@triton.jit
def merge_kernel(
    a_ptr,  # *T, sorted, m elements
    b_ptr,  # *T, sorted, n elements
    out_ptr,  # *T, m + n elements, written
    m,  # int: len(a)
    n,  # int: len(b)
    BLOCK: tl.constexpr,  # outputs per program (a power of two)
    ITERS_GLOBAL: tl.constexpr,  # binary-search steps over [0, m]: bit_length(m + n) + 1
    ITERS_LOCAL: tl.constexpr,  # binary-search steps inside one tile: log2(BLOCK) + 1
):
    pid = tl.program_id(0)
    d0 = pid * BLOCK  # first output of this program
    d1 = tl.minimum(d0 + BLOCK, m + n)  # one past its last
    # the program's slice of a and b, from the co-ranks of its two boundary diagonals
    i0 = _co_rank(a_ptr, b_ptr, d0, tl.maximum(d0 - n, 0), tl.minimum(d0, m), n, ITERS_GLOBAL)
    i1 = _co_rank(a_ptr, b_ptr, d1, tl.maximum(d1 - n, 0), tl.minimum(d1, m), n, ITERS_GLOBAL)
    j0 = d0 - i0
    j1 = d1 - i1
    # each lane: co-rank of its own diagonal, searched only inside [i0, i1]
    d = d0 + tl.arange(0, BLOCK)  # (BLOCK,)
    valid = d < d1
    lo = tl.where(valid, tl.maximum(i0, d - j1), i0)
    hi = tl.where(valid, tl.minimum(i1, d - j0), i0)
    i = _co_rank(a_ptr, b_ptr, d, lo, hi, n, ITERS_LOCAL)
    j = d - i
    a_i = tl.load(a_ptr + i, mask=valid & (i < i1), other=0)
    b_j = tl.load(b_ptr + j, mask=valid & (j < j1), other=0)
    take_a = (i < i1) & ((j >= j1) | (a_i <= b_j))  # ties from a: stable
    tl.store(out_ptr + d, tl.where(take_a, a_i, b_j), mask=valid)


def merge_triton(a: torch.Tensor, b: torch.Tensor, block: int = 1024) -> torch.Tensor:
    """Stable merge of two sorted 1-D tensors of one dtype with the merge-path kernel (no NaNs:
    the search's `>` and the output's `<=` are complements only for ordered values)."""
    assert a.dim() == b.dim() == 1 and a.dtype == b.dtype, "two 1-D tensors of one dtype"
    assert block & (block - 1) == 0, "block must be a power of two (tl.arange)"
    a, b = a.contiguous(), b.contiguous()  # the kernel walks raw pointers with stride 1
    m, n = a.numel(), b.numel()
    out = torch.empty(m + n, dtype=a.dtype, device=a.device)
    if m + n == 0:
        return out
    grid = (triton.cdiv(m + n, block),)
    merge_kernel[grid](
        a, b, out, m, n, BLOCK=block,
        ITERS_GLOBAL=(m + n).bit_length() + 1, ITERS_LOCAL=block.bit_length(),
    )
    return out


def merge_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The baseline a merge must beat: sort the concatenation (stable)."""
    return torch.sort(torch.cat([a, b]), stable=True).values


# ---------------------------------------------------------------- references and checks (the grader's process)


def _ref_merge(case: Case):
    return {"nums1": stable_merge(*case.args)}


def _check_merge(case: Case, got, want):
    if "refused" in got:
        raise AssertionError(
            f"merge uses {got['refused']}, which this exercise refuses: one such line moves or copies O(m + n) "
            "elements (a slice is a copy; a slice assignment or `del` shifts the list), so an insertion merge "
            "built on it is O(m n) work; merge from the back with your own indices, one value per step (see section 2)"
        )
    require(got, want)
    total = want["nums1"].size
    budget = line_budget(total)
    if int(got.get("lines", budget + 1)) > budget:
        raise AssertionError(
            f"ran more than {budget} Python lines on m + n = {total} values (the budget is 12 (m + n) + 50), so its "
            "work is not linear: an insertion merge that shifts values one slot at a time is O(m n), a gap (shell) "
            "sort O((m + n) log(m + n)); the merge from the back places one value per step (see section 2)"
        )
    check_outputs(case, got, want)
    if "extra memory" in case.kind and int(got.get("peak_bytes", MEMORY_LIMIT + 1)) > MEMORY_LIMIT:
        raise AssertionError(
            f"allocates more than {MEMORY_LIMIT // 1024} KiB while merging 10^5 values, so its extra memory "
            "grows with m + n; merge in place from the back of nums1 instead of building a new list"
        )


def _ref_partition(case: Case):
    a, b = case.args
    if "outside" in case.kind:
        return {"raised": np.array(["ValueError"] * 2)}
    return {"i": np.array([co_rank(a, b, d) for d in _diags(case)], dtype=np.int64)}


def _check_partition(case: Case, got, want):
    check_outputs(case, got, want)
    if "reads" not in got:
        return
    m, n = (len(x) for x in case.args)
    bound, reads = read_bound(m, n), np.asarray(got["reads"])
    worst = int(np.argmax(reads)) if reads.size else 0
    if reads.size and int(reads[worst]) > bound:
        diag = _diags(case)[worst]
        raise AssertionError(
            f"read {int(reads[worst])} elements of a and b in one call (m = {m}, n = {n}, diag = {diag}); a binary "
            f"search over the diagonal reads at most {bound} = 4 (ceil(log2(min(m, n) + 1)) + 2): probe the middle of "
            "[max(0, diag - n), min(diag, m)] and halve that interval each step, without a walk along the diagonal or "
            "a conversion of a or b to an array (see section 4)"
        )


def _ref_triton(case: Case):
    return {"out": stable_merge(*case.args)}


def _check_tiles(got, total: int) -> None:
    """Program p of the one launch stores exactly the outputs p * BLOCK to min((p + 1) * BLOCK, m + n)."""
    block = rules.constexprs(got, 0).get("BLOCK", "")
    if not block.isdigit() or int(block) < 1:
        raise AssertionError("launched merge_kernel without a BLOCK constexpr: pass BLOCK=... (outputs per program, "
                             "a power of two), as the kernel's signature says (see section 7, step 1)")
    block = int(block)
    programs = int(np.asarray(got["grids"])[0][0])
    if programs != -(-total // block):
        raise AssertionError(f"launched {programs} program(s) with BLOCK = {block} for m + n = {total} outputs: one "
                             "program per tile of BLOCK outputs, triton.cdiv(m + n, BLOCK) of them (see section 7, step 1)")
    if not bool(got.get("tiles_measured", False)):
        return  # on a GPU no store is recorded
    targets = [str(t) for t in np.atleast_1d(got["store_targets"])]
    if len(targets) != 1:
        raise AssertionError(f"merge_kernel stores to {', '.join(targets) or 'nothing'}: it writes the output tensor, "
                             "and only that (see section 7, step 4)")
    for p, (lo, hi, count) in enumerate(np.asarray(got["tiles"]).tolist()):
        d0, d1 = p * block, min((p + 1) * block, total)
        if (lo, hi, count) != (d0, d1, d1 - d0):
            raise AssertionError(
                f"program {p} of merge_kernel stored {count} output(s) spread over [{lo}, {hi}) instead of exactly its tile "
                f"[{d0}, {d1}): in merge path each program owns a contiguous range of diagonals, finds the co-ranks of its "
                "two corners and writes every output of that tile, one per lane, instead of sending each input "
                "element to its rank (see section 7, steps 1 to 4)")
    loads = float(got["loads_per_program"])
    bound = load_bound(total, block)
    if loads > bound:
        raise AssertionError(
            f"merge_kernel ran {loads:.0f} tl.load calls per program for m + n = {total} and BLOCK = {block}, more than "
            f"{bound} = 8 (bit_length(m + n) + bit_length(BLOCK) + 2): the co-rank searches are binary and run in lock "
            "step over the lanes (a loop of STEPS rounds with tl.where), not a walk over the tile or the inputs "
            "(see section 7, steps 2 and 3)")


def _check_triton(case: Case, got, want):
    check_outputs(case, got, want, exact=True)
    total = want["out"].size
    if not total:
        return
    if int(got.get("launches", 0)) < 1:
        raise AssertionError("launched no Triton kernel; the merge must happen inside your @triton.jit kernel")
    rules.kernel_rules(got, kernels={"merge_kernel"}, launches=1, host=True,
                       block_limits={"BLOCK": 1024}, see="section 7")
    _check_arguments(got)
    _check_tiles(got, total)


def _check_arguments(got) -> None:
    """The kernel's tensors are the two inputs themselves and the output the wrapper returns."""
    names = [str(n) for n in np.atleast_1d(got.get("tensor_args", np.array([], str)))]
    roles = [str(r) for r in np.atleast_1d(got.get("tensor_roles", np.array([], str)))]
    others = [n for n, r in zip(names, roles) if r == "other"]
    if others or "out" not in roles:
        what = (f"takes {', '.join(others)}, which is neither a, b nor the tensor triton_merge returns" if others
                else "does not take the tensor triton_merge returns")
        raise AssertionError(
            f"merge_kernel {what}: the kernel reads the two sorted inputs themselves and writes the output, so "
            "that nothing is computed beforehand on the host (a merged copy, ranks, positions) (see section 7)")


EXERCISES = {
    "merge": TASKS["merge"].graded(_ref_merge, _check_merge),
    "merge_path_partition": TASKS["merge_path_partition"].graded(_ref_partition, _check_partition),
    "triton_merge": TASKS["triton_merge"].graded(_ref_triton, _check_triton),
}


# ---------------------------------------------------------------- benchmark (make bench)


def bench(timer, cuda: bool) -> dict:
    """GB/s (bytes read + written = 2 (m + n) * 4) of the Triton merge, torch's sort of the
    concatenation, and a plain device copy of the same bytes (what the memory system allows)."""
    totals = [2**k for k in range(20, 28)] + [2 * 10**8] if cuda else [2**k for k in range(10, 15)]
    gbps = lambda n, seconds: 2 * n * 4 / seconds / 1e9  # noqa: E731
    rows = {"sizes": [], "dtype": "int32", "triton_merge_gbps": [], "torch_sort_gbps": [], "copy_gbps": []}
    gen = torch.Generator(device="cpu").manual_seed(0)
    for total in totals:
        keys = torch.randint(-(2**30), 2**30, (total,), generator=gen, dtype=torch.int32)
        a, b = (x.sort().values.to(DEVICE) for x in keys.split([total // 2, total - total // 2]))
        both = torch.cat([a, b])
        rows["sizes"].append(total)
        rows["triton_merge_gbps"].append(gbps(total, timer(lambda: merge_triton(a, b))))
        rows["torch_sort_gbps"].append(gbps(total, timer(lambda: merge_torch(a, b))))
        rows["copy_gbps"].append(gbps(total, timer(lambda: both.clone())))
        del keys, a, b, both
    return rows


# ---------------------------------------------------------------- gpu-check


def gpu_checks(small: bool) -> dict:
    """The merge-path kernel at GPU sizes (or small ones in the interpreter) against the spec."""

    def merge_at(total: int, dtype):
        def check():
            gen = torch.Generator().manual_seed(total)
            keys = torch.randint(-1000, 1000, (total,), generator=gen).to(dtype)  # many ties
            a, b = (x.sort().values for x in keys.split([total // 3, total - total // 3]))
            got = merge_triton(a.to(DEVICE), b.to(DEVICE)).cpu().numpy()
            want = stable_merge(a.numpy(), b.numpy())
            assert np.array_equal(got, want), f"merge_triton differs from the stable merge at m + n = {total}"
        return check

    sizes = [3000] if small else [2**20 + 7, 2**24]
    return {f"merge_triton m+n={n} {str(dt).split('.')[-1]}": merge_at(n, dt)
            for n in sizes for dt in (torch.int32, torch.float32)}


def targets(figures: dict) -> list[tuple[str, bool]]:
    """Chapter 01's GPU targets at the largest size: faster than torch.sort of the concatenation,
    and at least 30% of the bandwidth of a plain device copy of the same bytes."""
    merge, sort, copy = (figures[k][-1] for k in ("triton_merge_gbps", "torch_sort_gbps", "copy_gbps"))
    size = figures["sizes"][-1]
    return [(f"merge {merge / sort:.2f}x torch.sort at m+n={size:.3g} (target > 1x)", merge > sort),
            (f"merge at {merge / copy:.0%} of a device copy's GB/s (target >= 30%)", merge >= 0.3 * copy)]
