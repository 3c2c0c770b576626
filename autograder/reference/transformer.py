"""Chapter 03: from RNNs to the Transformer.

Specs (the ground truth, plain NumPy/PyTorch, fp64): the LSTM cell written out gate by gate,
scaled dot-product attention with a boolean mask (fully masked rows give zeros), multi-head
attention as an explicit loop over heads, and the sinusoidal positional encoding formula.
Fast implementations (run on CUDA when present): torch's fused LSTM cell, `nn.MultiheadAttention`
and `F.scaled_dot_product_attention`. Grading compares the learner with `nn.LSTMCell` and
`nn.MultiheadAttention` (as the exercises promise) and with the attention and encoding specs.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autograder.device import DEVICE
from autograder.exercise import Case, Exercise, require, to_numpy
from autograder.tolerance import compare, tolerance

# ---------------------------------------------------------------- specs


def lstm_cell_spec(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """One LSTM step (Hochreiter and Schmidhuber 1997, with a forget gate as in Gers et al. 2000),
    PyTorch's layout: the 4H rows of W_ih (4H, I), W_hh (4H, H) and the biases are the gates
    i, f, g, o in that order."""
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)  # (B, H) each
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_next = f * c + i * g  # (B, H): the additive cell path
    h_next = o * torch.tanh(c_next)  # (B, H)
    return h_next, c_next


def lstm_cell_torch(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """The same step through nn.LSTMCell (fused on CUDA) with the given tensors as its weights
    (functional_call keeps them in the autograd graph, so gradients reach W_ih and the rest)."""
    cell = nn.LSTMCell(W_ih.shape[1], W_hh.shape[1], dtype=x.dtype, device=x.device)
    weights = {"weight_ih": W_ih, "weight_hh": W_hh, "bias_ih": b_ih, "bias_hh": b_hh}
    return torch.func.functional_call(cell, weights, (x, (h, c)))


def attention_spec(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d_k)) v over the allowed keys (Vaswani et al. 2017), in NumPy fp64.

    q (..., Lq, D), k (..., Lk, D), v (..., Lk, Dv); mask is boolean, broadcastable to
    (..., Lq, Lk), True where attention is allowed. A row with no allowed key gets weights 0 and
    output 0. Returns (output (..., Lq, Dv), weights (..., Lq, Lk)).
    """
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    top = scores.max(axis=-1, keepdims=True)  # (..., Lq, 1)
    top = np.where(np.isfinite(top), top, 0.0)  # a fully masked row has max -inf
    e = np.exp(scores - top)  # exp(-inf) = 0: masked keys weigh nothing
    z = e.sum(axis=-1, keepdims=True)
    weights = np.divide(e, z, out=np.zeros_like(e), where=z > 0)
    return weights @ v, weights


def attention_torch(q, k, v, mask=None):
    """attention_spec in torch on the tensors' device (returns the weights, unlike
    F.scaled_dot_product_attention)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    top = scores.amax(dim=-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    e = torch.exp(scores - top)
    z = e.sum(dim=-1, keepdim=True)
    weights = torch.where(z > 0, e / torch.where(z > 0, z, torch.ones_like(z)), torch.zeros_like(e))
    return weights @ v, weights


def mha_spec(x, in_w, in_b, out_w, out_b, n_heads, mask=None):
    """Multi-head attention as a loop over heads, NumPy fp64: project x (B, L, d) to q, k, v with
    the stacked in_w (3d, d), attend head by head on slices of d // n_heads columns, concatenate,
    project with out_w (d, d)."""
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[-1]
    dh = d // n_heads
    qkv = x @ in_w.T + in_b  # (B, L, 3d)
    q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]  # (B, L, d) each
    m = None if mask is None else np.broadcast_to(mask, (x.shape[0], n_heads, x.shape[1], x.shape[1]))
    heads = []
    for h in range(n_heads):
        cols = slice(h * dh, (h + 1) * dh)
        out, _ = attention_spec(q[..., cols], k[..., cols], v[..., cols], None if m is None else m[:, h])
        heads.append(out)  # (B, L, dh)
    return np.concatenate(heads, axis=-1) @ out_w.T + out_b  # (B, L, d)


def mha_torch(x, in_w, in_b, out_w, out_b, n_heads, mask=None):
    """The same layer through nn.MultiheadAttention(batch_first=True) with the given weights;
    mask (True = allowed) is turned into its attn_mask (True = not allowed), (B * H, L, L)."""
    B, L, d = x.shape
    layer = nn.MultiheadAttention(d, n_heads, batch_first=True, dtype=x.dtype, device=x.device).eval()
    with torch.no_grad():
        layer.in_proj_weight.copy_(in_w)
        layer.in_proj_bias.copy_(in_b)
        layer.out_proj.weight.copy_(out_w)
        layer.out_proj.bias.copy_(out_b)
        attn_mask = None
        if mask is not None:
            attn_mask = ~torch.broadcast_to(mask, (B, n_heads, L, L)).reshape(B * n_heads, L, L)
        out, _ = layer(x, x, x, attn_mask=attn_mask, need_weights=False)
    return out


class FastMultiHeadAttention(nn.Module):
    """Multi-head attention on F.scaled_dot_product_attention (flash/memory-efficient kernels on
    CUDA): the layer the benchmark times."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not a multiple of n_heads {n_heads}")
        self.n_heads = n_heads
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x, mask=None, causal=False):
        B, L, d = x.shape
        q, k, v = self.in_proj(x).split(d, dim=-1)  # (B, L, d) each
        q, k, v = (t.view(B, L, self.n_heads, d // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, H, L, dh)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)  # (B, H, L, dh)
        return self.out_proj(out.transpose(1, 2).reshape(B, L, d))


def positional_encoding_spec(n_pos: int, d_model: int) -> np.ndarray:
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d)) (Vaswani et al.
    2017, section 3.5), float64, (n_pos, d_model)."""
    if d_model % 2:
        raise ValueError(f"d_model must be even, got {d_model}")
    p = np.arange(n_pos, dtype=np.float64)[:, None]  # (n_pos, 1)
    omega = 10000.0 ** (-np.arange(0, d_model, 2, dtype=np.float64) / d_model)  # (d/2,) frequencies
    pe = np.empty((n_pos, d_model))
    pe[:, 0::2] = np.sin(p * omega)
    pe[:, 1::2] = np.cos(p * omega)
    return pe


def positional_encoding_torch(n_pos: int, d_model: int, device=DEVICE, dtype=torch.float64):
    """positional_encoding_spec in torch on `device`: the (sin, cos) pairs stacked and flattened."""
    if d_model % 2:
        raise ValueError(f"d_model must be even, got {d_model}")
    p = torch.arange(n_pos, device=device, dtype=torch.float64)[:, None]
    omega = 10000.0 ** (-torch.arange(0, d_model, 2, device=device, dtype=torch.float64) / d_model)
    return torch.stack([torch.sin(p * omega), torch.cos(p * omega)], dim=-1).flatten(-2).to(dtype)


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


# ---------------------------------------------------------------- helpers for runs and checks


def _tensor(a, grad=False):
    return torch.tensor(a, device=DEVICE, requires_grad=grad)


def _pair(out, what: str):
    if not isinstance(out, (tuple, list)) or len(out) != 2 or not all(torch.is_tensor(t) for t in out):
        raise TypeError(f"{what} must return a tuple of two tensors, got {type(out).__name__}")
    return out


def _compare(got, want, key: str, hint: str) -> None:
    try:
        compare(got, want, key)
    except AssertionError as e:
        raise AssertionError(f"{e}. {hint}") from None


# ---------------------------------------------------------------- exercise 1: lstm_cell

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
    h1, c1 = _pair(fn(*inputs), "lstm_cell")
    return _lstm_outputs(h1, c1, inputs, _tensor(gh), _tensor(gc))


def _ref_lstm(case: Case):
    *arrays, gh, gc = case.args
    inputs = [torch.tensor(a, requires_grad=True) for a in arrays]  # CPU, fp64
    h1, c1 = lstm_cell_torch(*inputs)
    return _lstm_outputs(h1, c1, inputs, torch.tensor(gh), torch.tensor(gc))


LSTM_HINT = ("The 4H rows of W_ih, W_hh and the biases are the gates i, f, g, o in that order; g uses tanh, "
             "the others sigmoid; c' = f * c + i * g and h' = o * tanh(c').")
GRAD_HINT = ("The forward values are right but this gradient is not: keep every step a differentiable "
             "torch operation on the tensors you were given.")


def _check_lstm(case: Case, got, want):
    require(got, want)
    for key in ("h", "c"):
        _compare(got[key], want[key], "h' (the first output)" if key == "h" else "c' (the second output)", LSTM_HINT)
    for name in LSTM_INPUTS:
        _compare(got[f"grad_{name}"], want[f"grad_{name}"], f"the gradient with respect to {name}", GRAD_HINT)


# ---------------------------------------------------------------- exercise 2: scaled_dot_product_attention


def _qkv(rng, lead, Lq, Lk, D, Dv, dtype=np.float64):
    q, k, v = rng.standard_normal((*lead, Lq, D)), rng.standard_normal((*lead, Lk, D)), rng.standard_normal((*lead, Lk, Dv))
    return q.astype(dtype), k.astype(dtype), v.astype(dtype)


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
        Case("q, k, v are 2-D (L, D) and there is no mask", (*_qkv(rng, (), 5, 5, 4, 4), None)),
        Case("Lq, Lk, D and Dv all differ (random sizes)", (*_qkv(rng, (), Lq, Lk, D, Dv), None)),
        Case("there are leading batch and head dimensions (2, 3, L, D)", (*_qkv(rng, (2, 3), 7, 9, 16, 5), None)),
        Case("the mask is causal (6, 6), broadcast over the batch", (*_qkv(rng, (2,), 6, 6, 8, 8), causal)),
        Case("a padding mask (3, 1, 1, 7) is broadcast over heads and queries", (*_qkv(rng, (3, 2), 4, 7, 8, 6), padding)),
        Case("the mask is random with the same shape as the scores", (*_qkv(rng, (2,), 5, 6, 4, 3), random_mask)),
        Case("some rows have every key masked (they must give zero weights and a zero output, no NaN)",
             (*_qkv(rng, (2, 3), 6, 5, 8, 4), fully)),
        Case("the logits are of magnitude 1e4 (exp overflows unless each row's max is subtracted)",
             (q * big, k_big, v, None)),
        Case("the inputs are float32 (the outputs keep the dtype)", (*_qkv(rng, (2,), 5, 7, 8, 4, np.float32), np.tril(np.ones((5, 7), bool), k=2))),
    ]


def _run_attention(fn, case: Case):
    q, k, v, mask = case.args
    q, k, v = _tensor(q), _tensor(k), _tensor(v)
    out = fn(q, k, v) if mask is None else fn(q, k, v, _tensor(mask))
    o, w = _pair(out, "scaled_dot_product_attention")
    return {"out": to_numpy(o), "weights": to_numpy(w)}


def _ref_attention(case: Case):
    q, k, v, mask = case.args
    out, w = attention_spec(q, k, v, mask)
    return {"out": out.astype(q.dtype), "weights": w.astype(q.dtype)}


SCALE_HINT = ("Check the scores are q @ k^T scaled by 1/sqrt(d_k), d_k = q.shape[-1], and that the softmax runs "
              "over the last axis (the keys).")


def _check_attention(case: Case, got, want):
    require(got, want)
    for key in want:
        g = np.asarray(got[key])
        if g.shape != want[key].shape or g.dtype != want[key].dtype:
            raise AssertionError(f"{key} has shape {g.shape} and dtype {g.dtype}, expected shape {want[key].shape} and "
                                 f"dtype {want[key].dtype} (the weights are (..., Lq, Lk), the output (..., Lq, Dv))")
    o, w = np.asarray(got["out"], np.float64), np.asarray(got["weights"], np.float64)
    if not (np.isfinite(o).all() and np.isfinite(w).all()):
        if "every key masked" in case.kind:
            raise AssertionError("the output holds NaN: a row whose keys are all masked is softmax over all -inf, "
                                 "0/0. Give such rows zero weights and a zero output.")
        raise AssertionError("the output holds NaN or inf: exp overflows on large logits. Subtract each row's "
                             "maximum score before exp; softmax does not change.")
    mask = case.args[3]
    allowed = np.ones(w.shape, bool) if mask is None else np.broadcast_to(mask, w.shape)
    if np.any(w[~allowed] != 0):
        raise AssertionError(f"{int(np.sum(w[~allowed] != 0))} weights where the mask is False are not exactly 0: "
                             "set the masked scores to -inf before the softmax")
    live = allowed.any(axis=-1)  # (..., Lq) rows with at least one allowed key
    sums = w.sum(axis=-1)
    atol, rtol = tolerance(want["weights"].dtype)
    if np.any(np.abs(sums[live] - 1) > atol + rtol):
        fix = ("exp overflowed: subtract each row's maximum score before exp" if "magnitude" in case.kind else
               "normalise over the keys (the last axis), after masking: mask the scores before the softmax")
        raise AssertionError(f"{int(np.sum(np.abs(sums[live] - 1) > atol + rtol))} rows of weights do not sum to 1: {fix}")
    if np.any(w[~live] != 0) or np.any(o[~live] != 0):
        raise AssertionError("a row whose keys are all masked must give weights exactly 0 and an output exactly 0")
    _compare(got["weights"], want["weights"], "weights", SCALE_HINT)
    _compare(got["out"], want["out"], "output", "The output is weights @ v.")


# ---------------------------------------------------------------- exercise 3: MultiHeadAttention


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


def _run_mha(fn, case: Case):
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
        out = layer(_tensor(x)) if m is None else layer(_tensor(x), m)
        result = {"out": to_numpy(out), "n_params": np.array(n_params, dtype=np.int64)}
        if x2 is not None:
            out2 = layer(_tensor(x2), m)
            result["causal_leak"] = np.array(float((out2[:, : t + 1] - out[:, : t + 1]).abs().max()))
    return result


def _ref_mha(case: Case):
    if len(case.args) == 2:
        return {"raised": np.array("ValueError")}
    d, n_heads, x, mask, in_w, in_b, out_w, out_b, x2, t = case.args
    tensors = [torch.tensor(a) for a in (x, in_w, in_b, out_w, out_b)]
    out = mha_torch(*tensors, n_heads, None if mask is None else torch.tensor(mask))
    want = {"out": to_numpy(out), "n_params": np.array(4 * d * d + 4 * d, dtype=np.int64)}
    if x2 is not None:
        want["causal_leak"] = np.array(0.0)
    return want


MHA_HINT = ("Project with in_proj and split its 3 * d_model outputs into q, k, v (in that order); give each head "
            "d_model // n_heads consecutive columns: (B, L, d) -> (B, L, H, d/H) -> transpose to (B, H, L, d/H); "
            "attend per head; transpose back, merge the heads and apply out_proj.")


def _check_mha(case: Case, got, want):
    if "error" in got:
        raise AssertionError(f"raises {got['error']}")
    if "raised" in want:
        raised = str(got.get("raised", "nothing"))
        if raised != "ValueError":
            raise AssertionError(f"MultiHeadAttention(10, 4) must raise ValueError (10 heads' worth of columns cannot "
                                 f"be split into 4 equal heads); it raised {raised}")
        return
    require(got, want)
    if int(got["n_params"]) != int(want["n_params"]):
        raise AssertionError(f"the module has {int(got['n_params'])} parameters; in_proj and out_proj alone have "
                             "4 d^2 + 4 d, and the layer needs no others")
    if "causal_leak" in want and not float(got["causal_leak"]) <= tolerance("float64")[0]:
        raise AssertionError(f"perturbing later inputs changed earlier outputs by up to {float(got['causal_leak']):.3g}: "
                             "pass the mask to every head's attention (a (L, L) mask broadcasts over batch and heads)")
    hint = MHA_HINT if case.args[3] is None else MHA_HINT + " Pass the mask (True = may attend) to every head's attention."
    _compare(got["out"], want["out"], "output", hint)


# ---------------------------------------------------------------- exercise 4: sinusoidal_positional_encoding


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


def _ref_pe(case: Case):
    n_pos, d = case.args
    if d % 2:
        return {"raised": np.array("ValueError")}
    out = {"pe": positional_encoding_spec(n_pos, d)}
    if "rotates" in case.kind:
        out["rotation_residual"] = np.array(0.0)
    return out


PE_HINT = ("PE[p, 2i] = sin(p / 10000^(2i/d)) in the even columns and PE[p, 2i+1] = cos(p / 10000^(2i/d)) in the "
           "odd ones, computed in float64.")


def _check_pe(case: Case, got, want):
    if "error" in got:
        raise AssertionError(f"raises {got['error']}")
    if "raised" in want:
        raised = str(got.get("raised", "nothing"))
        if raised != "ValueError":
            raise AssertionError(f"an odd d_model must raise ValueError (the columns come in (sin, cos) pairs); it raised {raised}")
        return
    _compare(got["pe"], want["pe"], "PE", PE_HINT)
    if "rotation_residual" in want:
        res = float(got.get("rotation_residual", np.inf))
        if not res <= tolerance("float64")[0]:
            raise AssertionError(f"PE[p + k] differs from PE[p] rotated pair by pair by the angle k * omega_i by up to "
                                 f"{res:.3g}: each pair must be (sin, cos) of the same angle p * omega_i")


# ---------------------------------------------------------------- the exercises

EXERCISES = {
    "lstm_cell": Exercise(
        "lstm_cell", _lstm_cases, _run_lstm, _ref_lstm, _check_lstm,
        forbidden=frozenset({"LSTMCell", "LSTM", "_VF", "lstm_cell", "_VariableFunctions"}),
        why="write the four gates and the cell update yourself from matrix products, sigmoid and tanh.",
    ),
    "scaled_dot_product_attention": Exercise(
        "scaled_dot_product_attention", _attention_cases, _run_attention, _ref_attention, _check_attention,
        forbidden=frozenset({"scaled_dot_product_attention", "MultiheadAttention", "multi_head_attention_forward",
                             "_native_multi_head_attention"}),
        why="compute the scores, the mask and the softmax yourself; the point is to see each step.",
    ),
    "MultiHeadAttention": Exercise(
        "MultiHeadAttention", _mha_cases, _run_mha, _ref_mha, _check_mha,
        forbidden=frozenset({"MultiheadAttention", "multi_head_attention_forward", "_native_multi_head_attention"}),
        why="split the heads, attend and merge them yourself; torch's MultiheadAttention is what you are checked against.",
    ),
    "sinusoidal_positional_encoding": Exercise(
        "sinusoidal_positional_encoding", _pe_cases, _run_pe, _ref_pe, _check_pe,
    ),
}


# ---------------------------------------------------------------- benchmark (make bench)


def bench(timer, cuda: bool) -> dict:
    """Forward + backward time of nn.LSTM against one causal attention layer of the same width,
    as the sequence length n grows (batch B, width d, fp32)."""
    B, d, heads = (8, 512, 8) if cuda else (2, 64, 4)
    lengths = [2**k for k in range(6, 14)] if cuda else [2**k for k in range(5, 10)]
    torch.manual_seed(0)
    lstm = nn.LSTM(d, d, batch_first=True).to(DEVICE)
    attn = FastMultiHeadAttention(d, heads).to(DEVICE)
    rows = {"lengths": [], "batch": B, "d_model": d, "n_heads": heads, "dtype": "float32",
            "lstm_ms": [], "attention_ms": []}
    for n in lengths:
        x = torch.randn(B, n, d, device=DEVICE, requires_grad=True)
        rows["lengths"].append(n)
        rows["lstm_ms"].append(1e3 * timer(lambda: lstm(x)[0].sum().backward()))
        rows["attention_ms"].append(1e3 * timer(lambda: attn(x, causal=True).sum().backward()))
        del x
    return rows
