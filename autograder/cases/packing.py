"""Chapter 07's cases: what the learner's packing functions are run on, and how (the learner's kernel).

Besides the case generators and runs, this module holds what a run needs and a reference may not
be asked for: a tiny decoder (built from a config and a seed, no download) whose attention runs
either on a padded batch with a mask or, swapped in by a monkey patch, per sequence from
`cu_seqlens`; and `AttentionWatch`, a TorchDispatchMode that records the largest tensor any torch
op makes, the attention-like ops and every other computing op that ran on the host, and the Triton
launches (the varlen kernel's rules), with every fresh `torch.empty*` poisoned; and `TorchOps`, a
TorchFunctionMode that counts the torch calls a function makes (boundaries from whole-tensor ops).
"""
import copy
import tracemalloc
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from autograder.device import CUDA, DEVICE

from autograder.exercise import NO_NUMPY, Case, Task, dtype_name, raised, to_numpy
from autograder.watch import INTERPRETING, HostOps, count_lines, tensors

WORK_CASE = "the work must stay O(n log n + n * bins)"  # the case whose check reads the line count


def ffd_budget(lengths: list[int], capacity: int) -> int:
    """Python lines first-fit decreasing may run: 2 n B + 10^5, with B = 2 sum / capacity + 1 a
    bound on the bins first fit opens (at most one of its bins is at most half full). Scanning
    the open bins' free room for each item runs about n B / 2 lines; re-summing each bin's items
    for each item runs about n^2 / 2, far past the budget at n = 10^4."""
    bins = 2 * sum(lengths) // max(capacity, 1) + 1
    return 2 * len(lengths) * bins + 100_000
IGNORE = -100  # the label cross_entropy skips

# ---------------------------------------------------------------- a tiny decoder


@dataclass(frozen=True)
class TinyConfig:
    vocab: int = 64
    dim: int = 32
    heads: int = 4
    layers: int = 2
    hidden: int = 64
    max_positions: int = 64


class Attention(nn.Module):
    """Causal multi-head self-attention on a padded batch. `forward` is what a monkey patch swaps."""

    def __init__(self, cfg: TinyConfig):
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.proj = nn.Linear(cfg.dim, cfg.dim)

    def forward(self, x, attention_mask):
        """x (B, S, C), attention_mask (B, S) 1 for real tokens: query i sees real keys j <= i."""
        b, s, c = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, c // self.heads).unbind(2)  # (B, S, H, d) each
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, S, d)
        causal = torch.ones(s, s, dtype=torch.bool, device=x.device).tril()  # (S, S)
        allowed = causal & attention_mask.bool()[:, None, None, :]  # (B, 1, S, S)
        allowed = allowed | torch.eye(s, dtype=torch.bool, device=x.device)  # padding queries see themselves
        scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # (B, H, S, S)
        p = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
        return self.proj((p @ v).transpose(1, 2).reshape(b, s, c))


def attention_varlen(self, x, cu_seqlens, max_seqlen):
    """The same attention on packed tokens x (T, C): each sequence cu_seqlens[i]:cu_seqlens[i+1]
    attends causally to itself only, one sequence at a time (no T x T mask)."""
    t, c = x.shape
    q, k, v = self.qkv(x).view(t, 3, self.heads, c // self.heads).unbind(1)  # (T, H, d) each
    out = torch.zeros_like(q)
    bounds = cu_seqlens.tolist()
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            qs, ks, vs = (u[a:b].transpose(0, 1) for u in (q, k, v))  # (H, L, d)
            out[a:b] = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True).transpose(0, 1)
    return self.proj(out.reshape(t, c))


@contextmanager
def packed_attention(attention=attention_varlen):
    """Monkey-patch every Attention to run on packed tokens: inside the block the model's third
    argument is (cu_seqlens, max_seqlen) instead of a mask."""
    original = Attention.forward
    Attention.forward = lambda self, x, info: attention(self, x, *info)
    try:
        yield
    finally:
        Attention.forward = original


class Block(nn.Module):
    def __init__(self, cfg: TinyConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.dim), nn.LayerNorm(cfg.dim)
        self.attn = Attention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.dim))

    def forward(self, x, info):
        x = x + self.attn(self.ln1(x), info)
        return x + self.mlp(self.ln2(x))


class TinyDecoder(nn.Module):
    """A GPT-style decoder with learned absolute positions: token + position embedding, blocks,
    a final LayerNorm and a language-model head. Token-wise everywhere except in Attention."""

    def __init__(self, cfg: TinyConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab, cfg.dim)
        self.pos = nn.Embedding(cfg.max_positions, cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.vocab, bias=False)

    def forward(self, input_ids, position_ids, info):
        """input_ids, position_ids (B, S) with info = attention_mask (B, S); or, inside
        packed_attention(), (T,) with info = (cu_seqlens, max_seqlen). Returns logits (..., vocab)."""
        x = self.tok(input_ids) + self.pos(position_ids)
        for block in self.blocks:
            x = block(x, info)
        return self.head(self.ln_f(x))


def tiny_decoder(seed: int, cfg: TinyConfig = TinyConfig(), dtype=torch.float64) -> TinyDecoder:
    """A random-init decoder, the same for the same seed and config on every machine."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyDecoder(cfg)
    return model.to(dtype).eval()


def padded_loss(model: TinyDecoder, samples: list[list[int]]) -> torch.Tensor:
    """Mean next-token loss over real tokens, one sample per row, right-padded to the longest."""
    s = max(len(x) for x in samples)
    ids = torch.zeros(len(samples), s, dtype=torch.int64)
    mask = torch.zeros_like(ids)
    for r, x in enumerate(samples):
        ids[r, :len(x)] = torch.tensor(x)
        mask[r, :len(x)] = 1
    labels = torch.full_like(ids, IGNORE)
    labels[:, :-1] = torch.where(mask[:, 1:].bool(), ids[:, 1:], IGNORE)
    positions = torch.arange(s).expand_as(ids)
    logits = model(ids, positions, mask)  # (B, S, V)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)


def packed_loss(model: TinyDecoder, batch: dict) -> torch.Tensor:
    """The same loss on a packed batch: real tokens only, per-sample attention from cu_seqlens,
    the batch's own positions and labels."""
    real = batch["attention_mask"].bool()
    cu = batch["cu_seqlens"]
    max_seqlen = int((cu[1:] - cu[:-1]).max()) if cu.numel() > 1 else 0
    with packed_attention():
        logits = model(batch["input_ids"][real], batch["position_ids"][real], (cu, max_seqlen))  # (T, V)
    return F.cross_entropy(logits, batch["labels"][real], ignore_index=IGNORE)


# ---------------------------------------------------------------- watching torch ops


_ATTENTION_PARTS = ("softmax", "logsumexp", "scaled_dot_product", "flash", "efficient_attention", "cudnn_attention")
_PRODUCTS = {"mm", "bmm", "matmul", "baddbmm", "addmm", "addbmm", "einsum"}


def attention_like(op: str) -> bool:
    """Whether an aten op computes a softmax, a library attention or a matrix product."""
    return any(part in op for part in _ATTENTION_PARTS) or op.lstrip("_") in _PRODUCTS


class AttentionWatch(HostOps):
    """Records, outside Triton launches: the most elements of any op's output (largest_out), the
    attention-like ops that ran (`attention`: softmax, SDPA, flash, matrix products), every op that
    computed anything on the host (`ops`, from HostOps: views, allocations and copies are free),
    and the launches (`triton`). Every fresh `torch.empty*` is filled with NaN, so an output the
    kernel never writes is caught."""

    def __init__(self, poison: bool = True):
        super().__init__(poison=poison)
        self.largest_out = 0
        self.attention: set[str] = set()

    def on_op(self, name, func, args, kwargs, out):
        self.largest_out = max([self.largest_out] + [t.numel() for t in tensors(out)])
        if attention_like(name):
            self.attention.add(name)
        super().on_op(name, func, args, kwargs, out)


class TorchOps(TorchFunctionMode):
    """Counts the torch functions and tensor methods a call runs (`count`), at the Python level:
    reading a tensor element by element from Python (`int(t[i])`, `for x in t`, `.item()`, `if t[i]
    == 0`) costs a call or more per element, so a count that stays flat as the tensor grows is a
    count of whole-tensor ops. A function mode, not a dispatch mode: it costs nothing to enter."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


# ---------------------------------------------------------------- exercise 1: first-fit decreasing


def _long_tail(rng, n: int, low: int, high: int) -> list[int]:
    """n lengths in [low, high], most of them short (a clipped log-normal)."""
    x = rng.lognormal(mean=np.log(max(low, 1) + (high - low) / 8), sigma=0.9, size=n)
    return np.clip(np.round(x), low, high).astype(int).tolist()


def _ffd_cases(rng) -> list[Case]:
    cap = int(rng.integers(20, 60))
    return [
        Case("a small example", ([4, 8, 1, 4, 2, 1], 10)),
        Case("the first bin with room is not the fullest one that fits", ([9, 4, 7, 1, 4, 1], 10)),
        *(Case("lengths are random", (rng.integers(1, cap + 1, int(rng.integers(5, 40))).tolist(), cap))
          for _ in range(3)),
        Case("many lengths are equal (ties go by index)", (rng.integers(2, 5, 30).tolist(), 10)),
        Case("lengths equal the capacity", ([7, 3, 7, 4, 7], 7)),
        Case("some lengths are 0", ([0, 5, 0, 3, 2, 0], 5)),
        Case("every length is 0", ([0, 0, 0], 4)),
        Case("the list is empty", ([], 8)),
        Case("capacity is 1", ([1, 1, 0, 1], 1)),
        Case("capacity is 0 (raise ValueError)", ([1, 2], 0)),
        Case("capacity is negative and the list is empty (raise ValueError)", ([], -3)),
        Case("a length is negative (raise ValueError)", ([3, -1, 2], 8)),
        Case("a length exceeds the capacity (raise ValueError)", ([3, 9, 2], 8)),
        Case(f"10^4 lengths in 1..256, capacity 4096 ({WORK_CASE})", (rng.integers(1, 257, 10_000).tolist(), 4096)),
    ]


def _run_ffd(fn, case: Case):
    lengths, capacity = case.args
    given = list(lengths)
    if "raise" in case.kind:
        return {"raised": raised(lambda: fn(given, capacity)), "changed": np.array(given != list(lengths))}
    if WORK_CASE in case.kind:
        bins, lines = count_lines(fn, (given, capacity), ffd_budget(lengths, capacity))
        if bins is None:  # stopped at the budget
            return {"work": np.array(lines), "changed": np.array(given != list(lengths))}
    else:
        bins, lines = fn(given, capacity), 0
    bins = [[int(i) for i in b] for b in bins]
    return {"bins": np.array([i for b in bins for i in b], dtype=np.int64),
            "sizes": np.array([len(b) for b in bins], dtype=np.int64),
            "work": np.array(lines), "changed": np.array(given != list(lengths))}


# ---------------------------------------------------------------- exercise 2: unpad / pad


def _masks(rng, b: int, s: int, kind: str) -> np.ndarray:
    lens = rng.integers(1, s + 1, b)
    cols = np.arange(s)[None, :]
    if kind == "right":
        return cols < lens[:, None]
    if kind == "left":
        return cols >= s - lens[:, None]
    return rng.random((b, s)) < 0.6  # holes anywhere


def _unpad_cases(rng) -> list[Case]:
    def hidden(shape, dtype=np.float32):
        return rng.standard_normal(shape).astype(dtype)

    right, left, holes = _masks(rng, 3, 7, "right"), _masks(rng, 4, 6, "left"), _masks(rng, 3, 9, "holes")
    empty_row = _masks(rng, 4, 5, "right")
    empty_row[1] = False
    return [
        Case("the mask is right-padded (bool)", (hidden((3, 7, 4)), right)),
        Case("the mask is left-padded (int64)", (hidden((4, 6, 3)), left.astype(np.int64))),
        Case("real tokens and padding alternate (int32 mask)", (hidden((3, 9, 2)), holes.astype(np.int32))),
        Case("a row holds no tokens (cu_seqlens repeats an entry)", (hidden((4, 5, 3)), empty_row)),
        Case("no row holds a token (nnz = 0, max_seqlen = 0)", (hidden((2, 4, 3)), np.zeros((2, 4), bool))),
        Case("there is no padding", (hidden((2, 5, 3)), np.ones((2, 5), np.int64))),
        Case("hidden is (B, S) with no trailing dimension (float64)", (hidden((3, 6), np.float64), _masks(rng, 3, 6, "right"))),
        Case("hidden is (B, S, H, D) (float64)", (hidden((2, 5, 2, 3), np.float64), _masks(rng, 2, 5, "left"))),
        Case("hidden is float16", (hidden((3, 4, 8), np.float16), _masks(rng, 3, 4, "right"))),
    ]


def _run_unpad(fn, case: Case):
    x, mask = case.args
    pad_input = fn.__globals__.get("pad_input")
    if pad_input is None:
        raise NameError("pad_input is not defined beside unpad_input (write both in the same cell)")
    hidden = torch.from_numpy(x.copy()).requires_grad_(True)
    m = torch.from_numpy(mask.copy())
    values, indices, cu_seqlens, max_seqlen = fn(hidden, m)
    b, s = mask.shape
    out = pad_input(values, indices, b, s)
    g = torch.from_numpy(np.random.default_rng(0).standard_normal(x.shape).astype(x.dtype))
    if out.requires_grad:  # else no gradient reaches hidden: recorded as none
        (out * g).sum().backward()
    leaf = values.detach().clone().requires_grad_(True)  # pad_input alone
    alone = pad_input(leaf, indices, b, s)
    if alone.requires_grad:
        (alone * g).sum().backward()
    no_grad = np.zeros(0, dtype=x.dtype)
    return {
        "values": to_numpy(values), "indices": to_numpy(indices), "cu_seqlens": to_numpy(cu_seqlens),
        "max_seqlen": np.array(max_seqlen if isinstance(max_seqlen, int) else -1),
        "max_seqlen_type": np.array(type(max_seqlen).__name__), "padded": to_numpy(out),
        "grad_hidden": to_numpy(hidden.grad) if hidden.grad is not None else no_grad,
        "grad_values": to_numpy(leaf.grad) if leaf.grad is not None else no_grad,
        "changed": np.array(not (np.array_equal(hidden.detach().numpy(), x) and np.array_equal(m.numpy(), mask))),
    }


# ---------------------------------------------------------------- exercise 3: varlen attention


def _packed(rng, lengths, h: int, d: int, dtype=np.float32, spread: float = 1.0):
    t = int(sum(lengths))
    q, k, v = (rng.standard_normal((t, h, d)) * (spread if i < 2 else 1.0) for i in range(3))
    cu = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return q.astype(dtype), k.astype(dtype), v.astype(dtype), cu, int(max(lengths, default=0))


SHARP = "scores reach"  # the cases whose raw scores overflow exp in float32 (the running max's cases)


def _sharp(rng, lengths, h: int, spike: bool = False):
    """Packed q, k, v (D = 16, scale 1/4) whose scores are multiples of 8 reaching +-200 or more:
    q = 4a, k = 8b with integer a, b in [-2, 2], exact in float32, so every correct kernel agrees
    with float64 (ties tie exactly; other keys trail the row's best by 8 or more). exp of such a
    score overflows float32 (past 88.7) unless the row's running max is subtracted first. `spike`:
    the last key of each sequence scores about 640 for every query, hundreds above any key of the
    first block, so a max taken over the first key block alone and never updated overflows too."""
    q, k, v, cu, max_seqlen = _packed(rng, lengths, h, 16)
    q = 4 * rng.integers(-2, 3, q.shape).astype(np.float32)
    k = 8 * rng.integers(-2, 3, k.shape).astype(np.float32)
    if spike:
        q[:, :, 0] = 8.0
        k[cu[1:][np.diff(cu) > 0] - 1, :, 0] = 320.0
    return q, k, v, cu, max_seqlen


def _varlen_cases(rng) -> list[Case]:
    odd = [int(x) for x in rng.integers(2, 90, 3)]
    cases = [
        Case("one sequence of 64 tokens (a block multiple), causal off", (*_packed(rng, [64], 2, 16), False, None)),
        Case("lengths are not block multiples, causal off", (*_packed(rng, odd, 2, 16), False, None)),
        Case("lengths are not block multiples, causal on", (*_packed(rng, odd, 2, 16), True, None)),
        Case("sequences of length 1", (*_packed(rng, [1, 5, 1, 1], 1, 16), True, None)),
        Case("a length-0 sequence sits in the middle of cu_seqlens", (*_packed(rng, [20, 0, 33], 2, 32), True, None)),
        Case("an explicit scale (used as given, not 1/sqrt(D))", (*_packed(rng, [30, 47], 1, 16), False, 0.3)),
        Case("D = 64, causal on", (*_packed(rng, [40, 70], 1, 64), True, None)),
        Case("D = 128, causal off", (*_packed(rng, [50, 9], 1, 128), False, None)),
        Case("scores spread widely (q and k scaled by 3)", (*_packed(rng, [65, 31], 1, 16, spread=3.0), True, None)),
        Case(f"{SHARP} +-200 (q and k scaled; exp without the running max overflows), causal on",
             (*_sharp(rng, [300, 150, 41], 2), True, None)),
        Case(f"{SHARP} 640 in each sequence's last key block (a max of the first block alone overflows), "
             "causal off", (*_sharp(rng, [300, 180], 1, spike=True), False, None)),
        Case("T = 1024 in 5 sequences (no op may make T x T elements; no softmax, SDPA or matmul)",
             (*_packed(rng, [300, 250, 200, 150, 124], 1, 16), True, None)),
    ]
    if CUDA:  # 16-bit inputs and long sequences only where a GPU grades
        cases += [Case(f"the dtype is {dt}, lengths up to 1000", (*_packed(rng, [1000, 517, 3, 256], 4, 64), True, None, dt))
                  for dt in ("float16", "bfloat16")]
    return cases


def _varlen_parts(case):
    q, k, v, cu, max_seqlen, causal, scale, *dtype = case.args
    return q, k, v, cu, max_seqlen, causal, scale, (dtype[0] if dtype else None)


def _run_varlen(fn, case: Case):
    q, k, v, cu, max_seqlen, causal, scale, dtype = _varlen_parts(case)
    qt, kt, vt = (torch.from_numpy(a).to(DEVICE) for a in (q, k, v))
    if dtype:
        qt, kt, vt = (t.to(getattr(torch, dtype)) for t in (qt, kt, vt))
    cut = torch.from_numpy(cu).to(DEVICE)
    before = [t.clone() for t in (qt, kt, vt, cut)]
    memory = "T x T" in case.kind
    with AttentionWatch() as watch:  # entered first: its own one-time imports are not the learner's
        if memory:
            tracemalloc.start()
        try:
            out = fn(qt, kt, vt, cut, max_seqlen, causal=causal, scale=scale)
            peak = tracemalloc.get_traced_memory()[1] if memory else 0
        finally:
            if memory:
                tracemalloc.stop()
    result = out.float() if dtype else out
    loads = sum(launch.loads for launch in watch.triton.launches) if INTERPRETING else -1
    return {"out": to_numpy(result), "out_dtype": dtype_name(out), "largest_out": np.array(watch.largest_out),
            "attention_ops": np.array(sorted(watch.attention), dtype=str), **watch.summary(),
            "kernel_loads": np.array(loads), "python_peak_bytes": np.array(peak),
            "changed": np.array(not all(torch.equal(a, b) for a, b in zip(before, (qt, kt, vt, cut))))}


# ---------------------------------------------------------------- exercise 4: packed collate


def _samples(rng, lengths, vocab: int = 64) -> list[dict]:
    return [{"input_ids": rng.integers(1, vocab, int(n)).tolist()} for n in lengths]


def _collate_cases(rng) -> list[Case]:
    lens = [int(n) for n in rng.integers(1, 17, 12)]
    return [
        Case("a small example", (_samples(rng, [3, 5, 2, 6, 4]), 8)),
        Case("random lengths up to the capacity", (_samples(rng, lens), 16)),
        Case("a sample fills a whole row", (_samples(rng, [6, 2, 6, 3]), 6)),
        Case("samples of one token (their label is -100)", (_samples(rng, [1, 4, 1, 1]), 5)),
        Case("equal lengths (ties go by sample index)", (_samples(rng, [3] * 7), 7)),
        Case("no samples", ([], 12)),
        Case("a sample is empty (raise ValueError)", (_samples(rng, [3, 0, 2]), 8)),
        Case("a sample is longer than the capacity (raise ValueError)", (_samples(rng, [3, 9]), 8)),
        Case("capacity is 0 (raise ValueError)", (_samples(rng, [1]), 0)),
        Case("the tiny decoder's mean loss on the packed batch equals the padded batch's (float64)",
             (_samples(rng, _long_tail(rng, 14, 1, 32)), 40, int(rng.integers(0, 2**31)))),
        Case("the tiny decoder's loss with many short samples per row (float64)",
             (_samples(rng, rng.integers(1, 7, 20)), 24, int(rng.integers(0, 2**31)))),
    ]


BATCH_KEYS = ("input_ids", "position_ids", "labels", "attention_mask", "cu_seqlens")


def _run_collate(fn, case: Case):
    samples, capacity, *seed = case.args
    given = copy.deepcopy(samples)
    if "raise" in case.kind:
        return {"raised": raised(lambda: fn(given, capacity)), "changed": np.array(given != samples)}
    batch = fn(given, capacity)
    if not isinstance(batch, dict):
        raise TypeError(f"return a dict, got {type(batch).__name__}")
    out = {"keys": np.array(sorted(map(str, batch)), dtype=str), "changed": np.array(given != samples)}
    for key in BATCH_KEYS:
        if key in batch:
            out[key] = to_numpy(batch[key])
            out[f"{key}_dtype"] = dtype_name(batch[key])
    if seed and all(key in batch for key in BATCH_KEYS):
        model = tiny_decoder(seed[0], TinyConfig(max_positions=capacity))
        try:
            with torch.no_grad():
                out["loss"] = to_numpy(packed_loss(model, {k: torch.as_tensor(batch[k]).cpu() for k in BATCH_KEYS}))
        except Exception as e:  # a batch the model cannot read: the layout check says why
            out["loss_error"] = np.array(f"{type(e).__name__}: {e}"[:300])
    return out


# ---------------------------------------------------------------- exercise 5: boundaries from position_ids

OPS_CASE = "20 000 tokens in over 1 000 samples"  # the case whose check reads the op count
OPS_BUDGET = 60  # torch ops the function may run on it, whatever T and N


def _restarting(lengths) -> np.ndarray:
    """Positions 0, 1, ..., l - 1 for each length, concatenated: what a flattening collator makes."""
    return np.concatenate([np.arange(n) for n in lengths] or [np.zeros(0)]).astype(np.int64)


def _rows(rng, b: int, t: int, low: int, high: int) -> np.ndarray:
    """(b, t) positions, each row whole samples from its start (lengths long-tailed in [low, high]),
    its last sample cut at t as a truncated row is."""
    rows = []
    for _ in range(b):
        lengths = _long_tail(rng, t // max(low, 1) + 1, low, high)
        rows.append(_restarting(lengths)[:t])
    return np.stack(rows)


def _ffd_order(lengths: list[int], capacity: int) -> list[int]:
    """The samples in packed_collate's row-major order (first-fit decreasing, as exercise 4)."""
    by_size = np.lexsort((np.arange(len(lengths)), -np.asarray(lengths, dtype=np.int64)))  # longest first, ties by index
    bins: list[tuple[int, list[int]]] = []  # (tokens used, members) per row
    for item in by_size.tolist():
        slot = 0
        while slot < len(bins) and bins[slot][0] + lengths[item] > capacity:
            slot += 1
        if slot == len(bins):
            bins.append((0, []))
        used, members = bins[slot]
        bins[slot] = (used + lengths[item], members + [item])
    return [item for _, members in bins for item in members]


COLLATE_CASE = "the positions of a packed_collate batch, unpadded to (1, nnz)"


def _positions_cases(rng) -> list[Case]:
    jump = _restarting([6, 6])[None, :]
    jump[0, 8] += 1  # 0 1 ... 5 0 1 3 ...
    samples = _samples(rng, _long_tail(rng, 12, 1, 20))
    return [
        Case("one row (1, T) of samples, as DataCollatorWithFlattening makes it",
             (_restarting(rng.integers(1, 30, 8))[None, :],)),
        Case("samples of length 1 (consecutive zeros)", (_restarting([1, 3, 1, 1, 4, 1])[None, :],)),
        Case("a single sample", (np.arange(13, dtype=np.int64)[None, :],)),
        Case("every token is a sample of length 1", (np.zeros((1, 9), np.int64),)),
        Case("(B, T) rows, each starting a new sample (a boundary at every row start)", (_rows(rng, 3, 20, 1, 12),)),
        Case("int32 positions", (_restarting(rng.integers(1, 20, 5))[None, :].astype(np.int32),)),
        Case(f"{COLLATE_CASE} (its own cu_seqlens)", (samples, 24)),
        Case("no tokens, (1, 0)", (np.zeros((1, 0), np.int64),)),
        Case(f"{OPS_CASE}, (4, 5000) (a constant number of tensor ops)", (_rows(rng, 4, 5000, 1, 60),)),
        Case("a row starts mid-sample (raise ValueError)", (np.concatenate([np.arange(3, 8), np.arange(4)])[None, :],)),
        Case("the second row starts mid-sample (raise ValueError)", (np.stack([np.arange(6), np.arange(2, 8)]),)),
        Case("a position skips ahead inside a sample (raise ValueError)", (jump,)),
        Case("position_ids is 1-D (raise ValueError)", (np.arange(5, dtype=np.int64),)),
    ]


def positions_of(case: Case) -> np.ndarray:
    """The position_ids a case hands the learner (a packed_collate case: its real tokens' positions)."""
    if COLLATE_CASE in case.kind:
        samples, capacity = case.args
        lengths = [len(s["input_ids"]) for s in samples]
        return _restarting([lengths[i] for i in _ffd_order(lengths, capacity)])[None, :]
    return case.args[0]


def _run_positions(fn, case: Case):
    pos = positions_of(case)
    given = torch.from_numpy(pos.copy()).to(DEVICE)
    if "raise" in case.kind:
        return {"raised": raised(lambda: fn(given)), "changed": np.array(not np.array_equal(given.cpu().numpy(), pos))}
    with TorchOps() as ops:
        result = fn(given)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"return a tuple (cu_seqlens, max_seqlen), got {type(result).__name__}")
    cu, max_seqlen = result
    return {"cu_seqlens": to_numpy(cu), "cu_seqlens_dtype": dtype_name(cu),
            "cu_seqlens_device": np.array(str(getattr(cu, "device", "none"))),
            "max_seqlen": np.array(max_seqlen if isinstance(max_seqlen, int) else -1),
            "max_seqlen_type": np.array(type(max_seqlen).__name__), "ops": np.array(ops.count),
            "changed": np.array(not np.array_equal(given.cpu().numpy(), pos))}


# ---------------------------------------------------------------- exercise 6: the accumulated loss


def _micro_batch(rng, lengths, s: int | None = None, vocab: int = 11, dtype=np.float32, dead: bool = False) -> dict:
    """One micro-batch: rows right-padded to s, each row's labels real on its first l - 1 tokens
    (a sample's last token predicts nothing), -100 after; `dead`: every label -100."""
    s = s or max(lengths)
    logits = rng.standard_normal((len(lengths), s, vocab)).astype(dtype)
    labels = np.full((len(lengths), s), IGNORE, np.int64)
    for r, n in enumerate(lengths):
        if not dead:
            labels[r, : n - 1] = rng.integers(0, vocab, n - 1)
    return {"logits": logits, "labels": labels}


def _accumulate_cases(rng) -> list[Case]:
    tail = [_micro_batch(rng, _long_tail(rng, 4, 2, 64)) for _ in range(3)]
    return [
        Case("two micro-batches with equal real-token counts", ([_micro_batch(rng, [5, 5]), _micro_batch(rng, [4, 6])],)),
        Case("unequal real-token counts (a long sample against short ones)",
             ([_micro_batch(rng, [40]), _micro_batch(rng, [3, 2, 4])],)),
        Case("long-tailed micro-batches of different shapes", (tail,)),
        Case("one micro-batch (the plain token mean)", ([_micro_batch(rng, [7, 3, 9])],)),
        Case("a micro-batch with no real label (its loss and gradient are 0)",
             ([_micro_batch(rng, [6, 4]), _micro_batch(rng, [5], dead=True), _micro_batch(rng, [3])],)),
        Case("float64 logits", ([_micro_batch(rng, [9, 2], dtype=np.float64), _micro_batch(rng, [17], dtype=np.float64)],)),
        Case("no micro-batches (raise ValueError)", ([],)),
        Case("no real label anywhere (raise ValueError)", ([_micro_batch(rng, [4], dead=True), _micro_batch(rng, [3], dead=True)],)),
    ]


def _run_accumulate(fn, case: Case):
    (micro,) = case.args
    logits = [torch.from_numpy(m["logits"].copy()).to(DEVICE).requires_grad_(True) for m in micro]
    labels = [torch.from_numpy(m["labels"].copy()).to(DEVICE) for m in micro]
    given = [{"logits": x, "labels": y} for x, y in zip(logits, labels)]
    changed = lambda: not all(np.array_equal(x.detach().cpu().numpy(), m["logits"]) and
                              np.array_equal(y.cpu().numpy(), m["labels"]) for x, y, m in zip(logits, labels, micro))
    if "raise" in case.kind:
        return {"raised": raised(lambda: fn(given)), "changed": np.array(changed())}
    losses = fn(given)
    if not isinstance(losses, (list, tuple)) or len(losses) != len(micro):
        raise TypeError(f"return a list of {len(micro)} losses, one per micro-batch, got "
                        f"{type(losses).__name__}{f' of {len(losses)}' if isinstance(losses, (list, tuple)) else ''}")
    out = {"values": np.array([float(x.detach()) if isinstance(x, torch.Tensor) else float(x)
                                for x in losses], dtype=np.float64),
           "dtypes": np.array([str(dtype_name(x)) for x in losses]),
           "shapes": np.array([str(tuple(getattr(x, "shape", ()))) for x in losses]), "changed": np.array(changed())}
    for i, loss in enumerate(losses):  # one backward per micro-batch, as gradient accumulation runs them
        for x in logits:
            x.grad = None
        if isinstance(loss, torch.Tensor) and loss.requires_grad:
            loss.backward(retain_graph=True)
        for j, x in enumerate(logits):
            out[f"grad_{i}_{j}"] = to_numpy(x.grad) if x.grad is not None else np.zeros(x.shape, x.detach().cpu().numpy().dtype)
    return out


# ---------------------------------------------------------------- tasks

NO_LIBRARY_ATTENTION = ("the attention must run inside your Triton kernel, one block of keys at a time with an "
                        "online softmax: no library softmax, attention or matrix product (nor @) on the whole "
                        "sequence, and no NumPy or Python lists on the host.")

TASKS = {
    "first_fit_decreasing": Task("first_fit_decreasing", _ffd_cases, _run_ffd),
    "unpad_input": Task("unpad_input", _unpad_cases, _run_unpad),
    "varlen_attention": Task(
        "varlen_attention", _varlen_cases, _run_varlen,
        forbidden=frozenset({"softmax", "log_softmax", "_softmax", "logsumexp", "scaled_dot_product_attention",
                             "flash_attn_varlen_func", "matmul", "bmm", "einsum", "baddbmm", "mm", "tensordot",
                             "@", "torch.func"}) | NO_NUMPY,
        why=NO_LIBRARY_ATTENTION,
    ),
    "packed_collate": Task(
        "packed_collate", _collate_cases, _run_collate, forbidden=frozenset({"first_fit_decreasing"}),
        why="write first-fit decreasing again inside this cell, so that this exercise is graded on its own.",
    ),
    "cu_seqlens_from_position_ids": Task(
        "cu_seqlens_from_position_ids", _positions_cases, _run_positions,
        forbidden=NO_NUMPY | frozenset({".untyped_storage", ".storage", ".data_ptr", "ctypes", "memoryview", "pickle",
                                        "struct", "getattr", "eval", "exec", "__import__", "packed_collate",
                                        "unpad_input"}),
        why=("find the restarts with whole-tensor ops on the device (where the positions are 0), not by reading "
             "the positions into Python; and derive the boundaries from position_ids alone."),
    ),
    "accumulated_loss": Task("accumulated_loss", _accumulate_cases, _run_accumulate),
}
