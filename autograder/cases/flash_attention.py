"""Chapter 04's cases: what the learner's softmax, blocked attention and Triton kernels are run on,
and how (the learner's kernel).

Every run watches what the learner's function does while it runs: the torch ops, through a
TorchDispatchMode (`OpRecorder`: the largest tensor an op reads or writes, the bytes of fresh
allocations, the Triton kernel launches), and, for the PyTorch exercises, the peak of Python and
NumPy allocations (tracemalloc), so that a detour through NumPy cannot build the N x N matrix
unseen. The Triton exercises refuse NumPy outright. Those measurements are outputs like any
other, so the grader's own re-check enforces "no N x N intermediate" outside this process.
"""
import math

import numpy as np
import torch

from autograder.device import CUDA, DEVICE
from autograder.exercise import Case, NO_NUMPY, Task, dtype_name, to_numpy
from autograder.watch import HostPeak, OpRecorder, peak_bytes  # noqa: F401  (peak_bytes: for the book)


_DT = {"float64": np.float64, "float32": np.float32}


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
        Case("scores are large (q and k scaled by 8: subtract the running max)", (*_qkv(rng, 1, 2, 48, 48, 16, "float64", 8.0), 16, False)),
        Case("N = 256, block_n = 32, causal off (no op may touch N_q x N_k elements)", (*_qkv(rng, 1, 2, 256, 256, 16, "float64"), 32, False)),
        Case("N = 256, block_n = 32, causal on (no op may touch N_q x N_k elements)", (*_qkv(rng, 1, 2, 256, 256, 16, "float64"), 32, True)),
    ]


def _grid_kind(n: int, d: int, causal: bool) -> str:
    tail = " (not a multiple of the block: mask the tail)" if n % 64 else ""
    return f"N = {n}{tail}, D = {d}, causal {'on' if causal else 'off'}"


def _fwd_cases(rng) -> list[Case]:
    cases = [Case(_grid_kind(n, d, causal), (*_qkv(rng, 1, 2, n, n, d), causal))
             for n in (64, 128, 200) for d in (16, 32) for causal in (False, True)]
    cases += [
        Case("N_q = 80 != N_k = 200, causal off", (*_qkv(rng, 1, 2, 80, 200, 16), False)),
        Case("q, k, v are non-contiguous views of a (Z, N, H, D) tensor", (*_qkv(rng, 1, 2, 128, 128, 16), False)),
        Case("scores spread widely (q and k scaled by 2)", (*_qkv(rng, 1, 2, 64, 64, 32, scale=2.0), True)),
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

    return [Case(_grid_kind(n, d, causal), args(n, d, causal))
            for n in (64, 128, 200) for d in (16, 32) for causal in (False, True)]


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
    with HostPeak(active=NO_TEMPORARY in case.kind) as host, OpRecorder() as rec:
        y = fn(xt, block)
    return {"y": to_numpy(y), "host_peak_bytes": np.array(host.peak), **rec.summary()}


def _run_blocked(fn, case):
    q, k, v, block_n, causal = case.args
    qt, kt, vt = _on_device(q, k, v)
    with HostPeak(active=NO_NXN in case.kind) as host, OpRecorder() as rec:
        o, lse = _pair(fn(qt, kt, vt, block_n, causal), ("O", "lse"))
    return {"o": to_numpy(o), "lse": to_numpy(lse), "host_peak_bytes": np.array(host.peak), **rec.summary()}


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
    with OpRecorder() as rec:
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
    with OpRecorder() as rec:
        grads = _pair(fn(qt, kt, vt, o, lse, dot, causal), ("dQ", "dK", "dV"))
    return {name: to_numpy(g) for name, g in zip(("dq", "dk", "dv"), grads)} | rec.summary()


NO_SOFTMAX = "compute the softmax yourself, block by block, from a running max and a running sum."


NO_FULL_ATTENTION = ("the point is never to form the N x N scores: compute them one block at a time with the "
                     "online softmax, not with a library attention or softmax.")


LEAVES_TORCH = ("NumPy is refused here: the memory rules are measured on torch ops, and a detour through NumPy "
                "would hide the N x N matrix from them.")

TASKS = {
    "online_softmax": Task(
        "online_softmax", _softmax_cases, _run_softmax,
        forbidden=frozenset({"softmax", "log_softmax", "logsumexp", "_softmax"}), why=NO_SOFTMAX,
    ),
    "blocked_attention": Task(
        "blocked_attention", _blocked_cases, _run_blocked,
        forbidden=frozenset({"scaled_dot_product_attention", "softmax", "log_softmax", "logsumexp", "_softmax"}),
        why=NO_FULL_ATTENTION,
    ),
    "flash_attn_fwd": Task(
        "flash_attn_fwd", _fwd_cases, _run_fwd,
        forbidden=frozenset({"scaled_dot_product_attention", "softmax", "log_softmax", "logsumexp", "_softmax",
                             "matmul", "bmm", "einsum", "baddbmm", *NO_NUMPY}),
        why=NO_FULL_ATTENTION + " " + LEAVES_TORCH,
    ),
    "flash_attn_bwd": Task(
        "flash_attn_bwd", _bwd_cases, _run_bwd,
        forbidden=frozenset({"scaled_dot_product_attention", "softmax", "log_softmax", "logsumexp", "_softmax",
                             "matmul", "bmm", "einsum", "baddbmm", "backward", "autograd", *NO_NUMPY}),
        why="rebuild P from lse inside your kernels; autograd and library attention would store it. " + LEAVES_TORCH,
    ),
}
