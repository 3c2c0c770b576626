"""Chapter 01: merging sorted arrays.

Spec: a stable merge (equal keys from `a` before `b`) written as the stable sort of the
concatenation, obviously right and never shown to learners as a method. Fast: a two-level
merge-path kernel in Triton: co-ranks of each program's corners, then the program's tile loaded
once and ranked inside with a BLOCK x BLOCK comparison (`merge_triton`); the page's naive second
level, a binary search per output in global memory, is `merge_triton_lanes`.
"""
import numpy as np
import torch

from autograder.device import DEVICE  # noqa: F401  (sets TRITON_INTERPRET before triton loads)
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from autograder import rules
from autograder.cases.merge import MEMORY_LIMIT, TASKS, BLOCK_RANGE, _diags, element_load_bound, line_budget, load_calls_bound, read_bound
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
def _co_rank(a_ptr, b_ptr, d, lo, hi, ROUNDS: tl.constexpr):
    """Largest i in [lo, hi] with a[i-1] <= b[d-i]: the co-rank of diagonal d (scalar or block).
    ROUNDS >= ceil(log2(hi - lo + 1)) for every lane; a converged lane loads nothing."""
    for _ in range(ROUNDS):
        active = lo < hi
        mid = (lo + hi + 1) // 2  # in [lo + 1, hi], so a[mid-1] and b[d-mid] exist
        a_prev = tl.load(a_ptr + mid - 1, mask=active, other=0)
        b_here = tl.load(b_ptr + d - mid, mask=active, other=0)
        too_far = active & (a_prev > b_here)  # a[mid-1] belongs after b[d-mid]
        hi = tl.where(too_far, mid - 1, hi)
        lo = tl.where(active & ~too_far, mid, lo)
    return lo


@triton.jit
def _corners(a_ptr, b_ptr, m, n, BLOCK: tl.constexpr, R_TILE: tl.constexpr):
    """Program pid's outputs [d0, d1) and the co-ranks i0, i1 of its two corners, searched together."""
    d0 = tl.program_id(0) * BLOCK
    d1 = tl.minimum(d0 + BLOCK, m + n)
    pair = tl.arange(0, 2)  # (2,) corner 0 and corner 1 in lock step
    dd = tl.where(pair == 0, d0, d1)
    i = _co_rank(a_ptr, b_ptr, dd, tl.maximum(dd - n, 0), tl.minimum(dd, m), R_TILE)
    i0 = tl.sum(tl.where(pair == 0, i, 0), axis=0)
    i1 = tl.sum(tl.where(pair == 1, i, 0), axis=0)
    return d0, d1, i0, i1


@triton.jit
def merge_lanes_kernel(
    a_ptr,  # *T, sorted, m elements
    b_ptr,  # *T, sorted, n elements
    out_ptr,  # *T, m + n elements, written
    m,  # int: len(a)
    n,  # int: len(b)
    BLOCK: tl.constexpr,  # outputs per program (a power of two)
    R_TILE: tl.constexpr,  # corner-search rounds: bit_length(min(m, n)) = ceil(log2(min(m, n) + 1))
    R_LANE: tl.constexpr,  # lane-search rounds: log2(BLOCK), since a window has <= BLOCK / 2 + 1 points
):
    """The naive second level (the page's Algorithm 3): every lane binary-searches its own co-rank
    in global memory, 2 dependent loads a round."""
    d0, d1, i0, i1 = _corners(a_ptr, b_ptr, m, n, BLOCK, R_TILE)
    j0 = d0 - i0
    j1 = d1 - i1
    d = d0 + tl.arange(0, BLOCK)  # (BLOCK,)
    valid = d < d1
    lo = tl.where(valid, tl.maximum(i0, d - j1), i0)
    hi = tl.where(valid, tl.minimum(i1, d - j0), i0)
    i = _co_rank(a_ptr, b_ptr, d, lo, hi, R_LANE)
    j = d - i
    a_i = tl.load(a_ptr + i, mask=valid & (i < i1), other=0)
    b_j = tl.load(b_ptr + j, mask=valid & (j < j1), other=0)
    take_a = (i < i1) & ((j >= j1) | (a_i <= b_j))  # ties from a: stable
    tl.store(out_ptr + d, tl.where(take_a, a_i, b_j), mask=valid)


@triton.jit
def merge_kernel(
    a_ptr,  # *T, sorted, m elements
    b_ptr,  # *T, sorted, n elements
    out_ptr,  # *T, m + n elements, written
    m,  # int: len(a)
    n,  # int: len(b)
    BLOCK: tl.constexpr,  # outputs per program (a power of two)
    R_TILE: tl.constexpr,  # corner-search rounds: bit_length(min(m, n)) = ceil(log2(min(m, n) + 1))
):
    """The staged second level (the page's Algorithm 4): the program loads its slices once and
    ranks every element inside the tile with one BLOCK x BLOCK comparison."""
    d0, d1, i0, i1 = _corners(a_ptr, b_ptr, m, n, BLOCK, R_TILE)
    k = tl.arange(0, BLOCK)  # (BLOCK,)
    in_a = k < i1 - i0  # the slice a[i0:i1]
    in_b = k < (d1 - i1) - (d0 - i0)  # the slice b[j0:j1]
    x = tl.load(a_ptr + i0 + k, mask=in_a, other=0)  # (BLOCK,) one load of a's slice
    y = tl.load(b_ptr + (d0 - i0) + k, mask=in_b, other=0)  # (BLOCK,) one load of b's slice
    after = x[:, None] > y[None, :]  # (BLOCK, BLOCK): y[l] precedes x[k]; ties keep a first
    rank_x = tl.sum((after & in_b[None, :]).to(tl.int32), axis=1)  # (BLOCK,) #(y < x[k])
    rank_y = tl.sum((~after & in_a[:, None]).to(tl.int32), axis=0)  # (BLOCK,) #(x <= y[l])
    tl.store(out_ptr + d0 + k + rank_x, x, mask=in_a)
    tl.store(out_ptr + d0 + k + rank_y, y, mask=in_b)


def _launch(kernel, a: torch.Tensor, b: torch.Tensor, block: int, **rounds) -> torch.Tensor:
    assert a.dim() == b.dim() == 1 and a.dtype == b.dtype, "two 1-D tensors of one dtype"
    assert block >= 2 and block & (block - 1) == 0, "block must be a power of two (tl.arange)"
    a, b = a.contiguous(), b.contiguous()  # the kernel walks raw pointers with stride 1
    m, n = a.numel(), b.numel()
    out = torch.empty(m + n, dtype=a.dtype, device=a.device)
    if m + n == 0:
        return out
    kernel[(triton.cdiv(m + n, block),)](a, b, out, m, n, BLOCK=block, R_TILE=min(m, n).bit_length(), **rounds)
    return out


def merge_triton(a: torch.Tensor, b: torch.Tensor, block: int = 256) -> torch.Tensor:
    """Stable merge of two sorted 1-D tensors of one dtype with the staged merge-path kernel (no
    NaNs: `>` and its complement order only ordered values). The comparison holds BLOCK^2 values,
    so a GPU wants BLOCK <= 256."""
    return _launch(merge_kernel, a, b, block)


def merge_triton_lanes(a: torch.Tensor, b: torch.Tensor, block: int = 1024) -> torch.Tensor:
    """The same merge with the naive second level: a binary search per output in global memory."""
    return _launch(merge_lanes_kernel, a, b, block, R_LANE=block.bit_length() - 1)


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
    low, high = BLOCK_RANGE
    if not low <= block <= high:
        raise AssertionError(
            f"launched merge_kernel with BLOCK = {block}: the staged kernel wants {low} <= BLOCK <= {high}. Its "
            f"comparison holds BLOCK x BLOCK values, which a GPU cannot keep in registers above {high}; below {low} the "
            "two corner searches, paid once per program, cost more loads than the tile itself (see section 7, step 5)")
    programs = int(np.asarray(got["grids"])[0][0])
    if programs != -(-total // block):
        raise AssertionError(f"launched {programs} program(s) with BLOCK = {block} for m + n = {total} outputs: one "
                             "program per tile of BLOCK outputs, triton.cdiv(m + n, BLOCK) of them (see section 7, step 1)")
    if not bool(got.get("tiles_measured", False)):
        return  # on a GPU no store or load is recorded
    targets = [str(t) for t in np.atleast_1d(got["store_targets"])]
    if len(targets) != 1:
        raise AssertionError(f"merge_kernel stores to {', '.join(targets) or 'nothing'}: it writes the output tensor, "
                             "and only that (see section 7, step 5)")
    for p, (lo, hi, count) in enumerate(np.asarray(got["tiles"]).tolist()):
        d0, d1 = p * block, min((p + 1) * block, total)
        if (lo, hi, count) != (d0, d1, d1 - d0):
            raise AssertionError(
                f"program {p} of merge_kernel stored {count} output(s) spread over [{lo}, {hi}) instead of exactly its tile "
                f"[{d0}, {d1}): in merge path each program owns a contiguous range of diagonals, finds the co-ranks of its "
                "two corners and writes every output of that tile, instead of sending each input element to its rank "
                "in the whole of the other array (see section 7, steps 1, 2 and 5)")
    lanes = int(got.get("load_lanes", -1))
    allowed = element_load_bound(total, programs)
    if lanes > allowed:
        raise AssertionError(
            f"merge_kernel read {lanes / total:.1f} elements per output (m + n = {total}, BLOCK = {block}), more than "
            f"the {allowed / total:.2f} that loading each tile once allows (one read per element, plus the two corner "
            "searches of each program): a binary search per output in global memory reads two elements every round. "
            "Load the program's slices a[i0:i1] and b[j0:j1] once, masked to their lengths, and rank every element "
            "inside the tile with a BLOCK x BLOCK comparison (see section 7, step 5)")
    calls = float(np.atleast_1d(got["launch_loads"])[0])
    bound = load_calls_bound(total)
    if calls > bound:
        raise AssertionError(
            f"merge_kernel ran {calls:.0f} tl.load calls per program for m + n = {total}, more than {bound} = "
            "4 (bit_length(m + n) + 1) + 8: the corner searches are binary, in lock step (a loop of R_TILE rounds with "
            "tl.where), and the tile is read by one block-wide load of a's slice and one of b's, not by a loop of "
            "loads over its elements (see section 7, steps 2 and 5)")


def _check_triton(case: Case, got, want):
    check_outputs(case, got, want, exact=True)
    total = want["out"].size
    if not total:
        return
    if int(got.get("launches", 0)) < 1:
        raise AssertionError("launched no Triton kernel; the merge must happen inside your @triton.jit kernel")
    rules.kernel_rules(got, kernels={"merge_kernel"}, launches=1, host=True,
                       block_limits={"BLOCK": BLOCK_RANGE[1]}, see="section 7")
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
    """GB/s (bytes read + written = 2 (m + n) * 4) of the staged and the per-lane Triton merge, torch's sort of the
    concatenation, and a plain device copy of the same bytes (what the memory system allows)."""
    totals = [2**k for k in range(20, 28)] + [2 * 10**8] if cuda else [2**k for k in range(10, 15)]
    gbps = lambda n, seconds: 2 * n * 4 / seconds / 1e9  # noqa: E731
    rows = {"sizes": [], "dtype": "int32", "triton_merge_gbps": [], "triton_lanes_gbps": [], "torch_sort_gbps": [],
            "copy_gbps": []}
    gen = torch.Generator(device="cpu").manual_seed(0)
    for total in totals:
        keys = torch.randint(-(2**30), 2**30, (total,), generator=gen, dtype=torch.int32)
        a, b = (x.sort().values.to(DEVICE) for x in keys.split([total // 2, total - total // 2]))
        both = torch.cat([a, b])
        rows["sizes"].append(total)
        rows["triton_merge_gbps"].append(gbps(total, timer(lambda: merge_triton(a, b))))
        rows["triton_lanes_gbps"].append(gbps(total, timer(lambda: merge_triton_lanes(a, b))))
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
