"""Chapter 00: Triton from first principles.

Specs: the four exercises in plain PyTorch, in float64 where rounding matters (the sum of two
vectors, a row softmax, a matrix product, a row prefix sum). Fast: one Triton kernel per exercise,
written the way the chapter teaches (one program per block, per row or per output tile; masked
tails; a loop over K; a scan per chunk with a carried total), plus the small demonstration kernels
the page runs without printing their source. The checks judge the runs recorded by
autograder/cases/triton.py.
"""
import numpy as np
import torch

from autograder.device import DEVICE  # noqa: F401  (sets TRITON_INTERPRET before triton loads)
import triton  # noqa: E402  (the real package: absolute imports never see this module's name)
import triton.language as tl  # noqa: E402

from autograder import rules
from autograder.cases.triton import (CUMSUM_MAX_C, MAX_CHUNK, MAX_TILE, MIN_CHUNK, MIN_TILE, SOFTMAX_MAX_C, TASKS,
                                     cumsum_tolerance)
from autograder.exercise import Case, require
from autograder.tolerance import compare

# ---------------------------------------------------------------- specs (the ground truth)


def add_spec(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x + y elementwise in their dtype (a float16 sum is rounded once, as a kernel's is)."""
    return (x.double() + y.double()).to(x.dtype) if x.is_floating_point() else x + y


def softmax_spec(x: torch.Tensor) -> torch.Tensor:
    """Row softmax in float64, rounded to x's dtype."""
    return torch.softmax(x.double(), dim=-1).to(x.dtype)


def matmul_spec(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a b in float64, rounded to a's dtype."""
    return (a.double() @ b.double()).to(a.dtype)


def cumsum_spec(x: torch.Tensor) -> torch.Tensor:
    """Inclusive prefix sum of each row, in float64."""
    return torch.cumsum(x.double(), dim=-1)


# ---------------------------------------------------------------- fast: the four kernels


@triton.jit
def _add(X, Y, OUT, n, stride_x, stride_y, BLOCK: tl.constexpr):
    """OUT[i] = X[i * stride_x] + Y[i * stride_y] for the BLOCK indices of this program."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)  # (BLOCK,) element indices
    inside = i < n  # the last block's tail is masked off
    a = tl.load(X + i * stride_x, mask=inside)
    b = tl.load(Y + i * stride_y, mask=inside)
    tl.store(OUT + i, a + b, mask=inside)


def add_triton(x: torch.Tensor, y: torch.Tensor, block: int = 1024) -> torch.Tensor:
    """x + y (1-D, any strides) with one launch of cdiv(n, block) programs; contiguous output."""
    n = x.shape[0]
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    if n:
        _add[(triton.cdiv(n, block),)](x, y, out, n, x.stride(0), y.stride(0), BLOCK=block)
    return out


@triton.jit
def _softmax(X, OUT, n_cols, stride_row, BLOCK: tl.constexpr):
    """One program per row: the whole row in registers, shifted by its max, in float32."""
    r = tl.program_id(0)
    c = tl.arange(0, BLOCK)  # (BLOCK,) column indices, BLOCK >= n_cols
    v = tl.load(X + r * stride_row + c, mask=c < n_cols, other=-float("inf")).to(tl.float32)
    e = tl.exp(v - tl.max(v, axis=0))  # exp(-inf) = 0: the padding adds nothing
    tl.store(OUT + r * n_cols + c, (e / tl.sum(e, axis=0)).to(OUT.dtype.element_ty), mask=c < n_cols)


def softmax_triton(x: torch.Tensor) -> torch.Tensor:
    rows, cols = x.shape
    out = torch.empty(rows, cols, dtype=x.dtype, device=x.device)
    if rows * cols:
        _softmax[(rows,)](x, out, cols, x.stride(0), BLOCK=triton.next_power_of_2(cols))
    return out


@triton.jit
def _matmul(A, B, C, M, N, K, sam, sak, sbk, sbn, scm, scn,
            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """One program per (BLOCK_M, BLOCK_N) tile of C; a loop over K in steps of BLOCK_K."""
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)  # (BM,)
    rn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)  # (BN,)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)  # (BK,)
        ta = tl.load(A + rm[:, None] * sam + rk[None, :] * sak, mask=(rm[:, None] < M) & (rk[None, :] < K), other=0.0)
        tb = tl.load(B + rk[:, None] * sbk + rn[None, :] * sbn, mask=(rk[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc = tl.dot(ta, tb, acc, input_precision="ieee")
    tl.store(C + rm[:, None] * scm + rn[None, :] * scn, acc.to(C.dtype.element_ty),
             mask=(rm[:, None] < M) & (rn[None, :] < N))


def matmul_triton(a: torch.Tensor, b: torch.Tensor, bm: int = 64, bn: int = 64, bk: int = 32,
                  num_warps: int = 4, num_stages: int = 3) -> torch.Tensor:
    """a b with one program per output tile; float32 accumulation; out in a's dtype."""
    m, k = a.shape
    n = b.shape[1]
    c = torch.empty(m, n, dtype=a.dtype, device=a.device)
    grid = (triton.cdiv(m, bm), triton.cdiv(n, bn))
    _matmul[grid](a, b, c, m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0), c.stride(1),
                  BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, num_warps=num_warps, num_stages=num_stages)
    return c


@triton.jit
def _cumsum(X, OUT, n_cols, stride_row, CHUNK: tl.constexpr):
    """One program per row; each chunk scanned in parallel, the row's running total carried."""
    r = tl.program_id(0)
    j = tl.arange(0, CHUNK)
    total = tl.zeros((), dtype=tl.float32)  # the sum of every chunk before this one
    for c0 in range(0, n_cols, CHUNK):
        ok = c0 + j < n_cols
        part = tl.load(X + r * stride_row + c0 + j, mask=ok, other=0.0)
        tl.store(OUT + r * n_cols + c0 + j, tl.cumsum(part, axis=0) + total, mask=ok)
        total += tl.sum(part, axis=0)


def cumsum_triton(x: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    rows, cols = x.shape
    out = torch.empty(rows, cols, dtype=torch.float32, device=x.device)
    if rows * cols:
        _cumsum[(rows,)](x, out, cols, x.stride(0), CHUNK=chunk)
    return out


# ---------------------------------------------------------------- kernels the page runs (source not shown)


@triton.jit
def _tile_dot(A, B, C, T: tl.constexpr, PRECISION: tl.constexpr):
    """One program: C = A B for contiguous (T, T) tiles, stored as float32."""
    i = tl.arange(0, T)
    ta = tl.load(A + i[:, None] * T + i[None, :])
    tb = tl.load(B + i[:, None] * T + i[None, :])
    tl.store(C + i[:, None] * T + i[None, :], tl.dot(ta, tb, input_precision=PRECISION).to(tl.float32))


def tile_dot(a: torch.Tensor, b: torch.Tensor, precision: str = "ieee") -> torch.Tensor:
    """One tl.dot of two square tiles of a's dtype (float32 result): the page's dtype probe."""
    t = a.shape[0]
    c = torch.empty(t, t, dtype=torch.float32, device=a.device)
    _tile_dot[(1,)](a.contiguous(), b.contiguous(), c, T=t, PRECISION=precision)
    return c


@triton.jit
def _unmasked_copy(SRC, DST, BLOCK: tl.constexpr):
    """Copies BLOCK elements with no mask at all: past the end of SRC it reads whatever lies there."""
    j = tl.arange(0, BLOCK)
    tl.store(DST + j, tl.load(SRC + j))


def unmasked_copy(src: torch.Tensor, block: int) -> torch.Tensor:
    """What an unmasked load of `block` lanes returns for a shorter `src` (DST has `block` lanes)."""
    dst = torch.full((block,), -1.0, dtype=src.dtype, device=src.device)
    _unmasked_copy[(1,)](src, dst, BLOCK=block)
    return dst


# ---------------------------------------------------------------- checks (the grader's process)

SEE = {"add": "section 3, Masks and the tail", "softmax_rows": "section 5, Reductions: a row in registers",
       "matmul": "section 7, Loops with runtime bounds", "cumsum_rows": "section 8, Scans and a carried total"}
DOT = "section 6, tl.dot: sizes and precision"
GRID = "section 1, Programs and a grid"



def _check_result(got, want, what: str) -> None:
    if not bool(got["inputs_unchanged"]):
        raise AssertionError("modifies its inputs: the kernel stores into OUT only")
    if str(got["out_dtype"]) != str(want["out_dtype"]):
        raise AssertionError(f"{what} has dtype {got['out_dtype']}, expected {want['out_dtype']}")
    if not bool(got["out_contiguous"]):
        raise AssertionError(f"{what} is not contiguous: allocate it with torch.empty of its shape (the kernel "
                             "writes row after row)")


def _check_grid(got, want_grid, rule: str, see: str) -> None:
    grid = [int(x) for x in np.asarray(got["grids"])[0]]
    if grid != list(want_grid):
        raise AssertionError(f"launched on a grid of {tuple(grid)}: {rule} (see {see})")


def _host_rule(got, see: str) -> None:
    """Outside the launch the host allocates, views and reads sizes: nothing that computes or copies."""
    ops = [str(o) for o in np.atleast_1d(got["host_ops"])]
    if ops:
        copies = sorted(set(ops) & {"clone", "copy_", "_to_copy", "contiguous"})
        why = (" (a copy such as .contiguous() or .to(dtype) included: pass the strides to the kernel and store in "
               "OUT.dtype.element_ty instead, see section 2 and section 9)" if copies else "")
        raise AssertionError(f"ran torch ops on the host outside your kernel ({', '.join(ops[:6])}): the wrapper only "
                             f"allocates the output and launches, and the kernel does the work{why} (see {see})")


def _tile_sizes(got, names, see: str) -> dict:
    consts = rules.constexprs(got, 0)
    sizes = {}
    for name in names:
        value = consts.get(name, "")
        if not value.isdigit():
            raise AssertionError(f"launched without the constexpr {name}: keep the kernel's signature")
        sizes[name] = int(value)
    return sizes


# 1. add


def _ref_add(case: Case):
    x, y = case.args[:2]
    out = add_spec(torch.from_numpy(x), torch.from_numpy(y))
    return {"out": out.numpy(), "out_dtype": np.array(str(x.dtype))}


def _check_add(case: Case, got, want):
    require(got, want)
    _check_result(got, want, "the sum")
    g = np.asarray(got["out"])
    if g.shape == want["out"].shape and g.dtype.kind == "f" and not np.isfinite(g).all():
        raise AssertionError("the sum holds NaN: either the kernel read the gaps of a strided view (element i of x "
                             "is at X + i * stride_x, see section 2) or it never wrote some elements of OUT")
    compare(g, want["out"], "x + y")
    n = want["out"].shape[0]
    see = SEE["add"]
    if n == 0:
        _host_rule(got, see)
        rules.kernel_rules(got, kernels={"add_kernel"}, launches=(0, 1), see=see)
        return
    _host_rule(got, see)
    rules.kernel_rules(got, kernels={"add_kernel"}, launches=1, see=see)
    block = _tile_sizes(got, ["BLOCK"], see)["BLOCK"]
    _check_grid(got, (-(-n // block), 1, 1), f"one program per block of BLOCK = {block} elements, a grid of "
                                              "(cdiv(n, BLOCK),)", GRID)


# 2. softmax_rows


def _ref_softmax(case: Case):
    (x,) = case.args[:1]
    return {"out": softmax_spec(torch.from_numpy(x)).numpy(), "out_dtype": np.array(str(x.dtype))}


def _check_softmax(case: Case, got, want):
    require(got, want)
    _check_result(got, want, "the softmax")
    g = np.asarray(got["out"])
    if g.shape == want["out"].shape and not np.isfinite(g).all():
        raise AssertionError("the softmax holds NaN or inf: subtract each row's max before exp (exp(1e4) "
                             "overflows float32), load the padding as -inf (exp(-inf) = 0), and write every "
                             f"element (see {SEE['softmax_rows']})")
    compare(g, want["out"], "softmax")
    rows, cols = want["out"].shape
    see = SEE["softmax_rows"]
    _host_rule(got, see)
    rules.kernel_rules(got, kernels={"softmax_kernel"}, launches=1, see=see)
    block = _tile_sizes(got, ["BLOCK"], see)["BLOCK"]
    if block != triton.next_power_of_2(cols):
        raise AssertionError(f"launched softmax_kernel with BLOCK = {block} for rows of {cols}: one block holds the "
                             f"whole row, BLOCK = triton.next_power_of_2(n_cols) (see {see})")
    _check_grid(got, (rows, 1, 1), f"one program per row, a grid of (R,) for R = {rows}", GRID)


# 3. matmul


def _ref_matmul(case: Case):
    a, b = case.args[:2]
    return {"out": matmul_spec(torch.from_numpy(a), torch.from_numpy(b)).numpy(), "out_dtype": np.array(str(a.dtype))}


def _check_matmul(case: Case, got, want):
    require(got, want)
    _check_result(got, want, "the product")
    compare(got["out"], want["out"], "a @ b")
    m, n = want["out"].shape
    k = case.args[0].shape[1]
    see = SEE["matmul"]
    _host_rule(got, see)
    rules.kernel_rules(got, kernels={"matmul_kernel"}, launches=1, precision="ieee", see=DOT)
    t = _tile_sizes(got, ["BLOCK_M", "BLOCK_N", "BLOCK_K"], see)
    for name, value in t.items():
        if not MIN_TILE <= value <= MAX_TILE:
            raise AssertionError(f"launched matmul_kernel with {name} = {value}: tiles from {MIN_TILE} (tl.dot's "
                                 f"smallest) to {MAX_TILE} (a GPU program holds its tile in registers), masked down to "
                                 f"any size (see {DOT})")
    if k > 32 and t["BLOCK_K"] >= k:
        raise AssertionError(f"launched matmul_kernel with BLOCK_K = {t['BLOCK_K']} for K = {k}: one tl.dot over the "
                             "whole of K; loop over K in steps of BLOCK_K < K, accumulating into one float32 tile "
                             f"(see {see})")
    _check_grid(got, (-(-m // t["BLOCK_M"]), -(-n // t["BLOCK_N"]), 1),
                "one program per output tile, a grid of (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N))", GRID)
    steps = -(-k // t["BLOCK_K"])
    loads = float(got["loads_per_program"])
    if loads >= 0 and not len(np.atleast_1d(got["dot_precisions"])):  # recorded under the interpreter
        raise AssertionError("matmul_kernel ran no tl.dot: multiply the tiles with tl.dot(a_tile, b_tile, acc), "
                             f"the tensor cores' instruction, not a broadcast product and a sum (see {DOT})")
    if loads >= 0 and not 2 * steps <= loads <= 2 * steps + 2:
        raise AssertionError(f"a program of matmul_kernel ran {loads:.0f} tl.load calls for {steps} step(s) of "
                             f"BLOCK_K over K = {k}: load one tile of a and one of b per step of the K loop, no more, "
                             f"no fewer (see {see})")


# 4. cumsum_rows


def _ref_cumsum(case: Case):
    (x,) = case.args[:1]
    return {"out": cumsum_spec(torch.from_numpy(x)).numpy(), "out_dtype": np.array("float32")}


def _check_cumsum(case: Case, got, want):
    see = SEE["cumsum_rows"]
    if bool(got.get("loop_budget_exceeded", False)):
        raise AssertionError(f"a program of cumsum_kernel ran more than {int(got['loop_budget'])} loop iterations for "
                             f"a row of {case.args[0].shape[1]} (stopped there): an element-by-element loop; scan "
                             f"each chunk with tl.cumsum or tl.associative_scan (see {see})")
    require(got, want)
    _check_result(got, want, "the prefix sum")
    g = np.asarray(got["out"], np.float64)
    w = want["out"]
    if g.shape != w.shape:
        raise AssertionError(f"the prefix sum has shape {g.shape}, expected {w.shape}")
    tol = cumsum_tolerance(case.args[0])
    bad = ~(np.abs(g - w) <= tol)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        hint = (" the first element of a row is wrong: the scan is inclusive (out[0] = x[0])" if c == 0 else
                f" the first wrong column is {c}, a multiple of CHUNK: carry the running total from chunk to "
                "chunk" if c % max(1, _chunk_of(got)) == 0 else "")
        raise AssertionError(f"prefix sum: {int(bad.sum())} of {bad.size} elements wrong, first at row {r}, column "
                             f"{c} (tolerance grows with the sum of |x| before it).{hint} (see {see})")
    rows, cols = w.shape
    _host_rule(got, see)
    rules.kernel_rules(got, kernels={"cumsum_kernel"}, launches=1, block_limits={"CHUNK": MAX_CHUNK}, see=see)
    chunk = _tile_sizes(got, ["CHUNK"], see)["CHUNK"]
    if chunk < MIN_CHUNK:
        raise AssertionError(f"launched cumsum_kernel with CHUNK = {chunk}: chunks of {MIN_CHUNK} to {MAX_CHUNK} "
                             f"lanes, each scanned at once, not a few elements at a time (see {see})")
    _check_grid(got, (rows, 1, 1), f"one program per row, a grid of (R,) for R = {rows}", GRID)
    _check_chunk_work(got, -(-cols // chunk), see)


def _chunk_of(got) -> int:
    value = rules.constexprs(got, 0).get("CHUNK", "") if int(got.get("launches", 0)) else ""
    return int(value) if value.isdigit() else 0


def _check_chunk_work(got, chunks: int, see: str) -> None:
    """One loop iteration, one scan, one load and one store per chunk, in every program."""
    iterations, scans = int(got["loop_iterations"]), int(got["scans_per_program"])
    if iterations > chunks + 2:
        raise AssertionError(f"a program of cumsum_kernel ran {iterations} loop iterations for {chunks} chunk(s): one "
                             f"iteration per chunk, and inside it one scan, not a loop over elements (see {see})")
    if 0 <= scans < chunks:
        raise AssertionError(f"a program of cumsum_kernel ran {scans} scan(s) for {chunks} chunk(s): scan every chunk "
                             f"with tl.cumsum or tl.associative_scan (see {see})")
    for what in ("loads", "stores"):
        count = float(got[f"{what}_per_program"])
        if count > chunks + 2:
            raise AssertionError(f"a program of cumsum_kernel ran {count:.0f} tl.{what[:-1]} calls for {chunks} "
                                 f"chunk(s): one block per chunk, not an element at a time (see {see})")


EXERCISES = {
    "add": TASKS["add"].graded(_ref_add, _check_add),
    "softmax_rows": TASKS["softmax_rows"].graded(_ref_softmax, _check_softmax),
    "matmul": TASKS["matmul"].graded(_ref_matmul, _check_matmul),
    "cumsum_rows": TASKS["cumsum_rows"].graded(_ref_cumsum, _check_cumsum),
}

REFERENCES = {"add": add_triton, "softmax_rows": softmax_triton, "matmul": matmul_triton, "cumsum_rows": cumsum_triton}


# ---------------------------------------------------------------- benchmark (make bench)


def bench(timer, cuda: bool) -> dict:
    """On a GPU: matmul TFLOP/s (the reference kernel, float16, against torch.matmul) and softmax
    GB/s (the reference kernel against torch.softmax) as sizes grow; tiny sizes on the CPU."""
    dtype = torch.float16 if cuda else torch.float32
    sizes = [512, 1024, 2048, 4096, 8192] if cuda else [32, 64]
    rows = {"matmul_sizes": sizes, "matmul_dtype": str(dtype).replace("torch.", ""),
            "triton_matmul_tflops": [], "torch_matmul_tflops": [],
            "softmax_cols": [256, 1024, 4096, 8192] if cuda else [64, 128], "softmax_rows": 4096 if cuda else 4,
            "triton_softmax_gbs": [], "torch_softmax_gbs": []}
    for s in sizes:
        a, b = (torch.randn(s, s, device=DEVICE, dtype=dtype) for _ in range(2))
        blocks = dict(bm=128, bn=128, bk=32, num_warps=8, num_stages=3) if cuda else dict(bm=32, bn=32, bk=16)
        flops = 2 * s ** 3
        rows["triton_matmul_tflops"].append(flops / timer(lambda: matmul_triton(a, b, **blocks)) / 1e12)
        rows["torch_matmul_tflops"].append(flops / timer(lambda: torch.matmul(a, b)) / 1e12)
        del a, b
    for cols in rows["softmax_cols"]:
        x = torch.randn(rows["softmax_rows"], cols, device=DEVICE, dtype=dtype)
        moved = 2 * x.numel() * x.element_size()  # read once, written once
        rows["triton_softmax_gbs"].append(moved / timer(lambda: softmax_triton(x)) / 1e9)
        rows["torch_softmax_gbs"].append(moved / timer(lambda: torch.softmax(x, dim=-1)) / 1e9)
        del x
    return rows


# ---------------------------------------------------------------- gpu-check


def gpu_checks(small: bool) -> dict:
    """The four reference kernels at GPU sizes (small ones in the interpreter) against their specs."""
    rng = np.random.default_rng(0)

    def check(name, fn, spec, args, atol, rtol):
        def run():
            got = fn(*(torch.from_numpy(a).to(DEVICE) for a in args)).cpu().double()
            want = spec(*(torch.from_numpy(a) for a in args)).double()
            err = float((got - want).abs().max()) if want.numel() else 0.0
            assert torch.allclose(got, want, atol=atol, rtol=rtol), f"{name} off by {err:.3g}"
        return run

    n = 5000 if small else 50_000_003
    m, k, nn = (70, 50, 90) if small else (4099, 2053, 3001)
    r, c = (3, 1000) if small else (4096, 8192)
    rc = (2, 3000) if small else (1024, 100_000)
    f16 = np.float16
    return {
        f"add n={n}": check("add", add_triton, add_spec, [rng.standard_normal(n, dtype=np.float32)] * 2, 1e-6, 1e-6),
        f"softmax {r}x{c} float16 (logits 1e4)": check(
            "softmax", softmax_triton, softmax_spec, [(rng.standard_normal((r, c)) * 1e4).astype(f16)], 1e-3, 2e-3),
        f"matmul {m}x{k}x{nn} float32": check(
            "matmul", matmul_triton, matmul_spec,
            [rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, nn), dtype=np.float32)],
            1e-3, 1e-4),
        f"matmul {m}x{k}x{nn} float16": check(
            "matmul", matmul_triton, matmul_spec,
            [rng.standard_normal((m, k)).astype(f16), rng.standard_normal((k, nn)).astype(f16)], 5e-2, 5e-3),
        f"cumsum {rc[0]}x{rc[1]}": check("cumsum", cumsum_triton, cumsum_spec,
                                          [rng.standard_normal(rc, dtype=np.float32)], 2e-2, 1e-5),
    }
