"""Chapter 03's cases: what the learner's LSTM cell, attention, multi-head attention and positional
encoding are run on, and how (the learner's kernel). Gradients are taken here, by autograd through
the learner's own graph; the grader compares them with torch's in its own process. Each run also
records the torch library calls that would do the exercise's work for it (`LibraryCalls`):
torch's LSTM in the cell, its softmax or fused attention in the attention, its attention in the
multi-head layer."""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from autograder.device import DEVICE
from autograder.exercise import Case, Task, to_numpy
from autograder.watch import OpWatch, tensors


class _ApiNames(TorchFunctionMode):
    """The names of the torch functions called while active (torch.softmax, Tensor.softmax,
    F.scaled_dot_product_attention, torch.ops.aten._softmax, however they were reached)."""

    def __init__(self, note):
        super().__init__()
        self._note = note

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self._note(getattr(func, "__name__", ""))
        return func(*args, **(kwargs or {}))


class LibraryCalls(OpWatch):
    """Which torch functions and aten ops whose names hold one of `patterns` a call runs: the API
    level (a TorchFunctionMode) sees composites such as torch.lstm_cell, which reach the dispatcher
    as plain matmuls and sigmoids; the aten level (OpWatch) sees what an API call hides inside
    another (F.softmin runs aten::_softmax). A name, a getattr or an alias changes neither.
    `found`: the names, sorted."""

    def __init__(self, patterns: tuple[str, ...]):
        super().__init__()
        self.patterns, self._seen = patterns, set()
        self._api = _ApiNames(self._note)

    def _note(self, name: str) -> None:
        if any(p in name.lower() for p in self.patterns):
            self._seen.add(name)

    def on_op(self, name, func, args, kwargs, out) -> None:
        self._note(name)

    @property
    def found(self) -> np.ndarray:
        return np.array(sorted(self._seen), dtype=str)

    def __enter__(self):
        self._api.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            self._api.__exit__(*exc)


LSTM_LIBRARY = ("lstm",)  # torch.lstm_cell, torch.lstm, nn.LSTMCell (through _VF.lstm_cell)
ATTENTION_LIBRARY = ("softmax", "softmin", "logsumexp", "scaled_dot_product", "attention")
MHA_LIBRARY = ("scaled_dot_product", "attention", "transformer")  # softmax is allowed there


def rotation_residual(pe: np.ndarray, shifts) -> float:
    """max |PE[p + k] - R_k PE[p]| over p and the shifts k, where R_k rotates pair i,
    (PE[p, 2i], PE[p, 2i+1]), by the fixed angle k * omega_i: the angle-addition formulas."""
    n, d = pe.shape
    omega = 10000.0 ** (-np.arange(0, d, 2, dtype=np.float64) / d)  # (d/2,)
    worst = 0.0
    for k in shifts:
        s, c = pe[: n - k, 0::2], pe[: n - k, 1::2]  # (n - k, d/2): sin and cos of p * omega
        cos_k, sin_k = np.cos(k * omega), np.sin(k * omega)
        s_next = s * cos_k + c * sin_k  # sin((p + k) w) = sin(pw) cos(kw) + cos(pw) sin(kw)
        c_next = c * cos_k - s * sin_k  # cos((p + k) w) = cos(pw) cos(kw) - sin(pw) sin(kw)
        err = max(np.abs(pe[k:, 0::2] - s_next).max(initial=0.0), np.abs(pe[k:, 1::2] - c_next).max(initial=0.0))
        worst = max(worst, float(err))
    return worst


def _tensor(a, grad=False):
    return torch.tensor(a, device=DEVICE, requires_grad=grad)


def _pair(out, what: str):
    if not isinstance(out, (tuple, list)) or len(out) != 2 or not all(torch.is_tensor(t) for t in out):
        raise TypeError(f"{what} must return a tuple of two tensors, got {type(out).__name__}")
    return out


LSTM_INPUTS = ("x", "h", "c", "W_ih", "W_hh", "b_ih", "b_hh")


def _lstm_case(rng, kind, B, I, H, scale=1.0, zero_state=False, forget_bias=0.0):
    w = 1 / math.sqrt(H)
    x = rng.standard_normal((B, I)) * scale
    h = np.zeros((B, H)) if zero_state else np.tanh(rng.standard_normal((B, H)))
    c = np.zeros((B, H)) if zero_state else rng.standard_normal((B, H))
    W_ih = rng.uniform(-w, w, (4 * H, I)) * scale
    W_hh = rng.uniform(-w, w, (4 * H, H)) * scale
    b_ih, b_hh = rng.uniform(-w, w, 4 * H), rng.uniform(-w, w, 4 * H)
    b_ih[H:2 * H] += forget_bias
    gh, gc = rng.standard_normal((B, H)), rng.standard_normal((B, H))  # cotangents for the backward
    return Case(kind, (x, h, c, W_ih, W_hh, b_ih, b_hh, gh, gc))


def _lstm_cases(rng):
    B, I, H = (int(v) for v in rng.integers(2, 9, 3))
    return [
        _lstm_case(rng, "the batch size is 1", 1, 3, 4),
        _lstm_case(rng, "the batch size is 5 and the input size (7) differs from the hidden size (3)", 5, 7, 3),
        _lstm_case(rng, "the batch, input and hidden sizes are random", B, I, H),
        _lstm_case(rng, "the state starts at zero (h = c = 0)", 3, 4, 6, zero_state=True),
        _lstm_case(rng, "the forget gate is biased open (b_f = +4)", 4, 5, 5, forget_bias=4.0),
        _lstm_case(rng, "the pre-activations are large (saturated gates)", 3, 6, 4, scale=12.0),
        _lstm_case(rng, "the hidden size is 1", 2, 3, 1),
    ]


def _lstm_outputs(h1, c1, inputs, gh, gc):
    out = {"h": to_numpy(h1), "c": to_numpy(c1)}
    if not (h1.requires_grad or c1.requires_grad):
        raise RuntimeError("the returned tensors carry no autograd graph: compute h' and c' with torch "
                           "operations on the given tensors (no .detach(), .data, .numpy() or torch.no_grad())")
    loss = (h1 * gh).sum() + (c1 * gc).sum()
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    for name, t, g in zip(LSTM_INPUTS, inputs, grads):
        out[f"grad_{name}"] = to_numpy(torch.zeros_like(t) if g is None else g)
    return out


def _run_lstm(fn, case: Case):
    *arrays, gh, gc = case.args
    inputs = [_tensor(a, grad=True) for a in arrays]
    with LibraryCalls(LSTM_LIBRARY) as calls:
        h1, c1 = _pair(fn(*inputs), "lstm_cell")
    return {**_lstm_outputs(h1, c1, inputs, _tensor(gh), _tensor(gc)), "library_calls": calls.found}


def _qkv(rng, lead, Lq, Lk, D, Dv, dtype=np.float64):
    q, k, v = rng.standard_normal((*lead, Lq, D)), rng.standard_normal((*lead, Lk, D)), rng.standard_normal((*lead, Lk, Dv))
    return q.astype(dtype), k.astype(dtype), v.astype(dtype)


def _attention_case(rng, kind, q, k, v, mask):
    """A case with the cotangents of a backward pass: g_out (..., Lq, Dv) and g_w (..., Lq, Lk)."""
    g_out = rng.standard_normal((*q.shape[:-1], v.shape[-1]))
    g_w = rng.standard_normal((*q.shape[:-1], k.shape[-2]))
    return Case(kind, (q, k, v, mask, g_out, g_w))


def _attention_cases(rng):
    Lq, Lk, D, Dv = (int(v) for v in rng.integers(2, 10, 4))
    causal = np.tril(np.ones((6, 6), dtype=bool))
    lengths = np.array([5, 2, 7])  # valid keys per batch element
    padding = (np.arange(7)[None, :] < lengths[:, None])[:, None, None, :]  # (3, 1, 1, 7)
    random_mask = rng.random((2, 5, 6)) < 0.6
    random_mask[:, :, 0] = True  # every row keeps one key
    fully = rng.random((2, 3, 6, 5)) < 0.5
    fully[..., 0] = True
    fully[0, 1, 2] = False  # rows with no allowed key
    fully[1, :, 4] = False
    q, k, v = _qkv(rng, (2,), 4, 6, 8, 3)
    k_big = k.copy()
    k_big[:, 3] = k_big[:, 1]  # two equal keys: a tie at the top of every row
    big = 1e4 / np.abs(q @ np.swapaxes(k_big, -1, -2) / math.sqrt(8)).mean()  # logits of magnitude ~1e4
    return [
        _attention_case(rng, "q, k, v are 2-D (L, D) and there is no mask", *_qkv(rng, (), 5, 5, 4, 4), None),
        _attention_case(rng, "Lq, Lk, D and Dv all differ (random sizes)", *_qkv(rng, (), Lq, Lk, D, Dv), None),
        _attention_case(rng, "there are leading batch and head dimensions (2, 3, L, D)", *_qkv(rng, (2, 3), 7, 9, 16, 5), None),
        _attention_case(rng, "the mask is causal (6, 6), broadcast over the batch", *_qkv(rng, (2,), 6, 6, 8, 8), causal),
        _attention_case(rng, "a padding mask (3, 1, 1, 7) is broadcast over heads and queries", *_qkv(rng, (3, 2), 4, 7, 8, 6), padding),
        _attention_case(rng, "the mask is random with the same shape as the scores", *_qkv(rng, (2,), 5, 6, 4, 3), random_mask),
        _attention_case(rng, "some rows have every key masked (zero weights, a zero output and no NaN, forward and "
                             "backward)", *_qkv(rng, (2, 3), 6, 5, 8, 4), fully),
        _attention_case(rng, "the logits are of magnitude 1e4 (exp overflows unless each row's max is subtracted)",
                        q * big, k_big, v, None),
        _attention_case(rng, "the inputs are float32 (the outputs keep the dtype)",
                        *_qkv(rng, (2,), 5, 7, 8, 4, np.float32), np.tril(np.ones((5, 7), bool), k=2)),
    ]


def attention_grads(o, w, q, k, v, g_out, g_w) -> dict:
    """dq, dk, dv of sum(o * g_out) + sum(w * g_w), by autograd through o and w's own graph."""
    if not (o.requires_grad or w.requires_grad):
        raise RuntimeError("the returned tensors carry no autograd graph: compute them with torch operations "
                           "on q, k and v (no .detach(), .data, .numpy() or torch.no_grad())")
    loss = (o * g_out).sum() + (w * g_w).sum()
    grads = torch.autograd.grad(loss, (q, k, v), allow_unused=True)
    return {f"grad_{n}": to_numpy(torch.zeros_like(t) if g is None else g) for n, t, g in zip("qkv", (q, k, v), grads)}


def _run_attention(fn, case: Case):
    q, k, v, mask, g_out, g_w = case.args
    backward = q.dtype == np.float64  # gradients are compared in float64
    q, k, v = (_tensor(a, grad=backward) for a in (q, k, v))
    with LibraryCalls(ATTENTION_LIBRARY) as calls:
        out = fn(q, k, v) if mask is None else fn(q, k, v, _tensor(mask))
        o, w = _pair(out, "scaled_dot_product_attention")
    result = {"out": to_numpy(o), "weights": to_numpy(w), "library_calls": calls.found}
    if backward and o.shape == g_out.shape and w.shape == g_w.shape:  # else the check names the shapes
        result.update(attention_grads(o, w, q, k, v, _tensor(g_out), _tensor(g_w)))
    return result


def _mha_case(rng, kind, B, L, d, n_heads, mask=None, perturb_after=None):
    s = 1 / math.sqrt(d)
    x = rng.standard_normal((B, L, d))
    in_w, in_b = rng.normal(0, s, (3 * d, d)), rng.normal(0, 0.1, 3 * d)
    out_w, out_b = rng.normal(0, s, (d, d)), rng.normal(0, 0.1, d)
    x2 = None
    if perturb_after is not None:
        x2 = x.copy()
        x2[:, perturb_after + 1:] += rng.standard_normal((B, L - perturb_after - 1, d))
    return Case(kind, (d, n_heads, x, mask, in_w, in_b, out_w, out_b, x2, perturb_after))


def _mha_cases(rng):
    L = int(rng.integers(3, 9))
    lengths = np.array([6, 3])
    padding = (np.arange(6)[None, :] < lengths[:, None])[:, None, None, :]  # (2, 1, 1, 6)
    t = int(rng.integers(1, 6))
    return [
        _mha_case(rng, "d_model = 8, n_heads = 2, no mask", 2, 5, 8, 2),
        _mha_case(rng, "n_heads = 1 (a single head of width d_model)", 1, 4, 6, 1),
        _mha_case(rng, f"d_model = 12, n_heads = 3, L = {L}", 3, L, 12, 3),
        _mha_case(rng, "n_heads = d_model (heads of width 1)", 2, 4, 4, 4),
        _mha_case(rng, "the mask is causal (L, L)", 2, 6, 8, 4, mask=np.tril(np.ones((6, 6), bool))),
        _mha_case(rng, "a padding mask (B, 1, 1, L) hides the last keys of a sequence", 2, 6, 8, 2, mask=padding),
        _mha_case(rng, f"the mask is causal and the inputs after position {t} are perturbed "
                       f"(outputs up to position {t} must not change)", 2, 7, 8, 2,
                  mask=np.tril(np.ones((7, 7), bool)), perturb_after=t),
        Case("d_model % n_heads != 0 (d_model = 10, n_heads = 4: raise ValueError)", (10, 4)),
    ]


_MISSING = object()


def _library_attention(q, k, v, mask=None):
    """Exercise 2's contract, (output, weights), through torch's softmax: what the learner's
    `scaled_dot_product_attention` is replaced by while MultiHeadAttention is graded, so that a
    mistake there is not counted twice (this road is refused in exercise 2 itself)."""
    logits = torch.einsum("...id,...jd->...ij", q, k) * q.shape[-1] ** -0.5  # (..., Lq, Lk)
    if mask is not None:
        logits = logits.masked_fill(mask.logical_not(), -math.inf)
    weights = torch.nan_to_num(torch.softmax(logits, dim=-1), nan=0.0)  # a row with no key: zeros
    return torch.einsum("...ij,...jd->...id", weights, v), weights


def _namespaces(cls) -> list[dict]:
    """The global namespaces of the functions a class (and its bases from the same module) defines:
    a notebook's one namespace."""
    found = {}
    for klass in getattr(cls, "__mro__", (cls,)):
        if getattr(klass, "__module__", None) != getattr(cls, "__module__", None):
            continue
        for value in vars(klass).values():
            g = getattr(value, "__globals__", None)
            if g is not None:
                found[id(g)] = g
    return list(found.values())


def _run_mha(fn, case: Case):
    """Grades this exercise alone: the learner's layer runs with `_library_attention` in place of
    their `scaled_dot_product_attention`, the name the exercise says to call."""
    spaces = _namespaces(fn)
    before = [ns.get("scaled_dot_product_attention", _MISSING) for ns in spaces]
    for ns in spaces:
        ns["scaled_dot_product_attention"] = _library_attention
    try:
        return _run_mha_alone(fn, case)
    finally:
        for ns, old in zip(spaces, before):
            if old is _MISSING:
                ns.pop("scaled_dot_product_attention", None)
            else:
                ns["scaled_dot_product_attention"] = old


def _run_mha_alone(fn, case: Case):
    if len(case.args) == 2:
        try:
            fn(*case.args)
        except Exception as e:
            return {"raised": np.array(type(e).__name__)}
        return {"raised": np.array("nothing")}
    d, n_heads, x, mask, in_w, in_b, out_w, out_b, x2, t = case.args
    torch.manual_seed(0)
    layer = fn(d, n_heads)
    if not isinstance(layer, nn.Module):
        raise TypeError(f"MultiHeadAttention(d_model, n_heads) must build an nn.Module, got {type(layer).__name__}")
    n_params = sum(p.numel() for p in layer.parameters())
    layer = layer.to(device=DEVICE, dtype=torch.float64)
    for name, shapes in (("in_proj", ((3 * d, d), (3 * d,))), ("out_proj", ((d, d), (d,)))):
        lin = getattr(layer, name, None)
        if not isinstance(lin, nn.Linear) or lin.bias is None:
            raise AttributeError(f"the module needs self.{name} = nn.Linear(...) with a bias (see the exercise)")
        if tuple(lin.weight.shape) != shapes[0]:
            raise ValueError(f"{name}.weight has shape {tuple(lin.weight.shape)}, expected {shapes[0]}")
    with torch.no_grad():
        layer.in_proj.weight.copy_(_tensor(in_w))
        layer.in_proj.bias.copy_(_tensor(in_b))
        layer.out_proj.weight.copy_(_tensor(out_w))
        layer.out_proj.bias.copy_(_tensor(out_b))
        m = None if mask is None else _tensor(mask)
        with LibraryCalls(MHA_LIBRARY) as calls:
            out = layer(_tensor(x)) if m is None else layer(_tensor(x), m)
            out2 = None if x2 is None else layer(_tensor(x2), m)
        result = {"out": to_numpy(out), "n_params": np.array(n_params, dtype=np.int64), "library_calls": calls.found}
        if out2 is not None:
            result["causal_leak"] = np.array(float((out2[:, : t + 1] - out[:, : t + 1]).abs().max()))
    return result


def _pe_cases(rng):
    n, d = int(rng.integers(20, 200)), 2 * int(rng.integers(2, 40))
    return [
        Case("n_pos = 1, d_model = 2 (one (sin, cos) pair)", (1, 2)),
        Case("n_pos = 50, d_model = 16", (50, 16)),
        Case(f"n_pos = {n}, d_model = {d} (random sizes)", (n, d)),
        Case("n_pos = 2048, d_model = 512 (large positions)", (2048, 512)),
        Case("n_pos = 0 (an empty (0, d_model) tensor)", (0, 8)),
        Case("d_model is odd (7: raise ValueError)", (5, 7)),
        Case("shifting by k rotates each (sin, cos) pair by a fixed angle: PE[p+k] = R_k PE[p]", (300, 64)),
    ]


ROTATION_SHIFTS = (1, 7, 100)


def _run_pe(fn, case: Case):
    n_pos, d = case.args
    if d % 2:
        try:
            fn(n_pos, d)
        except Exception as e:
            return {"raised": np.array(type(e).__name__)}
        return {"raised": np.array("nothing")}
    pe = to_numpy(fn(n_pos, d))
    out = {"pe": pe}
    if "rotates" in case.kind and pe.shape == (n_pos, d):
        out["rotation_residual"] = np.array(rotation_residual(pe.astype(np.float64), ROTATION_SHIFTS))
    return out


# ---------------------------------------------------------------- exercise 6: decode_greedy


class TinyBlock(nn.Module):
    """A causal pre-LN block (section 8) with its attention written out: x + out(attn(LN1 x)), then
    x + ff2(GELU(ff1(LN2 x))). `attn_in` projects to (q, k, v), each d wide, heads of d / n_heads
    consecutive features."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn_in, self.attn_out = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
        self.ff1, self.ff2 = nn.Linear(d_model, 4 * d_model), nn.Linear(4 * d_model, d_model)

    def heads(self, t):  # (L, d) -> (n_heads, L, d / n_heads)
        return t.unflatten(-1, (self.n_heads, -1)).transpose(0, 1)

    def forward(self, x):  # x (L, d), one sequence
        L, d = x.shape
        q, k, v = (self.heads(t) for t in self.attn_in(self.ln1(x)).split(d, dim=-1))  # (h, L, dh) each
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.n_heads)  # (h, L, L)
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        weights = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
        x = x + self.attn_out((weights @ v).transpose(0, 1).flatten(-2))  # (L, d)
        return x + self.ff2(F.gelu(self.ff1(self.ln2(x))))


class TinyLM(nn.Module):
    """A tiny causal language model for Exercise 6: token embedding, sinusoidal positions added
    (section 6), `n_layers` TinyBlocks, a final LayerNorm, logits through the embedding matrix
    (tied). `forward(tokens)` maps a 1-D LongTensor of L ids to (L, vocab) logits, every position
    attending to itself and the positions before it: the uncached way to decode."""

    def __init__(self, vocab: int = 50, d_model: int = 32, n_heads: int = 4, n_layers: int = 2, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(vocab, d_model)
        self.blocks = nn.ModuleList(TinyBlock(d_model, n_heads) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d_model)

    def positions(self, start: int, count: int):  # (count, d): PE rows start .. start + count - 1
        d = self.embed.embedding_dim
        p = torch.arange(start, start + count, dtype=torch.float64, device=self.embed.weight.device)[:, None]
        omega = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64, device=p.device) / d)
        return torch.stack([torch.sin(p * omega), torch.cos(p * omega)], -1).flatten(-2).to(self.embed.weight.dtype)

    def logits(self, x):  # (L, d) output of the last block -> (L, vocab)
        return self.ln(x) @ self.embed.weight.T

    def forward(self, tokens):  # (L,) -> (L, vocab)
        x = self.embed(tokens) + self.positions(0, len(tokens))  # (L, d)
        for block in self.blocks:
            x = block(x)
        return self.logits(x)


def _storage_ptr(t: torch.Tensor):
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return None


class WeightRows(OpWatch):
    """How many rows (token vectors) each watched weight matrix multiplied while active: every
    matrix product with the weight (or a view or copy of it: the watch follows any op whose output
    has the weight's size) among its inputs adds its output's elements over the weight's output
    width. `rows[name]`: the count per weight."""

    def __init__(self, weights: dict):
        super().__init__()
        self.rows = {name: 0 for name in weights}
        self._width = {name: w.shape[0] for name, w in weights.items()}
        self._numel = {name: w.numel() for name, w in weights.items()}
        self._ptrs = {_storage_ptr(w): name for name, w in weights.items()}
        self._followed = []

    def on_op(self, name, func, args, kwargs, out):
        ins = [t for t in tensors((args, kwargs)) if t.numel()]
        hit = {self._ptrs[p] for p in map(_storage_ptr, ins) if p in self._ptrs}
        for weight in hit:
            for t in tensors(out):
                if name in MATMULS:  # a product: its output holds one row per token vector multiplied
                    self.rows[weight] += t.numel() // self._width[weight]
                elif t.numel() == self._numel[weight]:  # a view or copy of the weight (clone, .to, * 1.0): follow it
                    self._ptrs.setdefault(_storage_ptr(t), weight)
                    self._followed.append(t)  # kept alive while watched: a freed address could be reused


MATMULS = frozenset({"mm", "addmm", "bmm", "baddbmm", "mv", "addmv", "matmul", "dot", "vdot", "linear",
                     "_addmm_activation", "addbmm", "einsum", "tensordot", "inner", "outer", "ger", "mkldnn_linear"})


def _decode_case(rng, kind, prompt_len, steps, vocab=50, d=32, heads=4, layers=2):
    seed = int(rng.integers(0, 2**31 - 1))
    prompt = rng.integers(0, vocab, prompt_len)
    return Case(kind, (np.array([vocab, d, heads, layers, seed]), prompt, np.array(steps)))


def _decode_cases(rng):
    return [
        _decode_case(rng, "a prompt of one token", 1, 6),
        _decode_case(rng, "a prompt of 5 tokens, 8 new ones", 5, 8),
        _decode_case(rng, "one new token only (the prefill alone decides it)", 4, 1),
        _decode_case(rng, "three layers, 2 heads", 3, 7, layers=3, heads=2),
        _decode_case(rng, "a random model, 12 new tokens", int(rng.integers(2, 7)), 12),
    ]


def decode_model(config) -> TinyLM:
    vocab, d, heads, layers, seed = (int(v) for v in config)
    with torch.random.fork_rng(devices=[]):  # the model's seed leaves the caller's random state alone
        return TinyLM(vocab, d, heads, layers, seed).double().to(DEVICE).eval()


def _run_decode(fn, case: Case):
    config, prompt, steps = case.args
    model = decode_model(config)
    watched = {f"blocks.{i}.{part}": getattr(b, part).weight for i, b in enumerate(model.blocks)
               for part in ("attn_in", "ff1")}
    with torch.no_grad(), WeightRows(watched) as rows:
        out = fn(model, torch.tensor(prompt, device=DEVICE), int(steps))
    tokens, logits = _pair(out, "decode_greedy")  # (steps,) ids and the (steps, V) logits that chose them
    names = sorted(watched)
    return {"tokens": to_numpy(tokens).astype(np.int64).reshape(-1), "logits": to_numpy(logits),
            "weights": np.array(names, dtype=str), "rows": np.array([rows.rows[n] for n in names], dtype=np.int64)}


# ---------------------------------------------------------------- exercise 5: rnn_bptt


class AutogradUse(TorchFunctionMode):
    """Whether autograd did any of the work while active: a torch function that returned a tensor
    requiring grad (a graph was being built: requires_grad_, enable_grad, a parameter) or a call
    into autograd's engine (Tensor.backward, torch.autograd.grad, torch.func's transforms reach
    aten through it). `names`: the functions seen doing so, sorted."""

    ENGINE = ("backward", "grad", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "vmap")

    def __init__(self):
        super().__init__()
        self._seen = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "") or ""
        if name in self.ENGINE or name.startswith("_make_grads"):
            self._seen.add(name)
        out = func(*args, **(kwargs or {}))
        if any(t.requires_grad for t in tensors(out)):
            self._seen.add(name or "a torch function")
        return out

    @property
    def names(self) -> np.ndarray:
        return np.array(sorted(self._seen), dtype=str)


BPTT_INPUTS = ("x", "h0", "W_xh", "W_hh", "b", "dL_dh")
BPTT_OUTPUTS = ("dW_xh", "dW_hh", "db", "dh0")


def _bptt_case(rng, kind, T, B, I, H, scale=1.0, last_only=False, zero_h0=False):
    x = rng.standard_normal((T, B, I))
    h0 = np.zeros((B, H)) if zero_h0 else np.tanh(rng.standard_normal((B, H)))
    W_xh = rng.standard_normal((H, I)) / math.sqrt(I)
    W_hh = scale * rng.standard_normal((H, H)) / math.sqrt(H)
    b = 0.1 * rng.standard_normal(H)
    dL_dh = rng.standard_normal((T, B, H))
    if last_only:
        dL_dh[:-1] = 0.0  # the loss reads only h_T: every earlier gradient arrives through the recurrence
    return Case(kind, (x, h0, W_xh, W_hh, b, dL_dh))


def _bptt_cases(rng):
    T, B, I, H = (int(v) for v in rng.integers(2, 9, 4))
    return [
        _bptt_case(rng, "one step (T = 1): dh0 = W_hh^T (diag(1 - h_1^2) dL/dh_1)", 1, 2, 3, 4),
        _bptt_case(rng, "two steps, batch 1", 2, 1, 3, 5),
        _bptt_case(rng, "the loss reads only h_T (every other gradient comes through the recurrence)", 9, 3, 4, 6,
                   last_only=True),
        _bptt_case(rng, "random sizes, a loss at every step", T, B, I, H),
        _bptt_case(rng, "h0 = 0 (the first step's W_hh term vanishes, dh0 does not)", 6, 2, 5, 3, zero_h0=True),
        _bptt_case(rng, "large recurrent weights (saturated tanh)", 7, 2, 3, 4, scale=4.0),
        _bptt_case(rng, "a hidden size of 1", 5, 3, 2, 1),
    ]


def _run_bptt(fn, case: Case):
    inputs = [_tensor(a) for a in case.args]  # no requires_grad: the gradients are the learner's to compute
    with AutogradUse() as used, LibraryCalls(LSTM_LIBRARY + ("rnn_tanh", "rnn_relu", "_cudnn_rnn")) as calls:
        out = fn(*inputs)
    if not isinstance(out, (tuple, list)) or len(out) != 4 or not all(torch.is_tensor(t) for t in out):
        raise TypeError(f"rnn_bptt must return a tuple of four tensors (dW_xh, dW_hh, db, dh0), got {type(out).__name__}")
    result = {name: to_numpy(t) for name, t in zip(BPTT_OUTPUTS, out)}
    return {**result, "autograd": used.names, "library_calls": calls.found}



# Names refused in the learner's source (a ".name" only as an attribute: F.softmax, x.softmax, not the
# learner's own function softmax); the runs' LibraryCalls catch the same calls reached any other way.
LSTM_REFUSED = frozenset({"LSTMCell", "LSTM", "_VF", "lstm_cell", "_VariableFunctions", ".lstm",
                          ".quantized_lstm_cell", "._thnn_fused_lstm_cell"})
BPTT_REFUSED = frozenset({"autograd", ".backward", ".grad", "torch.func", "functorch", "vjp", "jvp", "jacrev",
                          "jacfwd", "vmap", "hessian", "requires_grad_", ".requires_grad", "enable_grad",
                          "set_grad_enabled", "inference_mode", "._C", "overrides", "RNN", "RNNCell", "rnn_tanh", "rnn_tanh_cell", "_VF", "_VariableFunctions"})
DECODE_REFUSED = frozenset({"numpy", ".numpy", "np", "scaled_dot_product_attention", "MultiheadAttention"})
MHA_REFUSED = frozenset({"MultiheadAttention", "multi_head_attention_forward", "_native_multi_head_attention"})
ATTENTION_REFUSED = frozenset({"scaled_dot_product_attention", *MHA_REFUSED, "scipy", ".softmax", ".log_softmax",
                               ".logsumexp", ".softmin", ".gumbel_softmax", "._softmax", "._log_softmax",
                               "._safe_softmax", ".Softmax", ".LogSoftmax", ".Softmin", ".Softmax2d"})


TASKS = {
    "lstm_cell": Task(
        "lstm_cell", _lstm_cases, _run_lstm,
        forbidden=LSTM_REFUSED,
        why="write the four gates and the cell update yourself from matrix products, sigmoid and tanh.",
    ),
    "scaled_dot_product_attention": Task(
        "scaled_dot_product_attention", _attention_cases, _run_attention,
        forbidden=ATTENTION_REFUSED,
        why="compute the scores, the mask and the softmax yourself (the row maximum subtracted before exp, the sum, "
            "the division: Algorithm 2 of section 4); torch's softmax, log_softmax, logsumexp and fused attention "
            "are refused, the point is to see each step.",
    ),
    "MultiHeadAttention": Task(
        "MultiHeadAttention", _mha_cases, _run_mha,
        forbidden=MHA_REFUSED,
        why="split the heads, attend with your own scaled_dot_product_attention and merge them yourself; torch's "
            "MultiheadAttention is what you are checked against.",
    ),
    "sinusoidal_positional_encoding": Task("sinusoidal_positional_encoding", _pe_cases, _run_pe),
    "decode_greedy": Task(
        "decode_greedy", _decode_cases, _run_decode,
        forbidden=DECODE_REFUSED,
        why="decode in torch, on the model's own weights, with a cache of keys and values per layer (section 9, "
            "'Decoding with a KV cache').",
    ),
    "rnn_bptt": Task(
        "rnn_bptt", _bptt_cases, _run_bptt,
        forbidden=BPTT_REFUSED,
        why="back-propagate through time yourself: run the forward, keep the states, then walk back from step T "
            "to step 1 carrying dL/dh_t (section 1); autograd in any form (backward, torch.autograd, torch.func) "
            "would do the exercise for you.",
    ),
}
