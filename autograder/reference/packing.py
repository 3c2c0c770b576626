"""Chapter 07: sequence packing and remove-padding.

Specs: first-fit decreasing written as the definition reads (scan the open bins in order), the
unpad/pad pair by boolean indexing, per-sequence attention in float64 (one softmax per sequence),
and the packed batch built sample by sample. Fast: a Triton variable-length attention forward
(one program per query block, sequence and head; online softmax over the sequence's own keys),
which compiles for CUDA and runs in Triton's interpreter on a CPU.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from autograder.device import CUDA, DEVICE
import triton  # noqa: E402  (after autograder.device, always)
import triton.language as tl  # noqa: E402

from autograder.cases.packing import (  # noqa: F401  (re-exported for the page)
    BATCH_KEYS, COLLATE_CASE, IGNORE, OPS_BUDGET, OPS_CASE, SHARP, WORK_CASE, ffd_budget, TASKS, Attention,
    AttentionWatch, TinyConfig, TinyDecoder, TorchOps, attention_like, attention_varlen, packed_attention, packed_loss,
    padded_loss, positions_of, tiny_decoder, _varlen_parts)
from autograder import rules
from autograder.exercise import Case, check_outputs, require
from autograder.tolerance import compare

# ---------------------------------------------------------------- padding and bin packing


def padding_efficiency(lengths) -> float:
    """Real tokens over padded slots when one batch is padded to its longest: sum l / (B max l)."""
    lengths = np.asarray(lengths)
    return float(lengths.sum() / (len(lengths) * lengths.max())) if len(lengths) else 1.0


def _check_packing_input(lengths, capacity: int) -> None:
    if capacity <= 0:
        raise ValueError(f"capacity must be positive, got {capacity}")
    for i, n in enumerate(lengths):
        if n < 0 or n > capacity:
            raise ValueError(f"length {n} of item {i} is outside [0, capacity = {capacity}]")


def ffd(lengths: list[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing: items by length descending (ties by index), each into the first open
    bin with room, else a new bin. Item indices per bin, bins in opening order. O(n * bins)."""
    _check_packing_input(lengths, capacity)
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins, room = [], []
    for i in order:
        for b, free in enumerate(room):
            if lengths[i] <= free:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(capacity - lengths[i])
    return bins


def next_fit(lengths, capacity: int) -> list[list[int]]:
    """Streaming packing: one open buffer, flushed when the next item does not fit. It reads the
    items once, in order, holding one bin: what a data loader can do on an endless stream."""
    _check_packing_input(lengths, capacity)
    bins, current, used = [], [], 0
    for i, n in enumerate(lengths):
        if current and used + n > capacity:
            bins.append(current)
            current, used = [], 0
        current.append(i)
        used += n
    return bins + ([current] if current else [])


# ---------------------------------------------------------------- unpad / pad


def unpad(hidden: torch.Tensor, attention_mask: torch.Tensor):
    """(values (nnz, ...), indices int64, cu_seqlens int32 (B + 1,), max_seqlen int)."""
    mask = attention_mask.bool()
    seqlens = mask.sum(dim=1)  # (B,)
    indices = mask.flatten().nonzero().flatten()  # (nnz,) row-major positions in B * S
    cu = F.pad(seqlens.cumsum(0), (1, 0)).to(torch.int32)
    values = hidden.flatten(0, 1)[indices]
    return values, indices, cu, int(seqlens.max()) if seqlens.numel() else 0


def pad(values: torch.Tensor, indices: torch.Tensor, batch: int, seqlen: int) -> torch.Tensor:
    """(batch, seqlen, ...) with values at indices and zeros elsewhere (differentiable)."""
    out = values.new_zeros((batch * seqlen, *values.shape[1:]))
    return out.index_put((indices,), values).view(batch, seqlen, *values.shape[1:])


# ---------------------------------------------------------------- varlen attention: spec


def varlen_attention_spec(q, k, v, cu_seqlens, causal: bool = False, scale: float | None = None):
    """softmax(s q k^T) v for each sequence alone, in float64: q, k, v (T, H, D)."""
    q, k, v = (torch.as_tensor(t).double() for t in (q, k, v))
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    out = torch.zeros_like(q)
    bounds = torch.as_tensor(cu_seqlens).tolist()
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b == a:
            continue
        s = torch.einsum("ihd,jhd->hij", q[a:b], k[a:b]) * scale  # (H, L, L)
        if causal:
            s = s.masked_fill(torch.ones(b - a, b - a, dtype=torch.bool).triu(1), float("-inf"))
        out[a:b] = torch.einsum("hij,jhd->ihd", torch.softmax(s, -1), v[a:b])
    return out


def block_diagonal_mask(cu_seqlens, causal: bool = True) -> torch.Tensor:
    """The (T, T) boolean mask that packed attention implies: True where query i may see key j."""
    bounds = torch.as_tensor(cu_seqlens).long()
    t = int(bounds[-1])
    seq = torch.bucketize(torch.arange(t), bounds[1:], right=True)  # (T,) sequence of each token
    mask = seq[:, None] == seq[None, :]
    return mask & torch.ones(t, t, dtype=torch.bool).tril() if causal else mask


# ---------------------------------------------------------------- varlen attention: Triton


@triton.jit
def varlen_fwd_kernel(
    Q, K, V, O,  # (T, H, D) packed tokens; O written
    CU,  # (N + 1,) int32: sequence s is tokens CU[s] .. CU[s + 1] - 1
    stride_qt, stride_qh, stride_qd,  # q's strides, in elements
    stride_kt, stride_kh, stride_kd,  # k's strides
    stride_vt, stride_vh, stride_vd,  # v's strides
    stride_ot, stride_oh, stride_od,  # o's strides
    qk_scale,  # softmax scale times log2(e), so that exp2 gives exp
    D: tl.constexpr,  # head dimension
    BLOCK_M: tl.constexpr,  # queries per program
    BLOCK_N: tl.constexpr,  # keys per loop step
    CAUSAL: tl.constexpr,  # key j <= query i within the sequence
    PRECISION: tl.constexpr,  # tl.dot's input precision: "ieee" for fp32
):
    pid_m = tl.program_id(0)  # which query block of the sequence
    seq = tl.program_id(1)  # which sequence
    h = tl.program_id(2)  # which head
    start = tl.load(CU + seq)
    n = tl.load(CU + seq + 1) - start  # this sequence's length
    if pid_m * BLOCK_M < n:  # programs past the sequence's end have nothing to do
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,) positions in the sequence
        offs_n = tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, D)
        rows = offs_m[:, None] < n  # the sequence's own end, not the packed one
        q = tl.load(Q + (start + offs_m)[:, None] * stride_qt + h * stride_qh + offs_d[None, :] * stride_qd,
                    mask=rows, other=0.0)  # (BLOCK_M, D)
        m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
        l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
        acc = tl.zeros([BLOCK_M, D], dtype=tl.float32)
        hi = tl.minimum((pid_m + 1) * BLOCK_M, n) if CAUSAL else n
        for start_n in range(0, hi, BLOCK_N):
            cols = start_n + offs_n  # (BLOCK_N,)
            k = tl.load(K + (start + cols)[None, :] * stride_kt + h * stride_kh + offs_d[:, None] * stride_kd,
                        mask=cols[None, :] < n, other=0.0)  # (D, BLOCK_N)
            s = tl.dot(q, k, input_precision=PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N), log2 units
            keep = cols[None, :] < n
            if CAUSAL:
                keep = keep & (cols[None, :] <= offs_m[:, None])
            s = tl.where(keep, s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))  # finite: key 0 is seen by every row
            alpha = tl.math.exp2(m_i - m_new)
            p = tl.math.exp2(s - m_new[:, None])  # (BLOCK_M, BLOCK_N)
            l_i = l_i * alpha + tl.sum(p, 1)
            v = tl.load(V + (start + cols)[:, None] * stride_vt + h * stride_vh + offs_d[None, :] * stride_vd,
                        mask=cols[:, None] < n, other=0.0)  # (BLOCK_N, D)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
            m_i = m_new
        acc = acc / l_i[:, None]
        tl.store(O + (start + offs_m)[:, None] * stride_ot + h * stride_oh + offs_d[None, :] * stride_od,
                 acc.to(O.dtype.element_ty), mask=rows)


def _blocks(d: int, dtype: torch.dtype) -> dict:
    """Big blocks in the interpreter (its time grows with programs x loop steps), the usual
    settings on a GPU."""
    if not CUDA:
        return dict(BLOCK_M=64, BLOCK_N=64)
    if dtype == torch.float32:
        return dict(BLOCK_M=64, BLOCK_N=32, num_warps=4, num_stages=2)
    return dict(BLOCK_M=128, BLOCK_N=64, num_warps=4 if d <= 64 else 8, num_stages=3)


def varlen_attention_triton(q, k, v, cu_seqlens, max_seqlen: int, causal: bool = False, scale: float | None = None):
    """Attention of packed sequences: q, k, v (T, H, D), any strides, D in {16, 32, 64, 128};
    cu_seqlens (N + 1,) int32 on q's device. Returns (T, H, D) in q's dtype; allocates only that."""
    t, h, d = q.shape
    if k.shape != q.shape or v.shape != q.shape:
        raise ValueError(f"q, k, v must have one shape (T, H, D), got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if d not in (16, 32, 64, 128):
        raise ValueError(f"head dimension {d} is not one of 16, 32, 64, 128")
    if cu_seqlens.dtype != torch.int32 or cu_seqlens.dim() != 1:
        raise ValueError("cu_seqlens must be a 1-D int32 tensor [0, l_0, l_0 + l_1, ..., T]")
    o = torch.empty((t, h, d), dtype=q.dtype, device=q.device)
    n_seq = cu_seqlens.numel() - 1
    if t == 0 or n_seq < 1 or max_seqlen < 1:
        return o
    scale = d ** -0.5 if scale is None else scale
    cfg = _blocks(d, q.dtype)
    grid = (triton.cdiv(max_seqlen, cfg["BLOCK_M"]), n_seq, h)
    varlen_fwd_kernel[grid](q, k, v, o, cu_seqlens, *q.stride(), *k.stride(), *v.stride(), *o.stride(),
                            scale * 1.4426950408889634, D=d, CAUSAL=causal,
                            PRECISION="ieee" if q.dtype == torch.float32 else "tf32", **cfg)
    return o


def padded_attention(q, k, v, key_mask, causal: bool = True):
    """The padded baseline: (B, H, S, D) with a (B, S) key mask, through torch's SDPA (it builds the
    (B, 1, S, S) boolean mask, and computes the padding rows too)."""
    s = q.shape[-2]
    allowed = key_mask.bool()[:, None, None, :]  # (B, 1, 1, S)
    if causal:
        allowed = allowed & torch.ones(s, s, dtype=torch.bool, device=q.device).tril()
    allowed = allowed | torch.eye(s, dtype=torch.bool, device=q.device)  # padding rows see themselves
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)


# ---------------------------------------------------------------- the packed batch


def collate(samples: list[dict], capacity: int) -> dict:
    """Samples packed by first-fit decreasing into rows of `capacity` tokens (see the exercise)."""
    if capacity <= 0:
        raise ValueError(f"capacity must be positive, got {capacity}")
    lengths = [len(s["input_ids"]) for s in samples]
    if any(n == 0 for n in lengths):
        raise ValueError("a sample is empty")
    rows = ffd(lengths, capacity)
    shape = (len(rows), capacity)
    ids, pos, mask = (torch.zeros(shape, dtype=torch.int64) for _ in range(3))
    labels = torch.full(shape, IGNORE, dtype=torch.int64)
    seqlens = []
    for r, row in enumerate(rows):
        col = 0
        for i in row:
            x = torch.tensor(samples[i]["input_ids"], dtype=torch.int64)
            n = len(x)
            ids[r, col:col + n] = x
            pos[r, col:col + n] = torch.arange(n)
            labels[r, col:col + n - 1] = x[1:]
            mask[r, col:col + n] = 1
            seqlens.append(n)
            col += n
    cu = torch.tensor([0, *np.cumsum(seqlens).tolist()], dtype=torch.int32)
    return {"input_ids": ids, "position_ids": pos, "labels": labels, "attention_mask": mask, "cu_seqlens": cu}


def flatten_collate(samples: list[dict]) -> dict:
    """A flattening collator (transformers' DataCollatorWithFlattening with return_flash_attn_kwargs):
    every sample end to end in one (1, T) row, no padding, positions restarting per sample, labels
    the next token of the same sample (-100 at each sample's last), and the boundaries as the
    keyword arguments a varlen attention reads."""
    ids = [torch.as_tensor(s["input_ids"], dtype=torch.int64) for s in samples]
    if any(x.numel() == 0 for x in ids):
        raise ValueError("a sample is empty")
    labels = [torch.cat([x[1:], x.new_full((1,), IGNORE)]) for x in ids]
    cu = torch.tensor([0, *np.cumsum([x.numel() for x in ids]).tolist()], dtype=torch.int32)
    longest = max((x.numel() for x in ids), default=0)
    return {"input_ids": torch.cat(ids)[None], "position_ids": torch.cat([torch.arange(x.numel()) for x in ids])[None],
            "labels": torch.cat(labels)[None], "cu_seq_lens_q": cu, "cu_seq_lens_k": cu,
            "max_length_q": longest, "max_length_k": longest}


def boundaries_from_positions(position_ids: torch.Tensor):
    """(cu_seqlens int32, max_seqlen int) of (B, T) positions that restart at 0 per sample."""
    pos = torch.as_tensor(position_ids)
    if pos.dim() != 2:
        raise ValueError(f"position_ids must be (B, T), got {tuple(pos.shape)}")
    if pos.numel() and bool((pos[:, 0] != 0).any()):
        raise ValueError("a row starts mid-sample: its first position is not 0")
    step_ok = (pos[:, 1:] == 0) | (pos[:, 1:] == pos[:, :-1] + 1)
    if not bool(step_ok.all()):
        raise ValueError("a position is neither 0 (a new sample) nor the previous one plus 1")
    flat = pos.flatten()
    starts = (flat == 0).nonzero().flatten()
    cu = torch.cat([starts, starts.new_tensor([flat.numel()])]).to(torch.int32)
    return cu, int((cu[1:] - cu[:-1]).max()) if cu.numel() > 1 else 0


def token_sum_losses(micro_batches: list[dict]) -> list[torch.Tensor]:
    """Per micro-batch: its summed token cross-entropy over the labels != -100, divided by the
    number of such labels in the whole batch, so that the losses sum to the full batch's token
    mean and their accumulated gradients are the full batch's."""
    if not micro_batches:
        raise ValueError("no micro-batches")
    n_items = sum(int((m["labels"] != IGNORE).sum()) for m in micro_batches)
    if n_items == 0:
        raise ValueError("no label in the batch is real: the mean over real tokens is undefined")
    return [F.cross_entropy(m["logits"].flatten(0, -2), m["labels"].flatten(), ignore_index=IGNORE,
                            reduction="sum") / n_items for m in micro_batches]


def mean_of_means(micro_batches: list[dict]) -> list[torch.Tensor]:
    """The trap: each micro-batch's own token mean, divided by the number of micro-batches (what
    accumulating `loss / accumulation_steps` does)."""
    return [F.cross_entropy(m["logits"].flatten(0, -2), m["labels"].flatten(), ignore_index=IGNORE)
            / len(micro_batches) for m in micro_batches]


# ---------------------------------------------------------------- references and checks (the grader's process)


def _check_unchanged(got, what: str) -> None:
    if bool(got.get("changed", False)):
        raise AssertionError(f"{what} modified its inputs; build new lists and tensors instead")


def _check_raised(case, got, hint: str) -> None:
    require(got, {"raised": None})
    if str(got["raised"]) != "ValueError":
        raise AssertionError(f"{'returned' if str(got['raised']).startswith('returned') else 'raised ' + str(got['raised'])}"
                             f" instead of raising ValueError; {hint}")


def _ref_ffd(case: Case):
    lengths, capacity = case.args
    if "raise" in case.kind:
        return {"raised": np.array("ValueError")}
    bins = ffd(lengths, capacity)
    return {"bins": np.array([i for b in bins for i in b], dtype=np.int64),
            "sizes": np.array([len(b) for b in bins], dtype=np.int64)}


def _check_ffd(case: Case, got, want):
    _check_unchanged(got, "first_fit_decreasing")
    if "raise" in case.kind:
        return _check_raised(case, got, "check capacity > 0 first, then every length in [0, capacity]")
    lengths, capacity = case.args
    if WORK_CASE in case.kind and int(got.get("work", 0)) > ffd_budget(lengths, capacity):
        raise AssertionError(
            f"stopped after {ffd_budget(lengths, capacity)} Python lines for 10^4 items (2 n B + 10^5, B a bound on "
            "the bins): keep the free room of each bin in a list and scan it, instead of re-summing bins' items or "
            "re-sorting for every item")
    require(got, want)
    flat, sizes = got["bins"], got["sizes"]
    if sorted(flat.tolist()) != list(range(len(lengths))):
        raise AssertionError("every item index must appear in exactly one bin")
    ends = np.cumsum(sizes)
    for b, (a, e) in enumerate(zip(ends - sizes, ends)):
        if sum(lengths[i] for i in flat[a:e]) > capacity:
            raise AssertionError(f"bin {b} holds more than the capacity")
    if len(sizes) != len(want["sizes"]):
        raise AssertionError(f"uses {len(sizes)} bins where first-fit decreasing uses {len(want['sizes'])}")
    want_ends = np.cumsum(want["sizes"])
    for b, (a, e, wa, we) in enumerate(zip(ends - sizes, ends, want_ends - want["sizes"], want_ends)):
        if flat[a:e].tolist() != want["bins"][wa:we].tolist():
            raise AssertionError(
                f"bin {b} differs from first-fit decreasing's: sort by length descending with ties by index, put "
                "each item into the lowest-numbered open bin with room (not the fullest one), and list a bin's "
                "items in the order they were placed")


def _ref_unpad(case: Case):
    x, mask = case.args
    hidden = torch.from_numpy(x)
    values, indices, cu, max_seqlen = unpad(hidden, torch.from_numpy(mask))
    keep = torch.from_numpy(mask.astype(bool)).reshape(mask.shape + (1,) * (x.ndim - 2))
    g = np.random.default_rng(0).standard_normal(x.shape).astype(x.dtype)
    return {"values": values.numpy(), "indices": indices.numpy(), "cu_seqlens": cu.numpy(),
            "max_seqlen": np.array(max_seqlen), "max_seqlen_type": np.array("int"),
            "padded": (hidden * keep).numpy(), "grad_hidden": (torch.from_numpy(g) * keep).numpy(),
            "grad_values": torch.from_numpy(g).flatten(0, 1)[indices].numpy()}


_UNPAD_HINTS = {
    "values": "values are hidden's rows at the real tokens, row-major, in hidden's dtype",
    "indices": "indices are the nonzero positions of the flattened (B * S) mask, int64",
    "cu_seqlens": "cu_seqlens is int32 [0, cumsum(seqlens)] with B + 1 entries, an empty row repeating an entry",
    "max_seqlen": "max_seqlen is the longest row's count of real tokens (0 when there are none)",
    "max_seqlen_type": "max_seqlen must be a Python int (int(...)), not a tensor",
    "padded": "pad_input puts each value back at its index and zeros elsewhere, in values' dtype",
    "grad_hidden": "the gradient must flow from pad_input's output back to hidden (index, do not copy out of autograd)",
    "grad_values": "the gradient must flow from pad_input's output back to values",
}


def _check_hinted(got, want, hints: dict, exact: bool = True):
    for key, w in want.items():
        if key in ("grad_hidden", "grad_values") and np.asarray(got[key]).size == 0 and w.size:
            raise AssertionError(f"{key}: no gradient; {hints[key]}")
        try:
            compare(got[key], w, key, exact=exact and w.dtype.kind != "f")
        except AssertionError as e:
            raise AssertionError(f"{e}; {hints[key]}" if key in hints else str(e)) from None


def _check_unpad(case: Case, got, want):
    require(got, want)
    _check_unchanged(got, "unpad_input")
    _check_hinted(got, want, _UNPAD_HINTS)


def _ref_varlen(case: Case):
    q, k, v, cu, max_seqlen, causal, scale, dtype = _varlen_parts(case)
    if dtype:  # the spec sees exactly the rounded 16-bit inputs the kernel sees
        q, k, v = (torch.from_numpy(a).to(getattr(torch, dtype)).double() for a in (q, k, v))
        out = varlen_attention_spec(q, k, v, cu, causal, scale).to(getattr(torch, dtype)).float()
        return {"out": out.numpy(), "out_dtype": np.array(dtype)}
    return {"out": varlen_attention_spec(q, k, v, cu, causal, scale).float().numpy(), "out_dtype": np.array("float32")}


def _tt_limit(case: Case) -> int:
    t = case.args[0].shape[0]
    return t * t // 2  # bytes: half of a T x T boolean mask, an eighth of the fp32 scores


RUNNING_MAX = ("exp of a raw score overflows float32 past 88.7: keep each row's running max m, take "
               "p = exp(s - m_new) and rescale the sum and the accumulator by exp(m_old - m_new) at every key "
               "block (the online softmax of chapter 04, section 2; see section 8)")


def _check_varlen_values(case: Case, got, want) -> None:
    dtype = _varlen_parts(case)[-1]
    g = np.asarray(got["out"])
    if SHARP in case.kind and g.shape == want["out"].shape and not np.isfinite(g).all():
        raise AssertionError(f"out holds NaN or inf where the scores exceed 100: {RUNNING_MAX}")
    if dtype:  # 16-bit results travel as float32: compare them with the 16-bit dtype's tolerance
        from autograder.tolerance import tolerance

        atol, rtol = tolerance(dtype)
        g, w = np.asarray(got["out"], np.float64), np.asarray(want["out"], np.float64)
        if g.shape != w.shape or not np.all(np.abs(g - w) <= atol + rtol * np.abs(w)):
            raise AssertionError(f"out: wrong values for {dtype} inputs (tolerance {atol:g} + {rtol:g}*|expected|)")
    else:
        check_outputs(case, {"out": got["out"]}, {"out": want["out"]})


BLOCK_LIMIT = 128  # keys (and queries) per block: a sequence of 300 tokens takes three key blocks or more


def _check_varlen_launch(case: Case, got) -> None:
    """One launch of varlen_kernel over every sequence, its grid, its blocks, and one pass over the keys."""
    q, _, _, cu, max_seqlen, _, _, _ = _varlen_parts(case)
    n_seq, heads = len(cu) - 1, q.shape[1]
    names = [str(k) for k in np.atleast_1d(got["kernels"])]
    n = int(got["launches"])
    if n == 0:
        raise AssertionError("launched no Triton kernel; the attention must run inside your @triton.jit varlen_kernel")
    if n > 1:
        name = names[0] if len(set(names)) == 1 else "kernels"
        raise AssertionError(f"launched {name} {n} times for {n_seq} sequences: one launch must cover every "
                             "sequence through cu_seqlens (a grid axis over the sequences), see section 8")
    rules.kernel_rules(got, kernels={"varlen_kernel"}, launches=1, host=True,
                       block_limits={"BLOCK_N": BLOCK_LIMIT, "BLOCK_M": BLOCK_LIMIT}, precision="ieee", see="section 8")
    if float(got["loads_per_program"]) >= 0 and not np.atleast_1d(got["dot_precisions"]).size:  # interpreted
        raise AssertionError("varlen_kernel ran no tl.dot: the scores q k^T and the products p v are tl.dot calls "
                             "on blocks inside the kernel, see section 8")
    consts = rules.constexprs(got, 0)
    grid = [int(x) for x in np.asarray(got["grids"])[0]]
    bm = int(consts["BLOCK_M"]) if consts.get("BLOCK_M", "").isdigit() else None
    want = [-(-max_seqlen // bm) if bm else grid[0], n_seq, heads]
    if grid != want:
        raise AssertionError(f"launched varlen_kernel on a grid of {tuple(grid)} for {n_seq} sequences and {heads} "
                             "head(s): launch one program per (query block, sequence, head), a grid of "
                             "(cdiv(max_seqlen, BLOCK_M), N, H), see section 8")
    loads = int(got.get("kernel_loads", -1))
    bn = int(consts["BLOCK_N"]) if consts.get("BLOCK_N", "").isdigit() else None
    if loads >= 0 and bm and bn:
        lengths = np.diff(cu)
        one_pass = 4 * grid[0] * n_seq * heads + heads * int(sum(-(-n // bm) * 2 * -(-n // bn) for n in lengths))
        if loads > one_pass:
            raise AssertionError(f"varlen_kernel ran {loads} tl.load calls where one pass over the keys takes at "
                                 f"most {one_pass} (a few per program, then K and V once per key block): read "
                                 "each key block once and keep a running max instead of finding the row's max "
                                 "in a first pass (the online softmax, chapter 04 section 2; see section 8)")


def _check_varlen(case: Case, got, want):
    require(got, want)
    _check_unchanged(got, "varlen_attention")
    if str(got["out_dtype"]) != str(want["out_dtype"]):
        raise AssertionError(f"the output has dtype {got['out_dtype']}, expected q's dtype {want['out_dtype']}")
    _check_varlen_values(case, got, want)
    ops = [str(o) for o in np.atleast_1d(got.get("attention_ops", np.array([], dtype=str)))]
    if ops:
        raise AssertionError(f"ran the torch op(s) {', '.join(ops)}: {NO_LIBRARY}")
    if want["out"].size:
        _check_varlen_launch(case, got)
    t = case.args[0].shape[0]
    if "T x T" in case.kind:
        if int(got.get("largest_out", t * t)) >= t * t:
            raise AssertionError(f"a torch op made a tensor of {int(got['largest_out'])} elements, as many as the "
                                 f"T x T = {t} x {t} mask of the packed batch; pass cu_seqlens to the kernel instead")
        if int(got.get("python_peak_bytes", 0)) >= _tt_limit(case):
            raise AssertionError(f"Python or NumPy allocations reached {_tt_limit(case) // 1024} KiB at T = {t}, "
                                 "as much as a T x T mask; keep every intermediate inside the kernel")


NO_LIBRARY = ("no softmax, library attention or matrix product may run outside your kernel; compute the "
              "scores block by block with tl.dot and an online softmax")


def _ref_collate(case: Case):
    samples, capacity, *seed = case.args
    if "raise" in case.kind:
        return {"raised": np.array("ValueError")}
    batch = collate(samples, capacity)
    out = {"keys": np.array(sorted(BATCH_KEYS), dtype=str)}
    for key in BATCH_KEYS:
        out[key] = batch[key].numpy()
        out[f"{key}_dtype"] = np.array(str(batch[key].dtype).replace("torch.", ""))
    if seed:
        model = tiny_decoder(seed[0], TinyConfig(max_positions=capacity))
        with torch.no_grad():
            out["loss"] = padded_loss(model, [s["input_ids"] for s in samples]).numpy()
    return out


_COLLATE_HINTS = {
    "input_ids": "rows in bin-opening order of first-fit decreasing, samples in placement order, padded with 0",
    "position_ids": "positions restart at 0 for every sample, and are 0 on padding",
    "labels": "a label is the next token of the same sample; -100 at each sample's last token and on padding",
    "attention_mask": "1 on real tokens, 0 on padding",
    "cu_seqlens": "cu_seqlens is int32 [0, l_0, l_0 + l_1, ...] over the samples in row-major order (N + 1 entries)",
}


def _check_collate(case: Case, got, want):
    _check_unchanged(got, "packed_collate")
    if "raise" in case.kind:
        return _check_raised(case, got, "check capacity > 0, then that no sample is empty or longer than capacity")
    require(got, {k: v for k, v in want.items() if k in ("keys", *BATCH_KEYS)})
    if list(map(str, got["keys"])) != list(map(str, want["keys"])):
        raise AssertionError(f"returns the keys {', '.join(map(str, got['keys']))}; expected exactly "
                             f"{', '.join(BATCH_KEYS)}")
    for key in BATCH_KEYS:
        if str(got[f"{key}_dtype"]) != str(want[f"{key}_dtype"]):
            raise AssertionError(f"{key} has dtype {got[f'{key}_dtype']}, expected {want[f'{key}_dtype']}")
    if "loss" in want:
        if "loss_error" in got:
            raise AssertionError(f"the tiny decoder cannot read the packed batch ({got['loss_error']}); "
                                 f"{_COLLATE_HINTS['cu_seqlens']}")
        try:
            compare(got.get("loss", np.array(np.nan)), want["loss"], "mean loss over real tokens")
        except AssertionError as e:
            raise AssertionError(f"the packed batch's loss differs from the padded batch's ({e}): check the "
                                 "positions, the labels at sample boundaries and cu_seqlens") from None
    _check_hinted(got, {k: want[k] for k in BATCH_KEYS}, _COLLATE_HINTS)


def _ref_positions(case: Case):
    if "raise" in case.kind:
        return {"raised": np.array("ValueError")}
    if COLLATE_CASE in case.kind:  # the collate's own boundaries, not a recomputation from positions
        cu = collate(*case.args)["cu_seqlens"]
        max_seqlen = int((cu[1:] - cu[:-1]).max())
    else:
        cu, max_seqlen = boundaries_from_positions(torch.from_numpy(positions_of(case)))
    return {"cu_seqlens": cu.numpy(), "cu_seqlens_dtype": np.array("int32"), "max_seqlen": np.array(max_seqlen),
            "max_seqlen_type": np.array("int")}


_POSITION_HINTS = {
    "cu_seqlens": ("cu_seqlens are the flat indices where a position is 0 (a sample starts), then the number of "
                   "tokens: N + 1 entries, row-major over (B, T), see section 6"),
    "max_seqlen": "max_seqlen is the longest sample's length (the largest step of cu_seqlens; 0 without tokens)",
    "max_seqlen_type": "max_seqlen must be a Python int (int(...)), not a tensor",
}


def _check_positions(case: Case, got, want):
    _check_unchanged(got, "cu_seqlens_from_position_ids")
    if "raise" in case.kind:
        return _check_raised(case, got, "position_ids must be 2-D, every row must start at position 0 (a row that "
                                        "starts mid-sample would merge with the previous row's last sample), and "
                                        "every later position is 0 or the previous one plus 1 (section 6)")
    require(got, want)
    if str(got["cu_seqlens_dtype"]) != "int32":
        raise AssertionError(f"cu_seqlens has dtype {got['cu_seqlens_dtype']}: varlen kernels read int32 offsets")
    _check_hinted(got, {k: want[k] for k in ("cu_seqlens", "max_seqlen", "max_seqlen_type")}, _POSITION_HINTS)
    if str(got["cu_seqlens_device"]) != str(DEVICE) and not str(got["cu_seqlens_device"]).startswith(str(DEVICE)):
        raise AssertionError(f"cu_seqlens is on {got['cu_seqlens_device']}: keep it on position_ids' device")
    if OPS_CASE in case.kind and int(got["ops"]) > OPS_BUDGET:
        raise AssertionError(
            f"ran {int(got['ops'])} torch ops on {OPS_CASE}, more than {OPS_BUDGET}: find every restart at once "
            "(compare the whole tensor with 0, take the indices) instead of reading positions or samples one by "
            "one from Python, which costs an op and a device sync each (section 6)")


def _ref_accumulate(case: Case):
    (micro,) = case.args
    if "raise" in case.kind:
        return {"raised": np.array("ValueError")}
    logits = [torch.from_numpy(m["logits"]).requires_grad_(True) for m in micro]
    labels = [torch.from_numpy(m["labels"]) for m in micro]
    # one big batch: every micro-batch's tokens in one cross-entropy, the mean over all real labels
    full = F.cross_entropy(torch.cat([x.flatten(0, -2) for x in logits]), torch.cat([y.flatten() for y in labels]),
                           ignore_index=IGNORE)
    full.backward()
    parts = token_sum_losses([{"logits": x.detach(), "labels": y} for x, y in zip(logits, labels)])
    out = {"values": np.array([float(p) for p in parts]), "full": full.detach().double().numpy(),
           "dtypes": np.array([str(m["logits"].dtype) for m in micro]), "shapes": np.array(["()"] * len(micro))}
    for i, x in enumerate(logits):
        out[f"grad_{i}"] = x.grad.numpy()
    return out


def _check_accumulate(case: Case, got, want):
    _check_unchanged(got, "accumulated_loss")
    if "raise" in case.kind:
        return _check_raised(case, got, "raise ValueError for an empty list, and when no label of any micro-batch "
                                        "is real (the token mean has no tokens to average)")
    require(got, {"values": None, "dtypes": None, "shapes": None})
    n = len(want["values"])
    if list(map(str, got["shapes"])) != ["()"] * n:
        raise AssertionError(f"the losses have shapes {', '.join(map(str, got['shapes']))}: return one scalar "
                             "(0-d) tensor per micro-batch")
    if list(map(str, got["dtypes"])) != list(map(str, want["dtypes"])):
        raise AssertionError(f"the losses have dtypes {', '.join(map(str, got['dtypes']))}: keep the logits' dtype")
    values = np.asarray(got["values"], np.float64)
    if not np.isfinite(values).all():
        raise AssertionError("a loss is NaN or inf: a micro-batch without real labels adds 0, it is not a mean "
                             "over 0 tokens (section 7)")
    dtype = str(want["dtypes"][0])
    try:
        compare(np.array(values.sum(), dtype), np.asarray(want["full"], dtype), "sum of the micro-batch losses")
    except AssertionError as e:
        raise AssertionError(
            f"{e}; the losses must add up to one big batch's mean over all real tokens: sum each micro-batch's "
            "token losses and divide by the number of real labels in the whole batch, not by the micro-batch's "
            "own count (a mean per micro-batch weights the tokens of a short one more; section 7)") from None
    for i in range(n):
        for j in range(n):
            if i != j and np.any(np.asarray(got[f"grad_{i}_{j}"]) != 0):
                raise AssertionError(
                    f"the loss of micro-batch {i} has a gradient on micro-batch {j}'s logits: each micro-batch's "
                    "loss must come from its own logits and labels (and the batch's count of real labels), so "
                    "that its backward can run right after its forward and free its activations (section 7)")
    try:
        compare(values.astype(dtype), want["values"].astype(dtype), "micro-batch losses")
        for i in range(n):
            compare(np.asarray(got[f"grad_{i}_{i}"]), want[f"grad_{i}"], f"gradient of micro-batch {i}'s logits")
    except AssertionError as e:
        raise AssertionError(f"{e}; micro-batch i's loss is its summed token losses over the whole batch's count "
                             "of real labels, and backward on each loss in turn gives one big batch's gradient "
                             "(section 7)") from None


EXERCISES = {
    "first_fit_decreasing": TASKS["first_fit_decreasing"].graded(_ref_ffd, _check_ffd),
    "unpad_input": TASKS["unpad_input"].graded(_ref_unpad, _check_unpad),
    "varlen_attention": TASKS["varlen_attention"].graded(_ref_varlen, _check_varlen),
    "packed_collate": TASKS["packed_collate"].graded(_ref_collate, _check_collate),
    "cu_seqlens_from_position_ids": TASKS["cu_seqlens_from_position_ids"].graded(_ref_positions, _check_positions),
    "accumulated_loss": TASKS["accumulated_loss"].graded(_ref_accumulate, _check_accumulate),
}


# ---------------------------------------------------------------- benchmark (make bench)


def long_tailed_lengths(rng: np.random.Generator, n: int, high: int, median: float) -> np.ndarray:
    """n lengths in [1, high] from a log-normal with the given median (sigma 1): most short, a few long."""
    return np.clip(np.round(rng.lognormal(np.log(median), 1.0, n)), 1, high).astype(np.int64)


def bench(timer, cuda: bool) -> dict:
    """Causal attention forward over a long-tailed batch, padded (SDPA with a mask, B x max l) and
    packed (the varlen kernel, sum l tokens): milliseconds and real tokens per second, fp16 on a GPU,
    H = 16, D = 64, for batches of 8 to 64 samples of up to 4096 tokens."""
    dtype = torch.float16 if cuda else torch.float32
    heads, d = (16, 64) if cuda else (2, 16)
    high, median = (4096, 400) if cuda else (256, 24)
    batches = [8, 16, 32, 64] if cuda else [4, 8]
    rng = np.random.default_rng(0)
    rows = {"batch": batches, "dtype": str(dtype).replace("torch.", ""), "heads": str(heads), "head_dim": str(d),
            "max_len": [], "real_tokens": [], "padded_ms": [], "packed_ms": [], "padded_tok_s": [], "packed_tok_s": []}
    for b in batches:
        lengths = long_tailed_lengths(rng, b, high, median)
        s, t = int(lengths.max()), int(lengths.sum())
        q, k, v = (torch.randn(b, heads, s, d, device=DEVICE, dtype=dtype) for _ in range(3))
        key_mask = torch.arange(s, device=DEVICE)[None, :] < torch.as_tensor(lengths, device=DEVICE)[:, None]
        qp, kp, vp = (torch.randn(t, heads, d, device=DEVICE, dtype=dtype) for _ in range(3))
        cu = torch.tensor([0, *np.cumsum(lengths).tolist()], dtype=torch.int32, device=DEVICE)
        padded = timer(lambda: padded_attention(q, k, v, key_mask))
        packed = timer(lambda: varlen_attention_triton(qp, kp, vp, cu, s, causal=True))
        rows["max_len"].append(s)
        rows["real_tokens"].append(t)
        rows["padded_ms"].append(padded * 1e3)
        rows["packed_ms"].append(packed * 1e3)
        rows["padded_tok_s"].append(t / padded)
        rows["packed_tok_s"].append(t / packed)
        del q, k, v, qp, kp, vp
    return rows
