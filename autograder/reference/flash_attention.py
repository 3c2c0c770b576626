"""Chapter 04: FlashAttention.

Spec: attention as three textbook lines (scores, softmax, weighted sum) computed in float64, its
logsumexp, and its gradients by autograd through those lines. Fast: Triton forward and backward
kernels in the FlashAttention-2 arrangement (one program per query block for the forward and for
dQ, one per key/value block for dK and dV), which compile for CUDA and run in Triton's
interpreter on a CPU.

Every exercise's run also watches the torch ops the learner's function executes (a
TorchDispatchMode, `OpRecorder`): the largest tensor an op reads or writes, the bytes of fresh
allocations, and how many Triton kernels were launched. Those are outputs like any other, so the
grader's own re-check enforces "no N x N intermediate" without trusting the learner's process.
"""
import math

import numpy as np
import torch

from autograder.device import CUDA, DEVICE
import triton  # noqa: E402  (after autograder.device, always)
import triton.language as tl  # noqa: E402

from autograder.cases.flash_attention import (  # noqa: F401  (OpRecorder, peak_bytes: for the book)
    LONG_KEYS, NO_NXN, NO_TEMPORARY, TASKS, OpRecorder, _decode_parts, _fwd_parts, _tflops, peak_bytes,
)
from autograder import rules
from autograder.exercise import check_outputs, require

# ---------------------------------------------------------------- spec


def softmax_spec(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension, the obvious way (torch's own, safe, in x's dtype)."""
    return torch.softmax(x, dim=-1)


def attention_spec(q, k, v, causal: bool = False):
    """(O, lse) of softmax(Q K^T / sqrt(d)) V, in float64, for q (Z, H, Nq, D), k, v (Z, H, Nk, D).

    causal: query i sees keys j <= i (needs Nq == Nk). lse = logsumexp over keys of the scaled,
    masked scores, shape (Z, H, Nq).
    """
    q, k, v = (torch.as_tensor(t).double() for t in (q, k, v))
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (Z, H, Nq, Nk)
    if causal:
        s = s.masked_fill(causal_mask(q.shape[-2], k.shape[-2], s.device), float("-inf"))
    lse = torch.logsumexp(s, dim=-1)  # (Z, H, Nq)
    p = torch.exp(s - lse[..., None])  # (Z, H, Nq, Nk)
    return p @ v, lse


def causal_mask(n_q: int, n_k: int, device=None) -> torch.Tensor:
    """True where key j is hidden from query i (j > i): the entries a causal model masks."""
    i = torch.arange(n_q, device=device)[:, None]
    j = torch.arange(n_k, device=device)[None, :]
    return j > i  # (Nq, Nk)


def attention_grads_spec(q, k, v, do, causal: bool = False):
    """(dQ, dK, dV) of sum(O * dO) by autograd through attention_spec, in float64."""
    q, k, v = (torch.as_tensor(t).double().requires_grad_(True) for t in (q, k, v))
    o, _ = attention_spec(q, k, v, causal)
    o.backward(torch.as_tensor(do).double())
    return q.grad, k.grad, v.grad


def naive_attention(q, k, v, causal: bool = False):
    """Standard attention in q's dtype: writes the (Z, H, N, N) scores and probabilities."""
    s = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5  # (Z, H, Nq, Nk)
    if causal:
        s = s.masked_fill(causal_mask(q.shape[-2], k.shape[-2], q.device), float("-inf"))
    return torch.softmax(s.float(), dim=-1).to(q.dtype) @ v  # (Z, H, Nq, D)


# ---------------------------------------------------------------- the recurrence in PyTorch


def online_softmax_torch(x: torch.Tensor, block: int) -> torch.Tensor:
    """Softmax over the last dim: one pass over column blocks for the row max m and sum l, then a
    pass that writes exp(x - m) / l block by block. No temporary is wider than `block` columns."""
    rows = x.shape[:-1]
    m = torch.full(rows, float("-inf"), dtype=x.dtype, device=x.device)  # running max
    l = torch.zeros(rows, dtype=x.dtype, device=x.device)  # running sum of exp(x - m)
    for j in range(0, x.shape[-1], block):
        xj = x[..., j:j + block]  # (..., block)
        m_new = torch.maximum(m, xj.amax(dim=-1))
        # a row that has seen only -inf so far has m_new = -inf, and -inf - (-inf) is nan: shift by 0
        shift = torch.where(m_new == float("-inf"), 0.0, m_new)
        l = l * torch.exp(m - shift) + torch.exp(xj - shift[..., None]).sum(dim=-1)  # e^{m - m'} rescales
        m = m_new
    out = torch.empty_like(x)
    for j in range(0, x.shape[-1], block):
        out[..., j:j + block] = torch.exp(x[..., j:j + block] - m[..., None]) / l[..., None]
    return out


def blocked_attention_torch(q, k, v, block_n: int, causal: bool = False):
    """FlashAttention's recurrence over key/value blocks in PyTorch: (O, lse) without ever
    forming an Nq x Nk matrix. q (Z, H, Nq, D), k, v (Z, H, Nk, D)."""
    n_q, n_k = q.shape[-2], k.shape[-2]
    scale = q.shape[-1] ** -0.5
    m = torch.full(q.shape[:-1], float("-inf"), dtype=q.dtype, device=q.device)  # (Z, H, Nq)
    l = torch.zeros_like(m)  # (Z, H, Nq)
    acc = torch.zeros_like(q)  # (Z, H, Nq, D): unnormalised output
    rows = torch.arange(n_q, device=q.device)[:, None]  # (Nq, 1)
    for j in range(0, n_k, block_n):
        s = q @ k[..., j:j + block_n, :].transpose(-2, -1) * scale  # (Z, H, Nq, Bc)
        if causal:
            cols = torch.arange(j, min(j + block_n, n_k), device=q.device)[None, :]  # (1, Bc)
            s = s.masked_fill(cols > rows, float("-inf"))
        m_new = torch.maximum(m, s.amax(dim=-1))  # finite: block 0 holds key 0, seen by every row
        alpha = torch.exp(m - m_new)  # rescales what was accumulated so far
        p = torch.exp(s - m_new[..., None])  # (Z, H, Nq, Bc)
        l = l * alpha + p.sum(dim=-1)
        acc = acc * alpha[..., None] + p @ v[..., j:j + block_n, :]
        m = m_new
    return acc / l[..., None], m + torch.log(l)


def running_state(q, k, v, block, causal=False, first_row=0):
    """Algorithm 2 for one head, q (N_q, d) holding queries first_row.., k and v (N_k, d):
    per key step, (m, l, alpha, O~ / l)."""
    n_q, n_k = q.shape[0], k.shape[0]
    rows = first_row + torch.arange(n_q)[:, None]
    m = torch.full((n_q,), float("-inf"), dtype=q.dtype)
    l, acc, steps = torch.zeros(n_q, dtype=q.dtype), torch.zeros_like(q), []
    for j in range(0, n_k, block):
        s = q @ k[j:j + block].T * q.shape[-1] ** -0.5
        if causal:
            s = s.masked_fill(torch.arange(j, min(j + block, n_k))[None, :] > rows, float("-inf"))
        m_new = torch.maximum(m, s.amax(-1))
        alpha, p = torch.exp(m - m_new), torch.exp(s - m_new[:, None])
        l, acc, m = l * alpha + p.sum(-1), acc * alpha[:, None] + p @ v[j:j + block], m_new
        steps.append((m.clone(), l.clone(), alpha.clone(), acc / l[:, None]))
    return steps


def blocked_attention_rounded(q, k, v, block_n: int = 128, p_dtype=torch.float32, acc_dtype=torch.float32):
    """Algorithm 2 as a GPU kernel rounds it, for q, k, v given in a 16-bit dtype: products of the
    16-bit inputs summed in float32, P~ cast to p_dtype before the P~ V product, and l and O~ kept in
    acc_dtype (rounded after every key block; float32 in FlashAttention's kernels). O in float32."""
    q, k, v = q.float(), k.float(), v.float()
    rnd = lambda t, dtype: t.to(dtype).float()  # noqa: E731  (store in dtype, compute in float32)
    m = torch.full(q.shape[:-1], float("-inf"))  # (..., Nq)
    l = torch.zeros_like(m)
    acc = torch.zeros_like(q)  # (..., Nq, D)
    for j in range(0, k.shape[-2], block_n):
        s = q @ k[..., j:j + block_n, :].transpose(-2, -1) * q.shape[-1] ** -0.5  # (..., Nq, Bc)
        m_new = torch.maximum(m, s.amax(dim=-1))
        alpha = torch.exp(m - m_new)
        p = torch.exp(s - m_new[..., None])
        l = rnd(l * alpha + p.sum(dim=-1), acc_dtype)
        acc = rnd(acc * alpha[..., None] + rnd(p, p_dtype) @ v[..., j:j + block_n, :], acc_dtype)
        m = m_new
    return acc / l[..., None]


# ---------------------------------------------------------------- fast: Triton forward


@triton.jit
def _fwd_inner(
    acc, l_i, m_i, q,  # running state of this query block, and the block itself (BLOCK_M, D)
    k_ptrs, v_ptrs,  # pointers to key block 0 (D, BLOCK_N) and value block 0 (BLOCK_N, D)
    stride_kn, stride_vn,  # how far one key / one value row is
    offs_m, offs_n,  # query rows of this program, key columns of a block (before the offset)
    lo, hi,  # key range [lo, hi) to visit, multiples of BLOCK_N
    n_k, qk_scale,  # number of keys; 1/sqrt(d) * log2(e), so that exp2 gives exp
    BLOCK_N: tl.constexpr,
    CAUSAL_MASK: tl.constexpr,  # mask keys j > i inside these blocks (the diagonal band)
    PRECISION: tl.constexpr,  # tl.dot input precision: "ieee" = full fp32 products on a GPU (no TF32)
):
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n  # (BLOCK_N,)
        k = tl.load(k_ptrs + start_n * stride_kn, mask=cols[None, :] < n_k, other=0.0)  # (D, BLOCK_N)
        s = tl.dot(q, k, input_precision=PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N), log2 units
        keep = cols[None, :] < n_k  # the tail block reads past the last key: mask it out
        if CAUSAL_MASK:
            keep = keep & (cols[None, :] <= offs_m[:, None])
        s = tl.where(keep, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))  # (BLOCK_M,)
        alpha = tl.math.exp2(m_i - m_new)  # e^{m - m'}: rescale the old sum and output
        p = tl.math.exp2(s - m_new[:, None])  # (BLOCK_M, BLOCK_N)
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_ptrs + start_n * stride_vn, mask=cols[:, None] < n_k, other=0.0)  # (BLOCK_N, D)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def flash_fwd_kernel(
    Q, K, V, O,  # (Z, H, Nq, D), (Z, H, Nk, D), (Z, H, Nk, D), (Z, H, Nq, D) tensors
    LSE,  # (Z, H, Nq) float32, written: logsumexp of each row's scaled scores (natural log)
    stride_qz, stride_qh, stride_qn, stride_qd,  # q's strides, in elements
    stride_kz, stride_kh, stride_kn, stride_kd,  # k's strides
    stride_vz, stride_vh, stride_vn, stride_vd,  # v's strides
    stride_oz, stride_oh, stride_on, stride_od,  # o's strides
    H,  # number of heads
    n_q, n_k,  # number of queries and keys (n_q == n_k when causal)
    sm_scale,  # 1 / sqrt(D)
    D: tl.constexpr,  # head dimension (a power of two, >= 16)
    BLOCK_M: tl.constexpr,  # queries per program (B_r)
    BLOCK_N: tl.constexpr,  # keys per loop step (B_c)
    CAUSAL: tl.constexpr,  # query i sees keys j <= i
    PRECISION: tl.constexpr,  # "ieee" for fp32 inputs, "tf32" otherwise (ignored for 16-bit)
):
    pid_m = tl.program_id(0)  # which query block
    pid_zh = tl.program_id(1)  # which (batch, head)
    z = pid_zh // H
    h = pid_zh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,)
    offs_n = tl.arange(0, BLOCK_N)  # (BLOCK_N,)
    offs_d = tl.arange(0, D)  # (D,)
    q_ptrs = Q + z * stride_qz + h * stride_qh + offs_m[:, None] * stride_qn + offs_d[None, :] * stride_qd
    k_ptrs = K + z * stride_kz + h * stride_kh + offs_n[None, :] * stride_kn + offs_d[:, None] * stride_kd
    v_ptrs = V + z * stride_vz + h * stride_vh + offs_n[:, None] * stride_vn + offs_d[None, :] * stride_vd
    q = tl.load(q_ptrs, mask=offs_m[:, None] < n_q, other=0.0)  # (BLOCK_M, D), stays on chip
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)  # running row max (log2 units)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)  # running row sum
    acc = tl.zeros([BLOCK_M, D], dtype=tl.float32)  # running unnormalised output
    qk_scale = sm_scale * 1.4426950408889634  # log2(e): exp(x) = exp2(x log2 e)
    if CAUSAL:
        # blocks entirely left of the diagonal need no mask; then the band that crosses it.
        # Blocks to its right are skipped: they are fully masked (FlashAttention-2's causal saving).
        band = (pid_m * BLOCK_M) // BLOCK_N * BLOCK_N
        acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_ptrs, v_ptrs, stride_kn, stride_vn, offs_m, offs_n,
                                   0, band, n_k, qk_scale, BLOCK_N, False, PRECISION)
        hi = tl.minimum((pid_m + 1) * BLOCK_M, n_k)
        acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_ptrs, v_ptrs, stride_kn, stride_vn, offs_m, offs_n,
                                   band, hi, n_k, qk_scale, BLOCK_N, True, PRECISION)
    else:
        acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_ptrs, v_ptrs, stride_kn, stride_vn, offs_m, offs_n,
                                   0, n_k, n_k, qk_scale, BLOCK_N, False, PRECISION)
    acc = acc / l_i[:, None]  # normalise once, at the end (FlashAttention-2)
    lse = (m_i + tl.math.log2(l_i)) * 0.6931471805599453  # back to natural log: ln 2
    o_ptrs = O + z * stride_oz + h * stride_oh + offs_m[:, None] * stride_on + offs_d[None, :] * stride_od
    tl.store(o_ptrs, acc.to(O.dtype.element_ty), mask=offs_m[:, None] < n_q)
    tl.store(LSE + pid_zh * n_q + offs_m, lse, mask=offs_m < n_q)


def _precision(dtype: torch.dtype) -> str:
    return "ieee" if dtype == torch.float32 else "tf32"


def _fwd_config(d: int, dtype: torch.dtype) -> dict:
    """Block sizes and launch settings: big blocks in the interpreter (its time grows with programs
    x loop steps), the usual Hopper/Ampere settings on a GPU."""
    if not CUDA:
        return dict(BLOCK_M=64, BLOCK_N=64)
    if dtype == torch.float32:
        return dict(BLOCK_M=64, BLOCK_N=32, num_warps=4, num_stages=2)
    if d <= 64:
        return dict(BLOCK_M=128, BLOCK_N=64, num_warps=4, num_stages=3)
    return dict(BLOCK_M=128, BLOCK_N=64, num_warps=8, num_stages=3)


# On a GPU, 16-bit inputs pick their blocks by timing a few common settings (once per shape);
# configurations that do not fit in shared memory are skipped by the autotuner.
_GPU_CONFIGS = [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=st)
                for bm, bn, w, st in ((128, 64, 4, 3), (128, 64, 8, 3), (128, 128, 8, 3),
                                      (64, 64, 4, 3), (128, 32, 4, 4), (64, 128, 4, 3))]
flash_fwd_tuned = triton.autotune(_GPU_CONFIGS, key=["n_q", "n_k", "D", "CAUSAL"])(flash_fwd_kernel) if CUDA else None


def flash_attn_triton(q, k, v, causal: bool = False, block_m: int | None = None, block_n: int | None = None):
    """(O, lse) with the Triton forward kernel. q (Z, H, Nq, D), k, v (Z, H, Nk, D), any strides;
    O has q's dtype, lse (Z, H, Nq) is float32. Allocates only O and lse."""
    z, h, n_q, d = q.shape
    n_k = k.shape[-2]
    assert k.shape == v.shape == (z, h, n_k, d) and q.dtype == k.dtype == v.dtype
    assert d >= 16 and d & (d - 1) == 0, "head dim must be a power of two >= 16 (tl.arange, tl.dot)"
    assert not causal or n_q == n_k, "causal attention here needs as many queries as keys"
    o = torch.empty((z, h, n_q, d), dtype=q.dtype, device=q.device)
    lse = torch.empty((z, h, n_q), dtype=torch.float32, device=q.device)
    args = (q, k, v, o, lse, *q.stride(), *k.stride(), *v.stride(), *o.stride(), h, n_q, n_k, d ** -0.5)
    if flash_fwd_tuned is not None and q.dtype != torch.float32 and block_m is None and block_n is None:
        grid = lambda meta: (triton.cdiv(n_q, meta["BLOCK_M"]), z * h)  # noqa: E731
        flash_fwd_tuned[grid](*args, D=d, CAUSAL=causal, PRECISION=_precision(q.dtype))
        return o, lse
    cfg = _fwd_config(d, q.dtype)
    cfg["BLOCK_M"] = block_m or cfg["BLOCK_M"]
    cfg["BLOCK_N"] = block_n or cfg["BLOCK_N"]
    grid = (triton.cdiv(n_q, cfg["BLOCK_M"]), z * h)
    flash_fwd_kernel[grid](*args, D=d, CAUSAL=causal, PRECISION=_precision(q.dtype), **cfg)
    return o, lse


# ---------------------------------------------------------------- fast: split-KV decoding


def merge_states(a, b):
    """(m, l, O~) (+) (m', l', O~'): two partial attention states of the same query rows over
    disjoint key sets, as one state over their union (section 10). m, l (..., N_q), O~ (..., N_q, D)."""
    (m1, l1, o1), (m2, l2, o2) = a, b
    m = torch.maximum(m1, m2)
    shift = torch.where(m == float("-inf"), 0.0, m)  # two empty states stay empty, not nan
    a1, a2 = torch.exp(m1 - shift), torch.exp(m2 - shift)  # e^{m - m_new} rescales each side
    return m, a1 * l1 + a2 * l2, a1[..., None] * o1 + a2[..., None] * o2


def partial_state(q, k, v):
    """(m, l, O~) of q (..., N_q, D) over the keys k, v (..., n, D), in one piece."""
    s = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5  # (..., N_q, n)
    m = s.amax(dim=-1)
    p = torch.exp(s - m[..., None])
    return m, p.sum(dim=-1), p @ v


@triton.jit
def flash_decode_kernel(
    Q, K, V,  # q (Z, H, Nq, D), k and v (Z, H, Nk, D), any strides
    O_PART, LSE_PART,  # (Z, H, S, Nq, D) and (Z, H, S, Nq) float32, contiguous: written
    stride_qz, stride_qh, stride_qn, stride_qd,  # q's strides
    stride_kz, stride_kh, stride_kn, stride_kd,  # k's strides
    stride_vz, stride_vh, stride_vn, stride_vd,  # v's strides
    H, n_q, n_k, n_splits,  # heads, queries, keys, splits S
    sm_scale,  # 1 / sqrt(D)
    D: tl.constexpr,  # head dimension
    BLOCK_M: tl.constexpr,  # query rows held (>= n_q, >= 16 for tl.dot)
    BLOCK_N: tl.constexpr,  # keys per loop step
    SPLIT: tl.constexpr,  # keys per split: program (s, zh) reads keys [s * SPLIT, (s + 1) * SPLIT)
    PRECISION: tl.constexpr,
):
    split = tl.program_id(0)
    pid_zh = tl.program_id(1)
    z = pid_zh // H
    h = pid_zh % H
    offs_m = tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    q = tl.load(Q + z * stride_qz + h * stride_qh + offs_m[:, None] * stride_qn + offs_d[None, :] * stride_qd,
                mask=offs_m[:, None] < n_q, other=0.0)  # (BLOCK_M, D)
    k_base = K + z * stride_kz + h * stride_kh
    v_base = V + z * stride_vz + h * stride_vh
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, D], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634  # log2(e)
    lo = split * SPLIT
    hi = tl.minimum(lo + SPLIT, n_k)  # this split's keys only
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n
        inside = cols < hi
        k = tl.load(k_base + cols[None, :] * stride_kn + offs_d[:, None] * stride_kd,
                    mask=inside[None, :], other=0.0)  # (D, BLOCK_N)
        s = tl.dot(q, k, input_precision=PRECISION) * qk_scale
        s = tl.where(inside[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.math.exp2(m_i - m_new)
        p = tl.math.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_base + cols[:, None] * stride_vn + offs_d[None, :] * stride_vd,
                    mask=inside[:, None], other=0.0)  # (BLOCK_N, D)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new
    row = (pid_zh * n_splits + split) * n_q + offs_m  # (BLOCK_M,) rows of the (Z*H*S*Nq) partials
    tl.store(O_PART + row[:, None] * D + offs_d[None, :], acc / l_i[:, None], mask=offs_m[:, None] < n_q)
    tl.store(LSE_PART + row, (m_i + tl.math.log2(l_i)) * 0.6931471805599453, mask=offs_m < n_q)


@triton.jit
def flash_decode_combine_kernel(
    O_PART, LSE_PART,  # (Z*H, S, Nq, D), (Z*H, S, Nq) float32, contiguous
    O, LSE,  # (Z, H, Nq, D) in q's dtype, contiguous, and (Z, H, Nq) float32: written
    n_q, n_splits,  # queries, splits S
    D: tl.constexpr,
    BLOCK_S: tl.constexpr,  # >= n_splits, a power of two
):
    row = tl.program_id(0)  # one (z, h, query) row
    zh = row // n_q
    i = row % n_q
    offs_s = tl.arange(0, BLOCK_S)
    offs_d = tl.arange(0, D)
    part = (zh * n_splits + offs_s) * n_q + i  # (BLOCK_S,)
    lse_s = tl.load(LSE_PART + part, mask=offs_s < n_splits, other=float("-inf"))
    o_s = tl.load(O_PART + part[:, None] * D + offs_d[None, :], mask=offs_s[:, None] < n_splits, other=0.0)
    m = tl.max(lse_s, 0)
    w = tl.exp(lse_s - m)  # each split's weight l_s e^{m_s - m}, relative to the largest
    total = tl.sum(w, 0)
    tl.store(O + row * D + offs_d, (tl.sum(w[:, None] * o_s, 0) / total).to(O.dtype.element_ty))
    tl.store(LSE + row, m + tl.log(total))


def flash_decode_triton(q, k, v, num_splits: int, block_n: int | None = None):
    """(O, lse) of q (Z, H, Nq, D), Nq small, against k, v (Z, H, Nk, D): one program per
    (split of ceil(Nk / num_splits) keys, batch, head) writes its (O_s, lse_s), a second kernel
    merges the splits (section 10)."""
    z, h, n_q, d = q.shape
    n_k = k.shape[-2]
    split = triton.cdiv(n_k, num_splits)
    n_splits = triton.cdiv(n_k, split)
    block_n = block_n or min(64, max(16, triton.next_power_of_2(split)))
    o_part = torch.empty((z, h, n_splits, n_q, d), dtype=torch.float32, device=q.device)
    lse_part = torch.empty((z, h, n_splits, n_q), dtype=torch.float32, device=q.device)
    flash_decode_kernel[(n_splits, z * h)](
        q, k, v, o_part, lse_part, *q.stride(), *k.stride(), *v.stride(), h, n_q, n_k, n_splits, d ** -0.5,
        D=d, BLOCK_M=max(16, triton.next_power_of_2(n_q)), BLOCK_N=block_n, SPLIT=split,
        PRECISION=_precision(q.dtype))
    o = torch.empty((z, h, n_q, d), dtype=q.dtype, device=q.device)
    lse = torch.empty((z, h, n_q), dtype=torch.float32, device=q.device)
    flash_decode_combine_kernel[(z * h * n_q,)](o_part, lse_part, o, lse, n_q, n_splits, D=d,
                                                BLOCK_S=triton.next_power_of_2(n_splits))
    return o, lse


# ---------------------------------------------------------------- fast: Triton backward


@triton.jit
def flash_bwd_preprocess(
    O, DO,  # (Z, H, N, D) contiguous
    DELTA,  # (Z, H, N) float32, written: rowsum(dO * O)
    n,  # rows per (batch, head)
    D: tl.constexpr,  # head dimension
    BLOCK_M: tl.constexpr,  # rows per program
):
    pid_m = tl.program_id(0)
    pid_zh = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, D)
    ptrs = pid_zh * n * D + offs_m[:, None] * D + offs_d[None, :]
    rows = offs_m[:, None] < n
    o = tl.load(O + ptrs, mask=rows, other=0.0).to(tl.float32)
    do = tl.load(DO + ptrs, mask=rows, other=0.0).to(tl.float32)
    tl.store(DELTA + pid_zh * n + offs_m, tl.sum(o * do, 1), mask=offs_m < n)


@triton.jit
def flash_bwd_dkdv_kernel(
    Q, K, V, DO,  # (Z, H, N, D) contiguous
    LSE, DELTA,  # (Z, H, N) float32: the forward's logsumexp, rowsum(dO * O)
    DK, DV,  # (Z, H, N, D), written
    n,  # sequence length
    sm_scale,  # 1 / sqrt(D)
    D: tl.constexpr,  # head dimension
    BLOCK_M: tl.constexpr,  # queries per loop step
    BLOCK_N: tl.constexpr,  # keys per program
    CAUSAL: tl.constexpr,
    PRECISION: tl.constexpr,
):
    pid_n = tl.program_id(0)  # which key/value block
    pid_zh = tl.program_id(1)
    base = pid_zh * n * D
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # (BLOCK_N,) keys of this program
    offs_m0 = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, D)
    kv_mask = offs_n[:, None] < n
    k = tl.load(K + base + offs_n[:, None] * D + offs_d[None, :], mask=kv_mask, other=0.0)  # (BLOCK_N, D)
    v = tl.load(V + base + offs_n[:, None] * D + offs_d[None, :], mask=kv_mask, other=0.0)  # (BLOCK_N, D)
    dk = tl.zeros([BLOCK_N, D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, D], dtype=tl.float32)
    # causal: only queries i >= the first key of this block see it
    lo = (pid_n * BLOCK_N) // BLOCK_M * BLOCK_M if CAUSAL else 0
    for start_m in range(lo, n, BLOCK_M):
        offs_m = start_m + offs_m0  # (BLOCK_M,)
        q_mask = offs_m[:, None] < n
        q = tl.load(Q + base + offs_m[:, None] * D + offs_d[None, :], mask=q_mask, other=0.0)  # (BLOCK_M, D)
        do = tl.load(DO + base + offs_m[:, None] * D + offs_d[None, :], mask=q_mask, other=0.0)
        lse = tl.load(LSE + pid_zh * n + offs_m, mask=offs_m < n, other=0.0)  # (BLOCK_M,)
        delta = tl.load(DELTA + pid_zh * n + offs_m, mask=offs_m < n, other=0.0)
        s_t = tl.dot(k, tl.trans(q), input_precision=PRECISION) * sm_scale  # (BLOCK_N, BLOCK_M) = S^T
        keep = (offs_n[:, None] < n) & (offs_m[None, :] < n)
        if CAUSAL:
            keep = keep & (offs_n[:, None] <= offs_m[None, :])
        p_t = tl.where(keep, tl.exp(s_t - lse[None, :]), 0.0)  # P^T rebuilt from lse, never stored
        dv += tl.dot(p_t.to(do.dtype), do, input_precision=PRECISION)  # dV = P^T dO
        dp_t = tl.dot(v, tl.trans(do), input_precision=PRECISION)  # (BLOCK_N, BLOCK_M) = (dO V^T)^T
        ds_t = p_t * (dp_t - delta[None, :])  # dS = P * (dP - D)
        dk += tl.dot(ds_t.to(q.dtype), q, input_precision=PRECISION)  # dK = dS^T Q (times scale below)
    tl.store(DK + base + offs_n[:, None] * D + offs_d[None, :], (dk * sm_scale).to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + base + offs_n[:, None] * D + offs_d[None, :], dv.to(DV.dtype.element_ty), mask=kv_mask)


@triton.jit
def flash_bwd_dq_kernel(
    Q, K, V, DO,  # (Z, H, N, D) contiguous
    LSE, DELTA,  # (Z, H, N) float32
    DQ,  # (Z, H, N, D), written
    n,  # sequence length
    sm_scale,  # 1 / sqrt(D)
    D: tl.constexpr,  # head dimension
    BLOCK_M: tl.constexpr,  # queries per program
    BLOCK_N: tl.constexpr,  # keys per loop step
    CAUSAL: tl.constexpr,
    PRECISION: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_zh = tl.program_id(1)
    base = pid_zh * n * D
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    q_mask = offs_m[:, None] < n
    q = tl.load(Q + base + offs_m[:, None] * D + offs_d[None, :], mask=q_mask, other=0.0)  # (BLOCK_M, D)
    do = tl.load(DO + base + offs_m[:, None] * D + offs_d[None, :], mask=q_mask, other=0.0)
    lse = tl.load(LSE + pid_zh * n + offs_m, mask=offs_m < n, other=0.0)
    delta = tl.load(DELTA + pid_zh * n + offs_m, mask=offs_m < n, other=0.0)
    dq = tl.zeros([BLOCK_M, D], dtype=tl.float32)
    hi = tl.minimum((pid_m + 1) * BLOCK_M, n) if CAUSAL else n
    for start_n in range(0, hi, BLOCK_N):
        offs_n = start_n + offs_n0
        kv_mask = offs_n[:, None] < n
        k = tl.load(K + base + offs_n[:, None] * D + offs_d[None, :], mask=kv_mask, other=0.0)  # (BLOCK_N, D)
        v = tl.load(V + base + offs_n[:, None] * D + offs_d[None, :], mask=kv_mask, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * sm_scale  # (BLOCK_M, BLOCK_N)
        keep = (offs_m[:, None] < n) & (offs_n[None, :] < n)
        if CAUSAL:
            keep = keep & (offs_n[None, :] <= offs_m[:, None])
        p = tl.where(keep, tl.exp(s - lse[:, None]), 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)  # dP = dO V^T
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)  # dQ = dS K (times scale below)
    tl.store(DQ + base + offs_m[:, None] * D + offs_d[None, :], (dq * sm_scale).to(DQ.dtype.element_ty), mask=q_mask)


def _bwd_config(d: int, dtype: torch.dtype) -> dict:
    if not CUDA:
        return dict(BLOCK_M=64, BLOCK_N=64)
    if dtype == torch.float32:
        return dict(BLOCK_M=32, BLOCK_N=32, num_warps=4, num_stages=2)
    return dict(BLOCK_M=64, BLOCK_N=64, num_warps=4 if d <= 64 else 8, num_stages=2)


def flash_attn_bwd_triton(q, k, v, o, lse, do, causal: bool = False):
    """(dQ, dK, dV) from the forward's O and lse: P is rebuilt block by block, never stored.
    All tensors (Z, H, N, D) (lse (Z, H, N) float32); made contiguous if they are not."""
    q, k, v, o, do = (t.contiguous() for t in (q, k, v, o, do))
    z, h, n, d = q.shape
    assert k.shape == q.shape, "the backward here needs as many queries as keys"
    cfg = _bwd_config(d, q.dtype)
    delta = torch.empty((z, h, n), dtype=torch.float32, device=q.device)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    flash_bwd_preprocess[(triton.cdiv(n, cfg["BLOCK_M"]), z * h)](o, do, delta, n, D=d, BLOCK_M=cfg["BLOCK_M"])
    common = dict(D=d, CAUSAL=causal, PRECISION=_precision(q.dtype), **cfg)
    flash_bwd_dkdv_kernel[(triton.cdiv(n, cfg["BLOCK_N"]), z * h)](
        q, k, v, do, lse, delta, dk, dv, n, d ** -0.5, **common)
    flash_bwd_dq_kernel[(triton.cdiv(n, cfg["BLOCK_M"]), z * h)](
        q, k, v, do, lse, delta, dq, n, d ** -0.5, **common)
    return dq, dk, dv


class FlashAttention(torch.autograd.Function):
    """The two kernels as one differentiable op: saves q, k, v, O and lse (O(N d)), not P."""

    @staticmethod
    def forward(ctx, q, k, v, causal=False):
        o, lse = flash_attn_triton(q, k, v, causal)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.causal = causal
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        return (*flash_attn_bwd_triton(q, k, v, o, lse, do, ctx.causal), None)


# ---------------------------------------------------------------- watching the learner's torch ops


# ---------------------------------------------------------------- cases


# ---------------------------------------------------------------- runs and checks


def _ref_softmax(case):
    x, _ = case.args
    return {"y": softmax_spec(torch.from_numpy(x)).numpy()}


def _check_host(got, whole: int, what: str) -> None:
    """Outside torch (NumPy buffers, Python objects) a call may allocate at most a quarter of the
    bytes of the whole matrix it must never form."""
    limit = whole // 4
    if int(got.get("host_peak_bytes", limit + 1)) > limit:
        raise AssertionError(
            f"{what} allocates more than {limit} bytes outside torch (NumPy arrays or Python objects) while it "
            f"runs, a quarter of the {whole} bytes of the whole matrix it must not form. "
            "Stay in torch and work one block at a time: memory spent in NumPy is measured too"
        )


def _check_softmax(case, got, want):
    check_outputs(case, got, want)
    x, block = case.args
    rows, width = x.size // x.shape[-1], x.shape[-1]
    limit = rows * min(block, width)
    if int(got.get("largest_op", limit + 1)) > limit:
        raise AssertionError(
            f"a torch op in online_softmax reads or writes {int(got['largest_op'])} elements; the limit is "
            f"rows x block = {limit}. Keep only a running max and sum per row, slice one block of columns "
            "at a time, and write each block of the output into a tensor made with torch.empty_like(x)"
        )
    if NO_TEMPORARY in case.kind:
        _check_host(got, x.nbytes, "online_softmax")
    _check_softmax_reads(case, got)
    fast = (8 * min(block, width) + 16) * rows * x.itemsize  # 8 column blocks and 16 row vectors
    if int(got.get("peak_bytes", x.nbytes + fast + 1)) > x.nbytes + fast:
        raise AssertionError(
            "online_softmax keeps more torch tensors alive at once than the output and 8 column blocks: keep only "
            "m, l and the block at hand (see section 2, Algorithm 1); copies of the blocks kept for a later pass "
            "are reads in disguise")


def _check_softmax_reads(case, got):
    """Algorithm 1 reads each column block of x twice and never reads its output back."""
    x, block = case.args
    width = x.shape[-1]
    if bool(got.get("y_is_x", False)):
        raise AssertionError("online_softmax returns x itself, overwritten: write the softmax into a new tensor "
                             "made with torch.empty_like(x)")
    reads = np.asarray(got.get("x_reads", np.full(width, 99)))
    for j in range(0, width, block):
        r = int(reads[j:j + block].max(initial=0))
        if r > 2:
            raise AssertionError(
                f"online_softmax reads column block {j // block} of x (columns {j} to {min(j + block, width) - 1}) "
                f"{r} times; the online softmax reads each block twice: once for the running max and sum together "
                "(when the max grows, rescale the sum by e^(m - m')), once to write the output (see section 2, "
                "Algorithm 1). Consecutive torch ops on the same slice count as one read")
    y_reads = int(got.get("y_reads", -1))
    if y_reads < 0:
        raise AssertionError("online_softmax returns a tensor it did not make: write the output block by block "
                             "into a new tensor made with torch.empty_like(x)")
    if y_reads > 0:
        raise AssertionError(
            f"online_softmax reads its output back (up to {y_reads} times per element): write each block of the "
            "output once, as e^(x_j - m) / l with the final m and l, and never read it again (see section 2, "
            "Algorithm 1, line 9)")


def _ref_blocked(case):
    q, k, v, _, causal = case.args
    o, lse = attention_spec(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v), causal)
    return {"o": o.numpy().astype(q.dtype), "lse": lse.numpy().astype(q.dtype)}


def _check_nxn(got, n_q, n_k, what, key="largest_op", heads=1):
    """No torch op touches as many elements as an N_q x N_k score matrix (`heads` of them)."""
    limit = heads * n_q * n_k
    if int(got.get(key, limit)) >= limit:
        whole = f"{heads} x {n_q} x {n_k} scores of every (batch, head)" if heads > 1 else f"N_q x N_k = {n_q} x {n_k} score matrix"
        raise AssertionError(
            f"a torch op in {what} touches {int(got.get(key, -1))} elements, as many as the {whole}: {what} must "
            "never form the scores or probabilities of a whole row of keys at once; work on one block of keys at a time"
        )


def _check_blocked(case, got, want):
    check_outputs(case, got, want)
    q, k, v, block_n, _ = case.args
    if NO_NXN in case.kind:
        _check_nxn(got, q.shape[-2], k.shape[-2], "blocked_attention")
        _check_nxn(got, q.shape[-2], k.shape[-2], "blocked_attention", key="largest_out")
        _check_host(got, q.shape[-2] * k.shape[-2] * q.itemsize, "blocked_attention")
    n_k = k.shape[-2]
    for name, key in (("K", "k_reads"), ("V", "v_reads")):
        reads = np.asarray(got.get(key, np.full(n_k, 99)))
        for j in range(0, n_k, block_n):
            r = int(reads[j:j + block_n].max(initial=0))
            if r > 1:
                raise AssertionError(
                    f"blocked_attention reads key block {j // block_n} of {name} (keys {j} to {min(j + block_n, n_k) - 1}) "
                    f"{r} times; the online softmax reads every key and value block once, in one sweep: keep a "
                    "running max m and, when it grows, rescale l and the output by e^(m - m') (see section 3, "
                    "Algorithm 2). A first sweep for the exact max reads every key block again")
    rows = q.size // q.shape[-1] * q.itemsize  # bytes of one number per query row
    fast = 6 * q.nbytes + 8 * rows * min(block_n, n_k) + 32 * rows  # 6 outputs, 8 blocks of scores, 32 row vectors
    if int(got.get("peak_bytes", fast + 1)) > fast:
        raise AssertionError(
            "blocked_attention keeps more torch tensors alive at once than a few outputs and 8 blocks of scores: "
            "work on one key block at a time (see section 3, Algorithm 2); scores or key blocks kept from an "
            "earlier sweep are reads in disguise")


def _ref_fwd(case):
    q, k, v, causal, dtype = _fwd_parts(case)
    if "timed" in case.kind:
        return {}
    if dtype != "float32":  # the spec sees exactly the rounded 16-bit inputs the kernel sees
        q, k, v = (torch.from_numpy(a).to(getattr(torch, dtype)).double().numpy() for a in (q, k, v))
    o, lse = attention_spec(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v), causal)
    return {"o": o.to(getattr(torch, dtype)).float().numpy(), "lse": lse.float().numpy(),
            "o_dtype": np.array(dtype), "lse_dtype": np.array("float32")}


def _alloc_limit(case) -> int:
    q, k, v, causal, dtype = _fwd_parts(case)
    z, h, n_q, d = q.shape
    itemsize = 4 if dtype == "float32" else 2
    return z * h * n_q * d * itemsize + z * h * n_q * 4 + 1024  # O, lse, and a kilobyte of change


def _check_launched(got, what):
    if int(got.get("launches", 0)) < 1:
        raise AssertionError(f"launched no Triton kernel; {what} must run inside your @triton.jit kernel(s)")


def _compare_16bit(got, want, dtype: str, what: str) -> None:
    """compare() for 16-bit results held as float32 (NumPy has no bfloat16): the same rule with the
    16-bit dtype's tolerance from the table."""
    from autograder.tolerance import tolerance

    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: output has shape {got.shape}, expected shape {want.shape}")
    atol, rtol = tolerance(dtype)
    err = np.abs(got.astype(np.float64) - want)
    bad = ~(err <= atol + rtol * np.abs(want))
    if bad.any():
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(np.where(bad, np.nan_to_num(err, nan=np.inf), -1)), want.shape))
        raise AssertionError(f"{what}: max |err| {np.nanmax(np.where(bad, err, 0)):.3g} at index {idx}, tolerance "
                             f"{atol:g} + {rtol:g}*|expected| for {dtype} ({bad.sum()} of {bad.size} elements wrong)")


def _check_fwd(case, got, want):
    q, k, v, causal, dtype = _fwd_parts(case)
    if "error" in got:
        raise AssertionError(f"raises {got['error']}")
    for key in ("o_dtype", "lse_dtype"):
        if key in want and str(got.get(key)) != str(want[key]):
            raise AssertionError(f"{key[:-6]} has dtype {got.get(key)}, expected {want[key]} (O in q's dtype, lse in float32)")
    if dtype == "float32":
        check_outputs(case, got, want)
    elif want:
        if "o" not in got:
            raise AssertionError("produced no 'o'")
        _compare_16bit(got["o"], want["o"], dtype, "o")
        check_outputs(case, {"lse": got.get("lse")}, {"lse": want["lse"]})
    _check_launched(got, "the forward pass")
    if int(got.get("alloc_bytes", 0)) > _alloc_limit(case):
        raise AssertionError(
            f"the wrapper allocates {int(got['alloc_bytes'])} bytes; O and lse take {_alloc_limit(case) - 1024}. "
            "Allocate only O (q's dtype) and lse (float32), pass the inputs' strides to the kernel instead "
            "of copying them (.contiguous() copies a view), and keep every intermediate inside the kernel"
        )
    if "timed" in case.kind:  # information only
        return
    z, h, n_q, d = q.shape
    n_k = k.shape[-2]
    _check_nxn(got, n_q, n_k, "flash_attn_fwd", heads=z * h)
    rules.kernel_rules(got, kernels={"flash_fwd_kernel"}, launches=1, block_limits=BLOCKS,
                       precision="ieee" if dtype == "float32" else None, see="section 8")
    block_m, block_n = _blocks(got, 0, "flash_fwd_kernel")
    grid = tuple(int(g) for g in np.asarray(got["grids"])[0])
    want_grid = (-(-n_q // block_m), z * h)
    if int(np.prod(grid)) != want_grid[0] * want_grid[1]:
        raise AssertionError(
            f"launched flash_fwd_kernel on a grid of {grid}: one program per block of BLOCK_M = {block_m} queries "
            f"and per (batch, head), a grid of (cdiv(N_q, BLOCK_M), Z * H) = {want_grid} (see section 8)")
    _check_tiles(got, d, "section 8, Algorithm 5, line 5")
    loads = float(np.atleast_1d(got.get("launch_loads", [-1.0]))[0])
    if loads >= 0 and not causal:  # under the interpreter; without causal every program visits every key block
        steps = -(-n_k // block_n)
        if loads < 2 * -(-n_k // MAX_BLOCK):
            raise AssertionError(
                f"flash_fwd_kernel makes {loads:g} loads per program for N_k = {n_k} keys, fewer than a K and a V "
                f"block for each of {-(-n_k // MAX_BLOCK)} key blocks of at most {MAX_BLOCK}: loop over the keys in "
                "blocks of BLOCK_N instead of loading a whole row of keys at once (see section 8, Algorithm 5, line 5)")
        if loads > 2 * steps + 2:
            raise AssertionError(
                f"flash_fwd_kernel makes {loads:g} loads per program for {steps} key blocks of BLOCK_N = {block_n}: "
                "Algorithm 5 loads Q_i once and each K and V block once, in one sweep with a running max (rescale "
                "l and the accumulator by e^(m - m')); a first sweep for the exact max loads every key block "
                "again (see section 8, Algorithm 5, and section 3)")


MAX_BLOCK = 128  # the most keys (or queries) a kernel's tile may hold
BLOCKS = {"BLOCK_M": MAX_BLOCK, "BLOCK_N": MAX_BLOCK}


def _check_tiles(got, d: int, see: str) -> None:
    """No tl.load reads more than MAX_BLOCK rows of D at once, whatever the constexprs are called."""
    widest = np.atleast_1d(got.get("launch_widest_load", np.array([-1])))
    for name, w in zip(np.atleast_1d(got["kernels"]), widest):
        if int(w) > MAX_BLOCK * d:
            raise AssertionError(
                f"{name} loads a tile of {int(w)} elements at once, more than {MAX_BLOCK} rows of D = {d}: load K, V "
                f"(and Q) in blocks of at most {MAX_BLOCK} rows and loop over them ({'see ' + see})")


def _blocks(got, i: int, kernel: str) -> tuple[int, int]:
    """BLOCK_M and BLOCK_N of launch i: the constexprs of the signature given."""
    c = rules.constexprs(got, i)
    for name in BLOCKS:
        if not c.get(name, "").isdigit():
            raise AssertionError(f"launched {kernel} without a {name} constexpr: keep the signature given "
                                 "(BLOCK_M queries and BLOCK_N keys per tile, as tl.constexpr)")
    return int(c["BLOCK_M"]), int(c["BLOCK_N"])


def _ref_bwd(case):
    q, k, v, do, causal = case.args[:5]
    dq, dk, dv = attention_grads_spec(*(torch.from_numpy(a) for a in (q, k, v, do)), causal)
    return {"dq": dq.float().numpy(), "dk": dk.float().numpy(), "dv": dv.float().numpy()}


BWD_KERNELS = ("flash_bwd_dkdv_kernel", "flash_bwd_dq_kernel")


def _check_bwd(case, got, want):
    check_outputs(case, got, want)
    _check_launched(got, "the backward pass")
    q, causal = case.args[0], case.args[4]
    z, h, n, d = q.shape
    limit = 3 * q.nbytes + z * h * n * 4 + 1024  # dQ, dK, dV, delta and a kilobyte
    if int(got.get("alloc_bytes", 0)) > limit:
        raise AssertionError(
            f"the wrapper allocates {int(got['alloc_bytes'])} bytes; dQ, dK, dV and delta take {limit - 1024}. "
            "Allocate only those, and keep every intermediate inside the kernels (see section 6)")
    _check_nxn(got, n, n, "flash_attn_bwd", heads=z * h)
    rules.kernel_rules(got, launches=(2, 3), block_limits=BLOCKS, precision="ieee", see="section 6")
    _check_tiles(got, d, "section 6, Algorithms 3 and 4")
    names = [str(k) for k in np.atleast_1d(got["kernels"])]
    for kernel, algorithm in zip(BWD_KERNELS, ("3", "4")):
        if names.count(kernel) != 1:
            raise AssertionError(
                f"launched {kernel} {names.count(kernel)} times: once, with one program per "
                f"{'key' if algorithm == '3' else 'query'} block of every (batch, head) (see section 6, Algorithm "
                f"{algorithm}); the backward pass runs in your kernels: the dK, dV pass, the dQ pass, and at most "
                "one more of yours for delta")
    loads = np.atleast_1d(got.get("launch_loads", np.array([-1.0])))
    if LONG_KEYS in case.kind and not causal:
        for i, kernel in enumerate(names):
            if kernel in BWD_KERNELS and 0 <= loads[i] < 2 * -(-n // MAX_BLOCK):
                other = "query" if kernel == BWD_KERNELS[0] else "key"
                raise AssertionError(
                    f"{kernel} makes {loads[i]:g} loads per program for N = {n}: loop over the {other} blocks, at "
                    f"most {MAX_BLOCK} {other}s each, instead of loading a whole row at once (see section 6)")


def _ref_decode(case):
    q, k, v, _, dtype = _decode_parts(case)
    if dtype != "float32":
        q, k, v = (torch.from_numpy(a).to(getattr(torch, dtype)).double().numpy() for a in (q, k, v))
    o, lse = attention_spec(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v))
    return {"o": o.to(getattr(torch, dtype)).float().numpy(), "lse": lse.float().numpy(),
            "o_dtype": np.array(dtype), "lse_dtype": np.array("float32")}


DECODE_KERNEL = "flash_decode_kernel"


def _check_decode(case, got, want):
    q, k, v, num_splits, dtype = _decode_parts(case)
    z, h, n_q, d = q.shape
    n_k = k.shape[-2]
    if "error" in got:
        raise AssertionError(f"raises {got['error']}")
    for key in ("o_dtype", "lse_dtype"):
        if str(got.get(key)) != str(want[key]):
            raise AssertionError(f"{key[:-6]} has dtype {got.get(key)}, expected {want[key]} (O in q's dtype, lse in float32)")
    if dtype == "float32":
        check_outputs(case, got, want)
    else:
        require(got, want)
        _compare_16bit(got["o"], want["o"], dtype, "o")
        check_outputs(case, {"lse": got["lse"]}, {"lse": want["lse"]})
    _check_launched(got, "split-KV decoding")
    rules.kernel_rules(got, launches=(1, 2), host=False, block_limits={"BLOCK_N": MAX_BLOCK},
                       precision="ieee" if dtype == "float32" else None, see="section 10")
    names = [str(n) for n in np.atleast_1d(got["kernels"])]
    if names.count(DECODE_KERNEL) != 1 or names[0] != DECODE_KERNEL:
        raise AssertionError(f"launched {names}: launch {DECODE_KERNEL} once, first, with one program per (split, "
                             "batch, head); then merge the splits' partial states in a second kernel of yours or "
                             "with a few torch ops on them (see section 10)")
    reads = [str(n) for n in np.atleast_1d(got.get("host_reads_inputs", np.array([], str)))]
    if reads:
        raise AssertionError(f"a torch op on the host ({', '.join(reads[:4])}) reads q, k or v: the splits' kernel "
                             "reads them, and the merge works on the partial states alone (see section 10)")
    _check_nxn(got, n_q, n_k, "flash_decode", heads=z * h)
    _check_nxn(got, n_q, n_k, "flash_decode", key="largest_out", heads=z * h)
    c = rules.constexprs(got, 0)
    split = -(-n_k // num_splits)
    if c.get("SPLIT") != str(split):
        raise AssertionError(f"launched {DECODE_KERNEL} with SPLIT = {c.get('SPLIT')} for N_k = {n_k} keys and "
                             f"num_splits = {num_splits}: keep the signature's SPLIT constexpr, the keys of one split, "
                             "ceil(N_k / num_splits) (see section 10)")
    splits = -(-n_k // split)
    grid = tuple(int(g) for g in np.asarray(got["grids"])[0])
    if int(np.prod(grid)) != splits * z * h:
        raise AssertionError(f"launched {DECODE_KERNEL} on a grid of {grid}: one program per split and (batch, head), "
                             f"(cdiv(N_k, SPLIT), Z * H) = {(splits, z * h)} (see section 10)")
    _check_tiles(got, d, "section 10")
    rows = np.atleast_1d(got.get("kv_rows_per_program", np.array([-1])))
    shared = np.atleast_1d(got.get("kv_row_programs", np.array([-1])))
    if int(rows[0]) > split:
        raise AssertionError(f"a program of {DECODE_KERNEL} loads {int(rows[0])} key rows of K or V, more than the "
                             f"SPLIT = {split} keys of its split: each program reads only its own split of one head "
                             "(and masks the keys past the split's end, not just past N_k) (see section 10)")
    if int(shared[0]) > 1:
        raise AssertionError(f"{int(shared[0])} programs of {DECODE_KERNEL} load the same key row: the splits must not "
                             "overlap; split s holds keys s * SPLIT to (s + 1) * SPLIT - 1 (see section 10)")
    if len(rows) > 1 and int(rows[1]) > 0:
        raise AssertionError(f"{names[1]} loads rows of K or V: the merge reads only the splits' partial states "
                             "(m, l, O~) or (O_s, lse_s) (see section 10)")


EXERCISES = {name: TASKS[name].graded(ref, check) for name, ref, check in [
    ("online_softmax", _ref_softmax, _check_softmax),
    ("blocked_attention", _ref_blocked, _check_blocked),
    ("flash_attn_fwd", _ref_fwd, _check_fwd),
    ("flash_attn_bwd", _ref_bwd, _check_bwd),
    ("flash_decode", _ref_decode, _check_decode),
]}


# ---------------------------------------------------------------- benchmark (make bench)


def _sdpa(q, k, v, causal):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = SDPBackend.FLASH_ATTENTION if CUDA else SDPBackend.MATH
    with sdpa_kernel(backend):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)


def _gpu_peak_mib(fn) -> float:
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    try:
        fn()
        torch.cuda.synchronize()
    except torch.cuda.OutOfMemoryError:
        return float("nan")
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def bench(timer, cuda: bool) -> dict:
    """Forward TFLOP/s (4 Z H N^2 D per call, halved when causal) and peak memory above the inputs
    (MiB, Z = 1, H = 16) of the Triton kernel, torch SDPA (flash backend on CUDA) and naive
    attention, fp16 on a GPU. Timing batches keep Z * N = 16384 tokens per head."""
    sizes = [512 * 2**i for i in range(6)] if cuda else [64, 128]
    dims = (64, 128) if cuda else (16,)
    dtype = torch.float16 if cuda else torch.float32
    heads = 16 if cuda else 2
    methods = {"triton": flash_attn_triton, "sdpa": _sdpa, "naive": naive_attention}
    rows = {"sizes": sizes, "dtype": str(dtype).replace("torch.", ""), "heads": str(heads),
            "tokens_per_head": "16384" if cuda else "N"}
    gen = torch.Generator().manual_seed(0)
    for d in dims:
        for causal in (False, True):
            tag = f"d{d}_{'causal' if causal else 'full'}"
            for name in methods:
                rows[f"{name}_{tag}_tflops"] = []
            for n in sizes:
                z = max(1, 16384 // n) if cuda else 1
                q, k, v = (torch.randn(z, heads, n, d, generator=gen).to(DEVICE, dtype) for _ in range(3))
                for name, fn in methods.items():
                    try:
                        seconds = timer(lambda: fn(q, k, v, causal))
                        rows[f"{name}_{tag}_tflops"].append(_tflops(seconds, z, heads, n, d, causal))
                    except torch.cuda.OutOfMemoryError:
                        rows[f"{name}_{tag}_tflops"].append(float("nan"))
                del q, k, v
        for name in methods:
            rows[f"{name}_d{d}_mib"] = []
        for n in sizes:
            q, k, v = (torch.randn(1, heads, n, d, generator=gen).to(DEVICE, dtype) for _ in range(3))
            for name, fn in methods.items():
                if cuda:
                    mib = _gpu_peak_mib(lambda: fn(q, k, v, False))
                else:
                    mib = peak_bytes(fn, q, k, v, False) / 2**20
                rows[f"{name}_d{d}_mib"].append(mib)
            del q, k, v
    return rows


# ---------------------------------------------------------------- gpu-check


def gpu_checks(small: bool) -> dict:
    """The forward and backward kernels at GPU sizes in fp16 and bf16 (or small fp32 ones in the
    interpreter) against the float64 spec, with the 16-bit dtype's tolerance from the table."""
    from autograder.tolerance import compare, tolerance

    def fwd_bwd(n: int, d: int, dtype, causal: bool):
        def check():
            gen = torch.Generator().manual_seed(n + d)
            q, k, v, do = (torch.randn(1, 2, n, d, generator=gen).to(dtype) for _ in range(4))
            o, lse = flash_attn_triton(*(t.to(DEVICE) for t in (q, k, v)), causal)
            want_o, want_lse = attention_spec(q, k, v, causal)
            name = str(dtype).split(".")[-1]
            atol, rtol = tolerance(name if name != "bfloat16" else "bfloat16")
            err = (o.double().cpu() - want_o).abs()
            assert bool((err <= atol + rtol * want_o.abs()).all()), f"O off by up to {float(err.max()):.3g}"
            compare(lse.float().cpu().numpy(), want_lse.float().numpy(), "lse")
            dq, dk, dv = flash_attn_bwd_triton(*(t.to(DEVICE) for t in (q, k, v)), o, lse, do.to(DEVICE), causal)
            for got, want, what in zip((dq, dk, dv), attention_grads_spec(q, k, v, do, causal), ("dQ", "dK", "dV")):
                scale = float(want.abs().max())  # gradients sum over N: compare relative to their size
                err = float((got.double().cpu() - want).abs().max())
                assert err <= 10 * rtol * max(scale, 1.0), f"{what} off by {err:.3g} (max |{what}| {scale:.3g})"
        return check

    if small:
        return {"fwd+bwd N=80 D=16 float32 causal": fwd_bwd(80, 16, torch.float32, True)}
    return {f"fwd+bwd N={n} D={d} {str(dt).split('.')[-1]} causal={c}": fwd_bwd(n, d, dt, c)
            for n, d in ((1024, 64), (2000, 128)) for dt in (torch.float16, torch.bfloat16) for c in (False, True)}


def targets(figures: dict) -> list[tuple[str, bool]]:
    """Chapter 04's GPU target: the forward kernel at N = 4096, D = 64 (non-causal) reaches at least
    0.7x the TFLOP/s of torch's flash SDPA (at the largest N and D measured, off a GPU)."""
    sizes = figures["sizes"]
    i = sizes.index(4096) if 4096 in sizes else len(sizes) - 1
    d = 64 if "triton_d64_full_tflops" in figures else 16
    mine, sdpa = figures[f"triton_d{d}_full_tflops"][i], figures[f"sdpa_d{d}_full_tflops"][i]
    return [(f"forward {mine / sdpa:.2f}x SDPA at N={sizes[i]}, D={d} (target >= 0.7x)", mine >= 0.7 * sdpa)]
