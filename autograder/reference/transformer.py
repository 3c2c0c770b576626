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
from autograder.cases.transformer import TASKS, BPTT_OUTPUTS, decode_model, LSTM_INPUTS, _lstm_outputs, attention_grads, rotation_residual  # noqa: F401
from autograder.exercise import Case, require, to_numpy
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


def rnn_forward(x, h0, W_xh, W_hh, b):
    """h_t = tanh(x_t W_xh^T + h_{t-1} W_hh^T + b) for t = 1..T (Elman 1990): (T, B, H)."""
    hs, h = [], h0
    for x_t in x:  # (B, I)
        h = torch.tanh(x_t @ W_xh.T + h @ W_hh.T + b)  # (B, H)
        hs.append(h)
    return torch.stack(hs)


def rnn_bptt_autograd(x, h0, W_xh, W_hh, b, dL_dh):
    """The gradients of L = sum_t <dL_dh[t], h_t> with respect to (W_xh, W_hh, b, h0), by autograd:
    the ground truth for Exercise 5 (fp64)."""
    leaves = [t.detach().clone().requires_grad_() for t in (W_xh, W_hh, b, h0)]
    W_xh_, W_hh_, b_, h0_ = leaves
    with torch.enable_grad():
        hs = rnn_forward(x, h0_, W_xh_, W_hh_, b_)  # (T, B, H)
        grads = torch.autograd.grad((hs * dL_dh).sum(), leaves)
    return tuple(g.detach() for g in grads)  # dW_xh, dW_hh, db, dh0


def decode_uncached(model, prompt, steps):
    """Greedy decoding the slow way: the whole sequence through the model for every new token.
    Returns the new ids (steps,) and the last position's logits at each step (steps, V)."""
    tokens, logits = prompt.clone(), []
    for _ in range(steps):
        logits.append(model(tokens)[-1])
        tokens = torch.cat([tokens, logits[-1].argmax()[None]])
    return tokens[len(prompt):], torch.stack(logits)


def decode_cached(model, prompt, steps):
    """Greedy decoding with a cache of every layer's keys and values (the reference of Exercise 6):
    the prompt once through the model (prefill), then one token per step."""
    caches = [None] * len(model.blocks)  # per layer: (k, v), each (h, n, dh)
    x, start, out = model.embed(prompt) + model.positions(0, len(prompt)), 0, []
    for _ in range(steps):
        for i, block in enumerate(model.blocks):
            d = x.shape[-1]
            q, k, v = (block.heads(t) for t in block.attn_in(block.ln1(x)).split(d, dim=-1))  # (h, m, dh)
            if caches[i] is not None:
                k, v = torch.cat([caches[i][0], k], 1), torch.cat([caches[i][1], v], 1)  # (h, n, dh)
            caches[i] = (k, v)
            n, m = k.shape[1], q.shape[1]
            allowed = torch.ones(m, n, dtype=torch.bool, device=x.device).tril(n - m)  # query j sees keys <= n - m + j
            scores = (q @ k.transpose(-1, -2) / math.sqrt(d // block.n_heads)).masked_fill(~allowed, float("-inf"))
            x = x + block.attn_out((torch.softmax(scores, -1) @ v).transpose(0, 1).flatten(-2))
            x = x + block.ff2(F.gelu(block.ff1(block.ln2(x))))
        out.append(model.logits(x)[-1])
        start += x.shape[0]
        x = model.embed(out[-1].argmax()[None]) + model.positions(start, 1)  # (1, d): only the new token goes in
    logits = torch.stack(out)  # (steps, V)
    return logits.argmax(-1), logits


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


# ---------------------------------------------------------------- helpers for runs and checks


def _compare(got, want, key: str, hint: str) -> None:
    try:
        compare(got, want, key)
    except AssertionError as e:
        raise AssertionError(f"{e}. {hint}") from None


NO_CALLS = np.array([], dtype=str)


def _refuse_library(got, advice: str) -> None:
    """The run's LibraryCalls record must be empty: name what ran, and what to write instead."""
    calls = [str(c) for c in np.asarray(got["library_calls"]).reshape(-1)]
    if calls:
        raise AssertionError(f"ran torch's {', '.join(calls)}: {advice}")


# ---------------------------------------------------------------- exercise 1: lstm_cell


def _ref_lstm(case: Case):
    *arrays, gh, gc = case.args
    inputs = [torch.tensor(a, requires_grad=True) for a in arrays]  # CPU, fp64
    h1, c1 = lstm_cell_torch(*inputs)
    return {**_lstm_outputs(h1, c1, inputs, torch.tensor(gh), torch.tensor(gc)), "library_calls": NO_CALLS}


LSTM_HINT = ("The 4H rows of W_ih, W_hh and the biases are the gates i, f, g, o in that order; g uses tanh, "
             "the others sigmoid; c' = f * c + i * g and h' = o * tanh(c').")
GRAD_HINT = ("The forward values are right but this gradient is not: keep every step a differentiable "
             "torch operation on the tensors you were given.")


def _check_lstm(case: Case, got, want):
    require(got, want)
    _refuse_library(got, "torch's LSTM would take the step for you; write the four gates and c' = f * c + i * g "
                         "yourself (Algorithm 1 of section 2)")
    for key in ("h", "c"):
        _compare(got[key], want[key], "h' (the first output)" if key == "h" else "c' (the second output)", LSTM_HINT)
    for name in LSTM_INPUTS:
        _compare(got[f"grad_{name}"], want[f"grad_{name}"], f"the gradient with respect to {name}", GRAD_HINT)


# ---------------------------------------------------------------- exercise 2: scaled_dot_product_attention


def _ref_attention(case: Case):
    q, k, v, mask, g_out, g_w = case.args
    out, w = attention_spec(q, k, v, mask)
    want = {"out": out.astype(q.dtype), "weights": w.astype(q.dtype), "library_calls": NO_CALLS}
    if q.dtype == np.float64:  # the gradients, by autograd through the torch reference (CPU, fp64)
        qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
        o, wt = attention_torch(qt, kt, vt, None if mask is None else torch.tensor(mask))
        want.update(attention_grads(o, wt, qt, kt, vt, torch.tensor(g_out), torch.tensor(g_w)))
    return want


SCALE_HINT = ("Check the scores are q @ k^T scaled by 1/sqrt(d_k), d_k = q.shape[-1], and that the softmax runs "
              "over the last axis (the keys).")


ATTENTION_LIBRARY_HINT = ("torch's softmax, log_softmax, logsumexp and fused attention are refused in this exercise. "
                          "Write the softmax: subtract each row's maximum (0 for a row with no allowed key), exp, sum, "
                          "divide (Algorithm 2 of section 4)")
NAN_GRAD_HINT = ("on the rows whose keys are all masked. The forward gives 0 there, but the backward runs through every "
                 "operation, the branch torch.where discards included: e / z is 0/0 on such a row, and its NaN "
                 "gradient reaches the scores through an additive -inf mask. Mask the scores with masked_fill or "
                 "torch.where (whose backward gives masked scores no gradient) and divide by a sum that is never 0 "
                 "(section 4, \"The backward pass\")")
GRAD_KEYS = {"grad_q": "dq (the gradient with respect to q)", "grad_k": "dk (the gradient with respect to k)",
             "grad_v": "dv (the gradient with respect to v)"}


def _check_attention_grads(case: Case, got, want):
    for key, what in GRAD_KEYS.items():
        if key not in want:
            continue
        if key not in got:
            raise AssertionError(f"produced no {what}")
        g = np.asarray(got[key], np.float64)
        if g.shape == want[key].shape and not np.isfinite(g).all():
            where = NAN_GRAD_HINT if "every key masked" in case.kind else (
                "in the backward pass: keep every step a differentiable torch operation, and no 0/0 or inf - inf "
                "anywhere, even in values a where() discards (section 4)")
            raise AssertionError(f"{what} holds NaN or inf {where}")
        _compare(got[key], want[key], what, "The forward values are right but this gradient is not: keep every step a "
                 "differentiable torch operation on q, k and v (no .detach(), .data, in-place writes into them)")


def _check_attention(case: Case, got, want):
    require(got, {key: w for key, w in want.items() if key not in GRAD_KEYS})  # the gradients come last
    _refuse_library(got, ATTENTION_LIBRARY_HINT)
    for key in ("out", "weights"):
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
    _check_attention_grads(case, got, want)


# ---------------------------------------------------------------- exercise 3: MultiHeadAttention


def _ref_mha(case: Case):
    if len(case.args) == 2:
        return {"raised": np.array("ValueError")}
    d, n_heads, x, mask, in_w, in_b, out_w, out_b, x2, t = case.args
    tensors = [torch.tensor(a) for a in (x, in_w, in_b, out_w, out_b)]
    out = mha_torch(*tensors, n_heads, None if mask is None else torch.tensor(mask))
    want = {"out": to_numpy(out), "n_params": np.array(4 * d * d + 4 * d, dtype=np.int64), "library_calls": NO_CALLS}
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
    _refuse_library(got, "torch's attention is what you are checked against, refused here. Call your own "
                         "scaled_dot_product_attention from Exercise 2 (a correct one stands in for it while this "
                         "exercise is graded) or write the attention out (Algorithm 3 of section 5)")
    if int(got["n_params"]) != int(want["n_params"]):
        raise AssertionError(f"the module has {int(got['n_params'])} parameters; in_proj and out_proj alone have "
                             "4 d^2 + 4 d, and the layer needs no others")
    if "causal_leak" in want and not float(got["causal_leak"]) <= tolerance("float64")[0]:
        raise AssertionError(f"perturbing later inputs changed earlier outputs by up to {float(got['causal_leak']):.3g}: "
                             "pass the mask to every head's attention (a (L, L) mask broadcasts over batch and heads)")
    hint = MHA_HINT if case.args[3] is None else MHA_HINT + " Pass the mask (True = may attend) to every head's attention."
    _compare(got["out"], want["out"], "output", hint)


# ---------------------------------------------------------------- exercise 4: sinusoidal_positional_encoding


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


# ---------------------------------------------------------------- exercise 5: rnn_bptt


def _ref_bptt(case: Case):
    args = [torch.tensor(a) for a in case.args]  # CPU, fp64
    grads = rnn_bptt_autograd(*args)
    return {**{n: to_numpy(g) for n, g in zip(BPTT_OUTPUTS, grads)}, "autograd": NO_CALLS, "library_calls": NO_CALLS}


BPTT_HINTS = {
    "dW_xh": "dL/dW_xh = sum over t = 1..T of (dL/da_t)^T x_t, with dL/da_t = (1 - h_t^2) * dL/dh_t",
    "dW_hh": "dL/dW_hh = sum over t = 1..T of (dL/da_t)^T h_{t-1}: the t = 1 term multiplies h0, and dL/dh_t must "
             "include what flows back from step t + 1",
    "db": "dL/db = sum over t and over the batch of dL/da_t",
    "dh0": "dh0 is what flows back from step 1: (dL/da_1) W_hh",
}


def _check_bptt(case: Case, got, want):
    require(got, want)
    used = [str(c) for c in np.asarray(got["autograd"]).reshape(-1)]
    if used:
        raise AssertionError(f"autograd did the work ({', '.join(used[:4])}): the gradients must be yours, a forward "
                             "that keeps the states and a walk back from step T to step 1 (section 1, "
                             "'Back-propagation through time by hand')")
    _refuse_library(got, "write the recurrence h_t = tanh(x_t W_xh^T + h_{t-1} W_hh^T + b) yourself")
    for name in BPTT_OUTPUTS:
        _compare(got[name], want[name], name, BPTT_HINTS[name] + " (section 1).")


# ---------------------------------------------------------------- exercise 6: decode_greedy


def _ref_decode(case: Case):
    config, prompt, steps = case.args
    model = decode_model(config).cpu()
    with torch.no_grad():
        tokens, logits = decode_uncached(model, torch.tensor(prompt), int(steps))
    layers = int(config[3])
    names = sorted(f"blocks.{i}.{part}" for i in range(layers) for part in ("attn_in", "ff1"))
    once = len(prompt) + int(steps) - 1  # each token through each weight once; the last one need not be
    return {"tokens": to_numpy(tokens), "logits": to_numpy(logits), "weights": np.array(names, dtype=str),
            "rows": np.full(len(names), once, dtype=np.int64)}


def _check_decode(case: Case, got, want):
    require(got, want)
    prompt_len, steps = len(case.args[1]), int(case.args[2])
    tokens, expected = np.asarray(got["tokens"]), np.asarray(want["tokens"])
    if tokens.shape != expected.shape:
        raise AssertionError(f"returned {tokens.size} token ids for {steps} steps: one new id per step, the prompt "
                             "not included")
    for name, rows, once in zip(want["weights"], got["rows"], want["rows"]):
        if rows > once + 1:
            raise AssertionError(
                f"{name} multiplied {rows} token vectors to decode {steps} tokens after a prompt of {prompt_len}: "
                f"with a cache every token goes through each weight once ({once} in all), so the prefix was "
                "recomputed at every step (section 9, 'Decoding with a KV cache')")
        if rows < once:
            raise AssertionError(
                f"{name} multiplied only {rows} token vectors for a sequence of {once + 1}: every token but the "
                "last must go through every layer's weights, in torch, once (section 9)")
    _compare(got["logits"], want["logits"], "the logits (steps, V)",
             "Each step's logits must be those of the full forward at the last position: the cached keys and values "
             "are what the full forward computes, the prompt prefilled under the causal mask and each new token at "
             "its own position (section 9).")
    wrong = np.flatnonzero(tokens != expected)
    if wrong.size:
        raise AssertionError(
            f"new token {wrong[0] + 1} of {steps} differs from decoding without a cache ({wrong.size} of {steps} "
            "differ): the cached keys and values must be those the full forward would compute, the prompt "
            "prefilled under the causal mask and each new token at its own position (section 9)")


# ---------------------------------------------------------------- the exercises

EXERCISES = {
    "lstm_cell": TASKS["lstm_cell"].graded(_ref_lstm, _check_lstm),
    "scaled_dot_product_attention": TASKS["scaled_dot_product_attention"].graded(_ref_attention, _check_attention),
    "MultiHeadAttention": TASKS["MultiHeadAttention"].graded(_ref_mha, _check_mha),
    "sinusoidal_positional_encoding": TASKS["sinusoidal_positional_encoding"].graded(_ref_pe, _check_pe),
    "rnn_bptt": TASKS["rnn_bptt"].graded(_ref_bptt, _check_bptt),
    "decode_greedy": TASKS["decode_greedy"].graded(_ref_decode, _check_decode),
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
