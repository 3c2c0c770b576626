"""Chapter 04's cases: what the learner's softmax, blocked attention and Triton kernels are run on,
and how (the learner's kernel).

Every run watches what the learner's function does while it runs. The PyTorch exercises run under
`Reads`, an `OpRecorder` (the largest tensor an op reads or writes, the bytes of fresh storage,
the most of it alive at once) that also counts how many times torch ops read each element of the
watched tensors (x and the output of the softmax; k and v of blocked attention), so that a second
sweep for the exact maximum is seen; the peak of Python and NumPy allocations (tracemalloc) is
measured where a case's check reads it. The Triton exercises run under `KernelWatch`
(autograder.watch.HostOps: which kernels ran, their grids, constexprs, loads and tl.dot precisions,
any torch op that computes on the host, fresh outputs poisoned with NaN; plus the bytes allocated).
NumPy is refused everywhere: every rule is measured on torch ops. Those measurements are outputs
like any other, so the grader's own re-check enforces them outside this process.
"""
import math

import numpy as np
import torch

from autograder.device import CUDA, DEVICE
from autograder.exercise import Case, NO_NUMPY, Task, dtype_name, to_numpy
from autograder.watch import HostOps, HostPeak, OpRecorder, TritonLaunches, peak_bytes, tensors  # noqa: F401  (peak_bytes: for the book)


_DT = {"float64": np.float64, "float32": np.float32}

# ops that write their `self` without reading it (an op's out= argument is write-only too)
_WRITE_ONLY = {"copy_", "fill_", "zero_", "index_put_", "_index_put_impl_"}
# ops that read no element of their tensor arguments (only shapes, dtypes, devices)
_NO_READ = {"empty_like", "zeros_like", "ones_like", "full_like", "rand_like", "randn_like", "randint_like",
            "new_empty", "new_zeros", "new_ones", "new_full", "new_empty_strided", "empty_strided",
            "sym_size", "sym_stride", "sym_numel", "sym_storage_offset", "is_same_size", "resize_", "set_"}


def _write_only(name, func, args, kwargs) -> set[int]:
    """ids of the tensors an op writes without reading them."""
    ids = set()
    for i, arg in enumerate(func._schema.arguments):
        if arg.alias_info is None or not arg.alias_info.is_write or not (arg.kwarg_only or name in _WRITE_ONLY):
            continue
        value = kwargs.get(arg.name) if arg.kwarg_only or i >= len(args) else args[i]
        ids.update(id(t) for t in tensors(value))
    return ids


class Reads(OpRecorder):
    """OpRecorder, and how many times torch ops read each element of the tensors it watches: those
    given at the start (inputs) and, with `big`, every storage of at least `big` bytes the call makes
    (where its output goes). An op that reads only slices the previous watched op touched reads
    nothing new, as if that block were still in fast memory: `xj.amax(-1)` then `torch.exp(xj - m)`
    read block j once. Views read nothing, and writing into a slice (`out[..., j:j + b] = e`) does
    not read it. Reads are counted per byte of the storage, so a view as another dtype
    (`x.view(torch.uint8)`) is seen too."""

    def __init__(self, *watched, big: int | None = None):
        super().__init__()
        self.big, self.counts, self.recent = big, {}, frozenset()
        for t in watched:
            self._watch(t)

    def _watch(self, t):
        storage = t.untyped_storage()
        self.counts[storage.data_ptr()] = torch.zeros(storage.nbytes(), dtype=torch.int32)  # reads of each byte

    def _key(self, t):
        """(storage, byte offset, shape, byte strides) of t's view, with its bytes as a last dimension."""
        try:
            ptr = t.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError):
            return None
        if ptr not in self.counts:
            return None
        size = t.element_size()
        return ptr, t.storage_offset() * size, (*t.shape, size), (*(st * size for st in t.stride()), 1)

    def _count(self, key):
        ptr, offset, shape, stride = key
        counts = self.counts[ptr]
        shape = [1 if st == 0 else n for n, st in zip(shape, stride)]  # a broadcast reads each element once
        if math.prod(shape) == 0:
            return
        try:
            counts.as_strided(shape, stride, offset).add_(1)
        except RuntimeError:  # a view whose elements overlap (unfold): each as often as it appears
            index = torch.arange(counts.numel()).as_strided(shape, stride, offset).reshape(-1)
            counts.index_add_(0, index, torch.ones(index.numel(), dtype=torch.int32))

    def on_op(self, name, func, args, kwargs, out):
        super().on_op(name, func, args, kwargs, out)
        if func.is_view:
            return
        inputs = list(tensors((args, kwargs)))
        touched, read = set(), set()
        if name not in _NO_READ:
            write_only = _write_only(name, func, args, kwargs)
            for t in inputs:
                key = self._key(t)
                if key is not None:
                    touched.add(key)
                    if id(t) not in write_only:
                        read.add(key)
        for key in read - self.recent:
            self._count(key)
        if self.big is not None:
            ins = {t.untyped_storage().data_ptr() for t in inputs}
            for t in tensors(out):
                if t.untyped_storage().data_ptr() not in ins and t.untyped_storage().nbytes() >= self.big:
                    self._watch(t)  # a fresh big storage: perhaps the output
                    touched.add(self._key(t))
        if touched:
            self.recent = frozenset(touched)

    def reads(self, t) -> np.ndarray | None:
        """Reads of each element of t's view (the most of its bytes), as t's shape (None: not watched)."""
        key = self._key(t)
        if key is None:
            return None
        ptr, offset, shape, stride = key
        return self.counts[ptr].as_strided(shape, stride, offset).amax(dim=-1).numpy().copy()

    def summary(self) -> dict:
        return {**super().summary(), "peak_bytes": np.array(self.peak_bytes)}


class KernelWatch(HostOps):
    """HostOps (launches, host-side torch work, poisoned empties) plus OpRecorder's sizes: the bytes
    of fresh storage the wrapper allocates and the largest tensor a host op touches (each launch's
    loads per program and widest load come with the launch recorder's summary)."""

    def __init__(self):
        super().__init__(poison=True)
        self.sizes = OpRecorder()  # used for its bookkeeping only, never entered

    def on_op(self, name, func, args, kwargs, out):
        super().on_op(name, func, args, kwargs, out)
        self.sizes.on_op(name, func, args, kwargs, out)

    def summary(self) -> dict:
        sizes = {k: v for k, v in self.sizes.summary().items() if k != "launches"}
        return {**sizes, **super().summary()}


class KeyRows(TritonLaunches):
    """TritonLaunches, plus which key rows of k and v (contiguous (Z, H, N_k, D) tensors) each
    interpreted program of each launch loads: per launch, the most (z, h, key) rows one program
    reads of either tensor, and the most programs that read one row (each key belongs to one split)."""

    def __init__(self, k, v):
        super().__init__()
        self.kv = [(t.data_ptr(), t.data_ptr() + t.numel() * t.element_size(), t.element_size(), t.shape[-1])
                   for t in (k, v)]
        self.rows = []  # per launch: {program: set of (tensor, row)}

    def _touch(self, what, ptrs, mask):
        super()._touch(what, ptrs, mask)
        if what != "loads" or self._current is None:
            return
        from triton.runtime.interpreter import interpreter_builder as builder

        if len(self.rows) < len(self.launches):
            self.rows.append({})
        addr = np.asarray(ptrs.data, dtype=np.uint64)
        on = np.broadcast_to(np.asarray(mask.data, dtype=bool), addr.shape)
        addr = addr[on].astype(np.int64)
        seen = self.rows[-1].setdefault(tuple(builder.grid_idx), set())
        for which, (lo, hi, size, d) in enumerate(self.kv):
            inside = addr[(addr >= lo) & (addr < hi)]
            seen.update((which, int(r)) for r in np.unique((inside - lo) // (size * d)))

    def row_summary(self) -> dict:
        per_program, per_row = [], []
        for launch in self.rows + [{}] * (len(self.launches) - len(self.rows)):
            counts = {}
            for rows in launch.values():
                for r in rows:
                    counts[r] = counts.get(r, 0) + 1
            per_program.append(max((max(sum(w == t for w, _ in rows) for t in (0, 1)) for rows in launch.values()),
                                   default=0))
            per_row.append(max(counts.values(), default=0))
        return {"kv_rows_per_program": np.array(per_program, dtype=np.int64),
                "kv_row_programs": np.array(per_row, dtype=np.int64)}


class DecodeWatch(KernelWatch):
    """KernelWatch with KeyRows as its launch recorder, and the host ops that read q, k or v."""

    def __init__(self, q, k, v):
        super().__init__()
        self.triton = self._triton = KeyRows(k, v)
        self.inputs = {t.untyped_storage().data_ptr() for t in (q, k, v)}
        self.host_reads_inputs = set()

    def on_op(self, name, func, args, kwargs, out):
        super().on_op(name, func, args, kwargs, out)
        if not func.is_view and any(t.untyped_storage().data_ptr() in self.inputs for t in tensors((args, kwargs))):
            self.host_reads_inputs.add(name)

    def summary(self) -> dict:
        return {**super().summary(), **self._triton.row_summary(),
                "host_reads_inputs": np.array(sorted(self.host_reads_inputs), dtype=str)}


def _qkv(rng, z, h, n_q, n_k, d, dtype="float32", scale=1.0):
    q = (rng.standard_normal((z, h, n_q, d)) * scale).astype(_DT.get(dtype, np.float32))
    k = (rng.standard_normal((z, h, n_k, d)) * scale).astype(_DT.get(dtype, np.float32))
    v = rng.standard_normal((z, h, n_k, d)).astype(_DT.get(dtype, np.float32))
    return q, k, v


def _softmax_cases(rng) -> list[Case]:
    def x(rows, cols, dtype=np.float64, scale=3.0):
        return (rng.standard_normal((rows, cols)) * scale).astype(dtype)

    big = x(6, 40)
    big[:, ::3] = 1e4
    big[1, 5] = -1e4
    infs = x(5, 37)
    infs[:, :20] = float("-inf")  # whole first blocks of -inf before the first finite entry
    infs[2, 30:] = float("-inf")
    infs[3, :36] = float("-inf")  # one finite entry, the last
    cols = int(rng.integers(20, 60))
    return [
        Case("the width is a multiple of block (float64)", (x(7, 48), 16)),
        Case("block does not divide the width", (x(9, cols), 7)),
        Case("the dtype is float32", (x(8, 50, np.float32), 8)),
        Case("block >= the width", (x(4, 30), 64)),
        Case("block == 1", (x(3, 12), 1)),
        Case("entries are +-1e4 (safe softmax: subtract the row max)", (big, 6)),
        Case("whole blocks are -inf before a row's first finite entry", (infs, 5)),
        Case("x has three dimensions (softmax over the last one)", (rng.standard_normal((2, 3, 33)), 10)),
        Case("rows = 64, width = 512, block = 32 (no temporary wider than block columns)", (x(64, 512), 32)),
        Case("rows = 8, width = 1024, block = 16 (each column block read twice, a few alive at once)", (x(8, 1024), 16)),
    ]


def _blocked_cases(rng) -> list[Case]:
    z, h = (int(t) for t in rng.integers(1, 3, 2))
    n = int(rng.integers(40, 90))
    return [
        Case("causal is off, N = 64, block_n = 16", (*_qkv(rng, 1, 2, 64, 64, 16, "float64"), 16, False)),
        Case("causal is on, N = 64, block_n = 16", (*_qkv(rng, 1, 2, 64, 64, 16, "float64"), 16, True)),
        Case("N is not a multiple of block_n (causal off)", (*_qkv(rng, z, h, n, n, 8, "float64"), 16, False)),
        Case("N is not a multiple of block_n (causal on)", (*_qkv(rng, z, h, n, n, 8, "float64"), 16, True)),
        Case("N_q != N_k (causal off)", (*_qkv(rng, 2, 1, 37, 90, 16, "float64"), 32, False)),
        Case("block_n >= N", (*_qkv(rng, 1, 1, 20, 20, 8, "float64"), 64, True)),
        Case("block_n == 1", (*_qkv(rng, 1, 1, 9, 9, 4, "float64"), 1, True)),
        Case("the dtype is float32", (*_qkv(rng, 2, 2, 50, 50, 16, "float32"), 16, True)),
        Case("scores exceed 709, where exp overflows in float64 (q and k scaled by 20: subtract the running max)",
             (*_qkv(rng, 1, 2, 48, 48, 16, "float64", 20.0), 16, False)),
        Case("N_q = 16, N_k = 2048, D = 32, block_n = 16 (each key block read once, a few alive at once)",
             (*_qkv(rng, 1, 1, 16, 2048, 32, "float64"), 16, False)),
        Case("N = 256, block_n = 32, causal off (no op may touch N_q x N_k elements)", (*_qkv(rng, 1, 2, 256, 256, 16, "float64"), 32, False)),
        Case("N = 256, block_n = 32, causal on (no op may touch N_q x N_k elements)", (*_qkv(rng, 1, 2, 256, 256, 16, "float64"), 32, True)),
    ]


def _grid_kind(n: int, d: int, causal: bool) -> str:
    tail = " (not a multiple of the block: mask the tail)" if n % 64 else ""
    return f"N = {n}{tail}, D = {d}, causal {'on' if causal else 'off'}"


def _peaked(rng):
    """(q, k, v, causal) whose scores pass 100, where e^s overflows in float32, and stay exact enough to
    grade in float32: k = q with D = 64, so each query's own key scores |q|^2 / 8 ~ 128, at least 20
    above every other key's (so the softmax is nearly one-hot, and float32's rounding of the scores
    barely moves O)."""
    q, _, v = _qkv(rng, 1, 2, 64, 64, 64, scale=4.0)
    return q, q.copy(), v, False


# (N, D) of the forward's and backward's grid of cases, causal and not: one block, a tail at two head dims
# (N = 128 and D = 32 at N = 64 come with the views and the widely spread scores)
GRID = ((64, 16), (200, 16), (200, 32))
LONG_KEYS = "keys in blocks of at most 128, at least 4 of them"  # the cases whose checks count loads


def _fwd_cases(rng) -> list[Case]:
    cases = [Case(_grid_kind(n, d, causal), (*_qkv(rng, 1, 2, n, n, d), causal))
             for n, d in GRID for causal in (False, True)]
    cases += [
        Case("N_q = 80 != N_k = 200, causal off", (*_qkv(rng, 1, 2, 80, 200, 16), False)),
        Case("q, k, v are non-contiguous views of a (Z, N, H, D) tensor", (*_qkv(rng, 1, 2, 128, 128, 16), False)),
        Case("scores spread widely (q and k scaled by 2)", (*_qkv(rng, 1, 2, 64, 64, 32, scale=2.0), True)),
        Case("scores exceed 100, where exp overflows in float32 (k = q, scaled by 4: subtract the running max)",
             _peaked(rng)),
        Case(f"{LONG_KEYS}: N_q = 64, N_k = 512, D = 16, causal off", (*_qkv(rng, 1, 1, 64, 512, 16), False)),
        Case("Z * H = 8, N = 64, D = 16 (the wrapper allocates O and lse, nothing else)", (*_qkv(rng, 2, 4, 64, 64, 16), False)),
    ]
    if CUDA:  # larger problems in 16-bit, only where a GPU grades
        for dtype in ("float16", "bfloat16"):
            for causal in (False, True):
                cases.append(Case(f"the dtype is {dtype}, N = 1024, D = 64, causal {'on' if causal else 'off'}",
                                  (*_qkv(rng, 1, 2, 1024, 1024, 64), causal, dtype)))
        cases.append(Case("N = 4096, D = 64, float16 (timed on the GPU: information only)",
                          (*_qkv(rng, 1, 16, 4096, 4096, 64), False, "float16")))
    return cases


def _forward_outputs(q, k, v, causal):
    """O and lse of the forward pass, which the backward takes as inputs (float64, then float32)."""
    s = q.astype(np.float64) @ np.swapaxes(k, -1, -2).astype(np.float64) / math.sqrt(q.shape[-1])  # (Z, H, N, N)
    if causal:
        s = np.where(np.triu(np.ones(s.shape[-2:], bool), k=1), -np.inf, s)
    m = s.max(axis=-1, keepdims=True)
    p = np.exp(s - m)
    total = p.sum(axis=-1, keepdims=True)
    o = (p / total) @ v.astype(np.float64)  # (Z, H, N, D)
    return o.astype(np.float32), (m + np.log(total))[..., 0].astype(np.float32)


def _bwd_cases(rng) -> list[Case]:
    def args(n, d, causal, scale=1.0):
        q, k, v = _qkv(rng, 1, 2, n, n, d, scale=scale)
        do = rng.standard_normal(q.shape).astype(np.float32)
        return q, k, v, do, causal, *_forward_outputs(q, k, v, causal)

    cases = [Case(_grid_kind(n, d, causal), args(n, d, causal))
             for n, d in GRID for causal in (False, True) if (n, d, causal) != (200, 32, True)]
    q, k, v = _qkv(rng, 1, 1, 512, 512, 16)
    do = rng.standard_normal(q.shape).astype(np.float32)
    cases.append(Case(f"{LONG_KEYS}: N = 512, D = 16, causal off", (q, k, v, do, False, *_forward_outputs(q, k, v, False))))
    return cases


SPLIT_KINDS = "keys in splits"  # every decode case: the run records which keys each program reads


def _decode_cases(rng) -> list[Case]:
    n_k = 5 * (2 * int(rng.integers(30, 42)) + 1) - int(rng.integers(1, 5))  # 5 splits of an odd size, the last shorter
    cases = [
        Case("N_q = 1, N_k = 512, D = 16, 4 splits of 128 keys", (*_qkv(rng, 1, 2, 1, 512, 16), 4)),
        Case(f"N_q = 1, N_k = {n_k} (splits of ceil(N_k / 5) keys, the last one shorter), D = 32, 5 splits",
             (*_qkv(rng, 2, 1, 1, n_k, 32), 5)),
        Case("N_q = 3 queries, N_k = 256, D = 16, 2 splits", (*_qkv(rng, 1, 2, 3, 256, 16), 2)),
        Case("num_splits = 1 (one split holds every key), N_k = 96", (*_qkv(rng, 1, 1, 1, 96, 16), 1)),
    ]
    cases.append(Case("scores pass 100 and each split's maximum differs (merge with e^(m_s - m))", _peaked_splits(rng)))
    if CUDA:
        cases.append(Case("the dtype is float16, N_q = 1, N_k = 8192, D = 128, 16 splits",
                          (*_qkv(rng, 2, 8, 1, 8192, 128), 16, "float16")))
    return cases


def _peaked_splits(rng):
    """(q, k, v, 3): one query, 384 keys in 3 splits of 128, each key a multiple of q so that its score is
    t_j exactly: t_j from 0 to 60, and in each split one key scoring 100, 130 or 160 (in a random order
    of splits). e^s overflows float32 past 88, and the winner leads by 30, so O is nearly one row of V."""
    q, _, v = _qkv(rng, 1, 1, 1, 384, 64)
    t = rng.uniform(0.0, 60.0, 384)
    for split, top in zip(rng.permutation(3), (100.0, 130.0, 160.0)):
        t[128 * split + int(rng.integers(0, 128))] = top
    k = q[0, 0, 0] * (t[:, None] * 8.0 / float(q[0, 0, 0] @ q[0, 0, 0]))  # (384, 64): q . k_j / sqrt(64) = t_j
    return q, k[None, None].astype(np.float32), v, 3


def _decode_parts(case):
    q, k, v, num_splits, *dtype = case.args
    return q, k, v, num_splits, (dtype[0] if dtype else "float32")


def _run_decode(fn, case):
    q, k, v, num_splits, dtype = _decode_parts(case)
    qt, kt, vt = _on_device(q, k, v, dtype=dtype)
    with DecodeWatch(qt, kt, vt) as rec:
        o, lse = _pair(fn(qt, kt, vt, num_splits), ("O", "lse"))
    return {"o": _out(o), "lse": _out(lse), "o_dtype": dtype_name(o), "lse_dtype": dtype_name(lse),
            **rec.summary()}


def _on_device(*arrays, dtype=None):
    out = []
    for a in arrays:
        t = torch.from_numpy(np.ascontiguousarray(a)).to(DEVICE)
        out.append(t.to(getattr(torch, dtype)) if dtype else t)
    return out


def _out(t, dtype=None):
    """A learner's tensor as NumPy; 16-bit floats go through float32 (NumPy has no bfloat16)."""
    if hasattr(t, "dtype") and t.dtype in (torch.float16, torch.bfloat16):
        return to_numpy(t.float())
    return to_numpy(t)


def _pair(result, names):
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        raise TypeError(f"return a tuple ({', '.join(names)}), got {type(result).__name__}")
    return result


NO_TEMPORARY = "no temporary wider than block columns"  # the case kinds whose checks read memory
NO_NXN = "no op may touch N_q x N_k elements"


def _run_softmax(fn, case):
    x, block = case.args
    (xt,) = _on_device(x)
    with HostPeak(active=NO_TEMPORARY in case.kind) as host, Reads(xt, big=max(xt.nbytes // 2, 1)) as rec:
        y = fn(xt, block)
    y_reads = rec.reads(y) if isinstance(y, torch.Tensor) else None
    same = isinstance(y, torch.Tensor) and y.untyped_storage().data_ptr() == xt.untyped_storage().data_ptr()
    return {"y": to_numpy(y), "host_peak_bytes": np.array(host.peak), **rec.summary(),
            "x_reads": rec.reads(xt).reshape(-1, x.shape[-1]).max(axis=0),  # (width,): most reads of a column's elements
            "y_reads": np.array(-1 if y_reads is None or same else int(y_reads.max(initial=0))),
            "y_is_x": np.array(same)}


def _run_blocked(fn, case):
    q, k, v, block_n, causal = case.args
    qt, kt, vt = _on_device(q, k, v)
    with HostPeak(active=NO_NXN in case.kind) as host, Reads(kt, vt) as rec:
        o, lse = _pair(fn(qt, kt, vt, block_n, causal), ("O", "lse"))
    per_key = lambda t: rec.reads(t).max(axis=(0, 1, 3))  # noqa: E731  (N_k,): most reads of a key's elements
    return {"o": to_numpy(o), "lse": to_numpy(lse), "host_peak_bytes": np.array(host.peak), **rec.summary(),
            "k_reads": per_key(kt), "v_reads": per_key(vt)}


def _fwd_parts(case):
    q, k, v, causal, *dtype = case.args
    return q, k, v, causal, (dtype[0] if dtype else "float32")


def _tflops(seconds, z, h, n, d, causal):
    return 4 * z * h * n * n * d / seconds / 1e12 / (2 if causal else 1)


def _run_fwd(fn, case):
    q, k, v, causal, dtype = _fwd_parts(case)
    if "non-contiguous" in case.kind:  # the same values, laid out as (Z, N, H, D)
        qt, kt, vt = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in _on_device(q, k, v, dtype=dtype))
    else:
        qt, kt, vt = _on_device(q, k, v, dtype=dtype)
    with KernelWatch() as rec:
        o, lse = _pair(fn(qt, kt, vt, causal), ("O", "lse"))
    if "timed" in case.kind:  # information only: nothing here is compared
        from triton.testing import do_bench

        z, h, n, d = q.shape
        sdpa = torch.nn.functional.scaled_dot_product_attention
        mine = _tflops(do_bench(lambda: fn(qt, kt, vt, causal)) / 1e3, z, h, n, d, causal)
        ref = _tflops(do_bench(lambda: sdpa(qt, kt, vt, is_causal=causal)) / 1e3, z, h, n, d, causal)
        print(f"information only: your forward runs at {mine:.0f} TFLOP/s, torch's scaled_dot_product_attention "
              f"at {ref:.0f} TFLOP/s (Z={z}, H={h}, N={n}, D={d}, {dtype}, {torch.cuda.get_device_name()})")
        return {"tflops": np.array([mine, ref]), **rec.summary()}
    return {"o": _out(o), "lse": _out(lse), "o_dtype": dtype_name(o), "lse_dtype": dtype_name(lse),
            **rec.summary()}


def _run_bwd(fn, case):
    q, k, v, do, causal, o, lse = case.args
    qt, kt, vt, dot, o, lse = _on_device(q, k, v, do, o, lse)  # o, lse: the forward's outputs
    with KernelWatch() as rec:
        grads = _pair(fn(qt, kt, vt, o, lse, dot, causal), ("dQ", "dK", "dV"))
    return {name: to_numpy(g) for name, g in zip(("dq", "dk", "dv"), grads)} | rec.summary()


NO_SOFTMAX = ("compute the softmax yourself, block by block, from a running max and a running sum. "
              "NumPy and raw storage access are refused: the reads and memory rules are measured on torch ops.")

# ways to read a tensor's elements without a torch op, which the read counter would not see
RAW_ACCESS = frozenset({".untyped_storage", ".storage", ".data_ptr", ".apply_", ".map_", ".map2_", "ctypes"})


NO_FULL_ATTENTION = ("the point is never to form the N x N scores: compute them one block at a time with the "
                     "online softmax, not with a library attention or softmax.")


LEAVES_TORCH = ("NumPy is refused here: the memory rules are measured on torch ops, and a detour through NumPy "
                "(or raw storage) would hide the N x N matrix from them.")

IN_THE_KERNEL = ("the products belong inside your kernel, one tile at a time (tl.dot): `@`, torch.matmul and "
                 "the other products are refused on the host.")

ATTENTION_NAMES = frozenset({"scaled_dot_product_attention", "softmax", "log_softmax", "logsumexp", "_softmax"})
HOST_PRODUCTS = frozenset({"matmul", "bmm", "einsum", "baddbmm", "@", "torch.func"})

TASKS = {
    "online_softmax": Task(
        "online_softmax", _softmax_cases, _run_softmax,
        forbidden=frozenset({"softmax", "log_softmax", "logsumexp", "_softmax", *NO_NUMPY, *RAW_ACCESS}), why=NO_SOFTMAX,
    ),
    "blocked_attention": Task(
        "blocked_attention", _blocked_cases, _run_blocked,
        forbidden=ATTENTION_NAMES | NO_NUMPY | RAW_ACCESS,
        why=NO_FULL_ATTENTION + " " + LEAVES_TORCH,
    ),
    "flash_attn_fwd": Task(
        "flash_attn_fwd", _fwd_cases, _run_fwd,
        forbidden=ATTENTION_NAMES | HOST_PRODUCTS | NO_NUMPY,
        why=NO_FULL_ATTENTION + " " + IN_THE_KERNEL + " " + LEAVES_TORCH,
    ),
    "flash_decode": Task(
        "flash_decode", _decode_cases, _run_decode,
        forbidden=frozenset({"scaled_dot_product_attention"}) | HOST_PRODUCTS | NO_NUMPY,
        why="each program attends over its own split of the keys inside your kernel, and the host or a second kernel "
            "merges the splits' partial states; " + IN_THE_KERNEL + " " + LEAVES_TORCH,
    ),
    "flash_attn_bwd": Task(
        "flash_attn_bwd", _bwd_cases, _run_bwd,
        forbidden=ATTENTION_NAMES | HOST_PRODUCTS | NO_NUMPY | {"backward", "autograd"},
        why="rebuild P from lse inside your kernels; autograd and library attention would store it, and "
            + IN_THE_KERNEL + " " + LEAVES_TORCH,
    ),
}
