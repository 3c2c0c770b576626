"""Chapter 03's references: the specs agree with torch's fused implementations, the cases are
deterministic, correct submissions pass every case, and each check fails (with a message that
teaches) on the mistake it is there for."""
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder import forbidden, verifier
from autograder.reference import transformer as T

f64 = torch.float64


def _grade(name, fn, seed=0):
    """The first failure message of fn on the exercise's cases, or None (as verify decides)."""
    ex = T.EXERCISES[name]
    cases = ex.cases(np.random.default_rng(seed))
    return verifier._failures(ex, cases, [verifier._run(ex, fn, c) for c in cases])


# ---------------------------------------------------------------- specs against fast implementations

@pytest.mark.parametrize("B,I,H", [(1, 3, 4), (5, 7, 3), (2, 16, 16)])
def test_lstm_spec_matches_nn_lstmcell_values_and_gradients(B, I, H):
    gen = torch.Generator().manual_seed(B * 100 + I * 10 + H)
    shapes = [(B, I), (B, H), (B, H), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]
    args = [torch.randn(*s, generator=gen, dtype=f64, requires_grad=True) for s in shapes]
    h1, c1 = T.lstm_cell_spec(*args)
    h2, c2 = T.lstm_cell_torch(*args)
    torch.testing.assert_close(h1, h2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c1, c2, rtol=1e-12, atol=1e-12)
    g1 = torch.autograd.grad((h1.sum() + 2 * c1.sum()), args)
    g2 = torch.autograd.grad((h2.sum() + 2 * c2.sum()), args)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_attention_spec_matches_torch_and_fused_sdpa():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, L, D, generator=gen, dtype=f64) for L, D in ((5, 8), (7, 8), (7, 4)))
    mask = torch.rand(2, 1, 5, 7, generator=gen) < 0.7
    mask[..., 0] = True
    out_np, w_np = T.attention_spec(q.numpy(), k.numpy(), v.numpy(), mask.numpy())
    out_t, w_t = T.attention_torch(q, k, v, mask)
    np.testing.assert_allclose(out_t.numpy(), out_np, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w_t.numpy(), w_np, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v, attn_mask=mask).numpy(), out_np, rtol=1e-12, atol=1e-12)
    assert np.all(w_np[~np.broadcast_to(mask.numpy(), w_np.shape)] == 0)
    np.testing.assert_allclose(w_np.sum(-1), 1, rtol=1e-12)


def test_attention_spec_gives_zeros_for_fully_masked_rows_and_survives_huge_logits():
    q, k, v = np.eye(3), np.eye(3), np.arange(9.0).reshape(3, 3)
    mask = np.array([[True, False, False], [False, False, False], [True, True, True]])
    out, w = T.attention_spec(q * 1e6, k, v, mask)
    assert np.isfinite(out).all() and np.isfinite(w).all()
    assert np.all(w[1] == 0) and np.all(out[1] == 0)
    out_t, w_t = T.attention_torch(torch.tensor(q * 1e6), torch.tensor(k), torch.tensor(v), torch.tensor(mask))
    np.testing.assert_array_equal(w_t.numpy(), w)


@pytest.mark.parametrize("n_heads,mask_kind", [(1, None), (2, "causal"), (4, "padding"), (8, None)])
def test_mha_spec_matches_nn_multiheadattention_and_the_fast_layer(n_heads, mask_kind):
    gen = torch.Generator().manual_seed(n_heads)
    B, L, d = 2, 6, 8
    x = torch.randn(B, L, d, generator=gen, dtype=f64)
    in_w, in_b = torch.randn(3 * d, d, generator=gen, dtype=f64) / 3, torch.randn(3 * d, generator=gen, dtype=f64)
    out_w, out_b = torch.randn(d, d, generator=gen, dtype=f64) / 3, torch.randn(d, generator=gen, dtype=f64)
    mask = {None: None, "causal": torch.tril(torch.ones(L, L, dtype=torch.bool)),
            "padding": (torch.arange(L)[None] < torch.tensor([6, 3])[:, None])[:, None, None, :]}[mask_kind]
    spec = T.mha_spec(x.numpy(), in_w.numpy(), in_b.numpy(), out_w.numpy(), out_b.numpy(), n_heads,
                      None if mask is None else mask.numpy())
    np.testing.assert_allclose(T.mha_torch(x, in_w, in_b, out_w, out_b, n_heads, mask).numpy(), spec, rtol=1e-10, atol=1e-12)
    fast = T.FastMultiHeadAttention(d, n_heads).double()
    fast.load_state_dict({"in_proj.weight": in_w, "in_proj.bias": in_b, "out_proj.weight": out_w, "out_proj.bias": out_b})
    with torch.no_grad():
        np.testing.assert_allclose(fast(x, mask).numpy(), spec, rtol=1e-10, atol=1e-12)
        if mask_kind == "causal":
            np.testing.assert_allclose(fast(x, causal=True).numpy(), spec, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError):
        T.FastMultiHeadAttention(10, 4)


@pytest.mark.parametrize("n,d", [(0, 4), (1, 2), (50, 16), (2048, 512)])
def test_positional_encoding_spec_torch_and_rotation(n, d):
    spec = T.positional_encoding_spec(n, d)
    np.testing.assert_allclose(T.positional_encoding_torch(n, d, device="cpu").numpy(), spec, rtol=1e-12, atol=1e-12)
    if n > 1:
        assert T.rotation_residual(spec, [k for k in (1, 7, 100) if k < n]) < 1e-11
        swapped = spec[:, [j ^ 1 for j in range(d)]]  # cos in the even columns, sin in the odd
        assert T.rotation_residual(swapped, [1]) > 1e-3
    with pytest.raises(ValueError):
        T.positional_encoding_spec(3, 5)


# ---------------------------------------------------------------- cases, and correct submissions pass

@pytest.mark.parametrize("name", list(T.EXERCISES))
def test_cases_are_deterministic_per_seed(name):
    ex = T.EXERCISES[name]
    one, two = ex.cases(np.random.default_rng(5)), ex.cases(np.random.default_rng(5))
    assert [c.kind for c in one] == [c.kind for c in two]
    for c1, c2 in zip(one, two):
        for x, y in zip(c1.args, c2.args):
            np.testing.assert_array_equal(x, y)


class _MHA(T.FastMultiHeadAttention):
    """The fast layer's projections with the exercise's forward(x, mask), attending through the global
    name `scaled_dot_product_attention`, as the solution does (the grader puts a correct one there
    while it grades)."""

    def forward(self, x, mask=None):
        B, L, d = x.shape
        q, k, v = (t.view(B, L, self.n_heads, -1).transpose(1, 2) for t in self.in_proj(x).split(d, dim=-1))
        out, _ = scaled_dot_product_attention(q, k, v, mask)  # noqa: F821  (B, H, L, d/H)
        return self.out_proj(out.transpose(1, 2).reshape(B, L, d))


def _bptt_by_hand(x, h0, W_xh, W_hh, b, dL_dh):
    """Back-propagation through time without autograd: the forward keeps h_0..h_T, the walk back
    carries dL/dh_t from step t + 1 (section 1 of the page)."""
    hs = [h0]
    for x_t in x:
        hs.append(torch.tanh(x_t @ W_xh.T + hs[-1] @ W_hh.T + b))
    dW_xh, dW_hh, db, carry = torch.zeros_like(W_xh), torch.zeros_like(W_hh), torch.zeros_like(b), torch.zeros_like(h0)
    for t in range(len(x), 0, -1):
        da = (dL_dh[t - 1] + carry) * (1 - hs[t] ** 2)
        dW_xh, dW_hh, db, carry = dW_xh + da.T @ x[t - 1], dW_hh + da.T @ hs[t - 1], db + da.sum(0), da @ W_hh
    return dW_xh, dW_hh, db, carry


CORRECT = {
    "lstm_cell": T.lstm_cell_spec,
    "scaled_dot_product_attention": T.attention_torch,
    "MultiHeadAttention": _MHA,
    "sinusoidal_positional_encoding": T.positional_encoding_torch,
    "rnn_bptt": _bptt_by_hand,
    "decode_greedy": T.decode_cached,
}


def test_bptt_by_autograd_is_refused_however_reached():
    def by_autograd(x, h0, W_xh, W_hh, b, dL_dh):
        return T.rnn_bptt_autograd(x, h0, W_xh, W_hh, b, dL_dh)  # enable_grad and autograd.grad inside
    message = _grade("rnn_bptt", by_autograd)
    assert message is not None and "autograd did the work" in message


def test_uncached_decoding_fails_the_row_count():
    message = _grade("decode_greedy", T.decode_uncached)
    assert message is not None and "recomputed at every step" in message


@pytest.mark.parametrize("seed", [0, 1, 12345])
@pytest.mark.parametrize("name", list(T.EXERCISES))
def test_correct_submissions_pass_every_case(name, seed):
    assert _grade(name, CORRECT[name], seed) is None


def test_verify_records_and_the_grader_agrees(tmp_path, monkeypatch):
    monkeypatch.setenv(verifier.SEED_VAR, "77")
    monkeypatch.setenv(verifier.RECORD_VAR, str(tmp_path))
    for name, fn in CORRECT.items():
        verifier.verify("03-transformer", name, fn)
        assert verifier.check_record("03-transformer", name, 77, tmp_path / f"{name}.npz") is None


# ---------------------------------------------------------------- each check fails on its mistake

def _lstm_swapped(x, h, c, W_ih, W_hh, b_ih, b_hh):
    i, g, f, o = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=-1)
    c2 = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c2), c2


def _lstm_numpy(x, h, c, W_ih, W_hh, b_ih, b_hh):
    out = T.lstm_cell_spec(*(t.detach() for t in (x, h, c, W_ih, W_hh, b_ih, b_hh)))
    return tuple(torch.tensor(t.numpy()) for t in out)


def _lstm_float32(*args):
    return tuple(t.float() for t in T.lstm_cell_spec(*args))


def _lstm_calls_torch(x, h, c, W_ih, W_hh, b_ih, b_hh):
    return torch.lstm_cell(x, (h, c), W_ih, W_hh, b_ih, b_hh)


@pytest.mark.parametrize("fn,message", [
    (_lstm_swapped, "gates i, f, g, o in that order"),
    (lambda *a: T.lstm_cell_spec(*a)[::-1], r"h' \(the first output\)"),
    (lambda *a: T.lstm_cell_spec(*a)[0], "must return a tuple of two tensors"),
    (_lstm_numpy, "carry no autograd graph"),
    (_lstm_float32, "dtype float32, expected float64"),
    (lambda x, h, c, *w: T.lstm_cell_spec(x, h, c.detach(), *w), "gradient with respect to c:"),
])
def test_lstm_check_fails_on_each_mistake(fn, message):
    failure = _grade("lstm_cell", fn)
    assert failure is not None and failure.startswith("lstm_cell fails in") and re.search(message, failure), failure


def _attn_no_scale(q, k, v, mask=None):
    return T.attention_torch(q * math.sqrt(q.shape[-1]), k, v, mask)


def _hand_softmax(s, dim):
    """Softmax written out (torch's is refused in the exercise): the row max shift, exp, sum, divide;
    a row of -inf gives NaN, as torch's does."""
    e = torch.exp(s - s.amax(dim, keepdim=True))
    return e / e.sum(dim, keepdim=True)


def _attn_mask_after(q, k, v, mask=None):
    w = _hand_softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    w = w if mask is None else w * mask
    return w @ v, w


def _attn_masks_with_minus_big(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    w = _hand_softmax(s if mask is None else s.masked_fill(~mask, -1e9), dim=-1)
    return w @ v, w


def _attn_nan_rows(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    w = _hand_softmax(s if mask is None else s.masked_fill(~mask, float("-inf")), dim=-1)
    return w @ v, w


def _attn_overflow(q, k, v, mask=None):
    e = torch.exp(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]))
    e = e if mask is None else e * mask
    w = torch.nan_to_num(e / e.sum(-1, keepdim=True), nan=0.0)
    return w @ v, w


def _attn_softmax_over_queries(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    w = _hand_softmax(s, dim=-2)
    return w @ v, w


@pytest.mark.parametrize("fn,kind,message", [
    (_attn_no_scale, "2-D", "scaled by 1/sqrt"),
    (_attn_softmax_over_queries, "2-D", "do not sum to 1"),
    (_attn_mask_after, "causal", "mask the scores before the softmax"),
    (_attn_masks_with_minus_big, "every key masked", "not exactly 0"),
    (_attn_nan_rows, "every key masked", "a row whose keys are all masked is softmax over all -inf"),
    (_attn_overflow, "magnitude 1e4", "subtract each row's maximum"),
    (lambda q, k, v, mask=None: T.attention_torch(q.double(), k.double(), v.double(), mask), "float32", "dtype float64"),
    (lambda q, k, v, mask=None: T.attention_torch(q, k, v, mask)[0], "2-D", "must return a tuple"),
    (lambda q, k, v, mask=None: T.attention_torch(q, k, v, None if mask is None else ~mask), "causal", "not exactly 0"),
])
def test_attention_check_fails_on_each_mistake(fn, kind, message):
    failure = _grade("scaled_dot_product_attention", fn)
    assert failure is not None and kind in failure and message in failure, failure


class _MHAHeadsWrong(_MHA):
    def forward(self, x, mask=None):
        B, L, d = x.shape
        q, k, v = (t.reshape(B, self.n_heads, L, d // self.n_heads) for t in self.in_proj(x).split(d, dim=-1))
        return self.out_proj(scaled_dot_product_attention(q, k, v, mask)[0].reshape(B, L, d))  # noqa: F821


class _MHAIgnoresMask(_MHA):
    def forward(self, x, mask=None):
        return super().forward(x, None)


class _MHAExtraParameter(_MHA):
    def __init__(self, d_model, n_heads):
        super().__init__(d_model, n_heads)
        self.scale = nn.Parameter(torch.ones(1))


class _MHANoValueError(_MHA):
    def __init__(self, d_model, n_heads):
        nn.Module.__init__(self)
        self.n_heads = n_heads
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)


class _MHANoOutProj(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.in_proj = nn.Linear(d_model, 3 * d_model)


def test_mha_checks_fail_on_each_mistake():
    assert "give each head" in _grade("MultiHeadAttention", _MHAHeadsWrong)
    assert "Pass the mask" in _grade("MultiHeadAttention", _MHAIgnoresMask)
    assert "4 d^2 + 4 d" in _grade("MultiHeadAttention", _MHAExtraParameter)
    assert "raise ValueError" in _grade("MultiHeadAttention", _MHANoValueError)
    assert "self.out_proj = nn.Linear" in _grade("MultiHeadAttention", _MHANoOutProj)


def test_mha_causal_check_catches_a_leak_on_its_own():
    case = next(c for c in T.EXERCISES["MultiHeadAttention"].cases(np.random.default_rng(0)) if "perturbed" in c.kind)
    want = T._ref_mha(case)
    got = dict(want, causal_leak=np.array(0.3))
    with pytest.raises(AssertionError, match="changed earlier outputs"):
        T._check_mha(case, got, want)


def _pe_swapped(n, d):
    return T.positional_encoding_torch(n, d, device="cpu")[:, [j ^ 1 for j in range(d)]]


def _pe_float32(n, d):
    return T.positional_encoding_torch(n, d, device="cpu", dtype=torch.float32)


@pytest.mark.parametrize("fn,message", [
    (_pe_swapped, "PE: max |err|"),
    (_pe_float32, "dtype float32, expected float64"),
    (lambda n, d: T.positional_encoding_torch(n, d + d % 2, device="cpu")[:, :d], "raise ValueError"),
    (lambda n, d: T.positional_encoding_torch(n, d, device="cpu").float().double(), "PE: max |err|"),
])
def test_pe_check_fails_on_each_mistake(fn, message):
    failure = _grade("sinusoidal_positional_encoding", fn)
    assert failure is not None and message in failure, failure


def test_pe_rotation_check_catches_a_broken_rotation_on_its_own():
    case = next(c for c in T.EXERCISES["sinusoidal_positional_encoding"].cases(np.random.default_rng(0)) if "rotates" in c.kind)
    want = T._ref_pe(case)
    with pytest.raises(AssertionError, match="rotated pair by pair"):
        T._check_pe(case, dict(want, rotation_residual=np.array(0.5)), want)


# ---------------------------------------------------------------- forbidden names

def _lstm_with_module(x, h, c, W_ih, W_hh, b_ih, b_hh):
    cell = nn.LSTMCell(W_ih.shape[1], W_hh.shape[1])
    return cell(x, (h, c))


def _attention_with_fused(q, k, v, mask=None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None


class _MHAWithTorchLayer(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.layer = nn.MultiheadAttention(d_model, n_heads, batch_first=True)


@pytest.mark.parametrize("name,fn,word", [
    ("lstm_cell", _lstm_with_module, "LSTMCell"),
    ("lstm_cell", _lstm_calls_torch, "lstm_cell"),
    ("scaled_dot_product_attention", _attention_with_fused, "scaled_dot_product_attention"),
    ("MultiHeadAttention", _MHAWithTorchLayer, "MultiheadAttention"),
])
def test_forbidden_names_are_refused(name, fn, word):
    ex = T.EXERCISES[name]
    with pytest.raises(AssertionError, match=f"uses `{word}`"):
        forbidden.check(fn, ex.forbidden, ex.why)


# ---------------------------------------------------------------- the technique, not only the output

def _attn_additive_mask(q, k, v, mask=None):
    """Right forward values; NaN dq and dk on fully masked rows (where's discarded 0/0 reaches the scores)."""
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s + torch.zeros_like(s).masked_fill(~mask, float("-inf"))
    top = s.amax(-1, keepdim=True)
    e = torch.exp(s - torch.where(torch.isinf(top), torch.zeros_like(top), top))
    z = e.sum(-1, keepdim=True)
    w = torch.where(z > 0, e / z, torch.zeros_like(e))
    return w @ v, w


def _attn_detached_weights(q, k, v, mask=None):
    out, w = T.attention_torch(q, k, v, mask)
    return w.detach() @ v, w.detach()


def _masked(q, k, mask):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return s if mask is None else s.masked_fill(~mask, float("-inf"))


def _attn_library(q, k, v, mask=None):
    w = torch.nan_to_num(torch.softmax(_masked(q, k, mask), dim=-1), nan=0.0)
    return w @ v, w


def _attn_logsumexp_by_getattr(q, k, v, mask=None):
    s = _masked(q, k, mask)
    lse = getattr(torch, "log" + "sumexp")(s, dim=-1, keepdim=True)
    w = torch.exp(s - torch.where(torch.isinf(lse), torch.zeros_like(lse), lse))
    return w @ v, w


def _attn_softmin(q, k, v, mask=None):
    w = torch.nan_to_num(getattr(F, "soft" + "min")(-_masked(q, k, mask), dim=-1), nan=0.0)
    return w @ v, w


def _attn_aten(q, k, v, mask=None):
    w = torch.nan_to_num(torch.ops.aten._softmax(_masked(q, k, mask), -1, False), nan=0.0)
    return w @ v, w


@pytest.mark.parametrize("fn,kind,message", [
    (_attn_additive_mask, "every key masked", "dq (the gradient with respect to q) holds NaN or inf on the rows"),
    (_attn_detached_weights, "2-D", "the forward values are right but this gradient is not".capitalize()),
    (_attn_library, "2-D", "ran torch's _softmax, softmax"),
    (_attn_logsumexp_by_getattr, "2-D", "ran torch's logsumexp"),
    (_attn_softmin, "2-D", "ran torch's _softmax, softmin"),
    (_attn_aten, "2-D", "ran torch's _softmax"),
])
def test_attention_grads_and_library_calls_are_checked(fn, kind, message):
    failure = _grade("scaled_dot_product_attention", fn)
    assert failure is not None and kind in failure and message in failure, failure


def test_attention_reference_gradients_pass_gradcheck_with_an_empty_row():
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 4, 3, generator=gen, dtype=f64, requires_grad=True) for _ in range(3))
    mask = torch.rand(2, 4, 4, generator=gen) < 0.5
    mask[..., 0], mask[1, 2] = True, False  # row (1, 2) has no allowed key
    assert torch.autograd.gradcheck(lambda q, k, v: T.attention_torch(q, k, v, mask), (q, k, v))
    grads = torch.autograd.grad(sum(t.sum() for t in T.attention_torch(q, k, v, mask)), (q, k, v))
    assert all(torch.isfinite(g).all() for g in grads) and (grads[0][1, 2] == 0).all()


class _MHAFused(_MHA):
    def forward(self, x, mask=None):
        return T.FastMultiHeadAttention.forward(self, x, mask)


class _MHAFusedByGetattr(_MHA):
    def forward(self, x, mask=None):
        B, L, d = x.shape
        q, k, v = (t.view(B, L, self.n_heads, -1).transpose(1, 2) for t in self.in_proj(x).split(d, dim=-1))
        out = getattr(F, "scaled_dot_" + "product_attention")(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(B, L, d))


class _MHAWritesAttentionWithSoftmax(_MHA):
    """Attention written out with torch.softmax: allowed here (exercise 2 is where the softmax is graded)."""

    def forward(self, x, mask=None):
        B, L, d = x.shape
        q, k, v = (t.view(B, L, self.n_heads, -1).transpose(1, 2) for t in self.in_proj(x).split(d, dim=-1))
        w = torch.softmax(_masked(q, k, mask), dim=-1)
        return self.out_proj((w @ v).transpose(1, 2).reshape(B, L, d))


def test_mha_may_not_hand_attention_to_torch():
    for cls in (_MHAFused, _MHAFusedByGetattr):
        failure = _grade("MultiHeadAttention", cls)
        assert failure is not None and "ran torch's _scaled_dot_product" in failure and "section 5" in failure, failure
    assert _grade("MultiHeadAttention", _MHAWritesAttentionWithSoftmax) is None


def _broken_attention(q, k, v, mask=None):
    raise NotImplementedError("exercise 2 left undone")


def test_mha_is_graded_apart_from_exercise_2(monkeypatch):
    monkeypatch.setitem(globals(), "scaled_dot_product_attention", _broken_attention)
    assert _grade("MultiHeadAttention", _MHA) is None  # a correct attention stands in while it is graded
    assert globals()["scaled_dot_product_attention"] is _broken_attention  # and the learner's is put back
    monkeypatch.delitem(globals(), "scaled_dot_product_attention")
    assert _grade("MultiHeadAttention", _MHA) is None
    assert "scaled_dot_product_attention" not in globals()


def _lstm_torch_lstm(x, h, c, W_ih, W_hh, b_ih, b_hh):
    _, h1, c1 = torch.lstm(x[None], (h[None], c[None]), [W_ih, W_hh, b_ih, b_hh], True, 1, 0.0, False, False, False)
    return h1[0], c1[0]


def _lstm_cell_by_getattr(x, h, c, W_ih, W_hh, b_ih, b_hh):
    return getattr(torch, "lstm_" + "cell")(x, (h, c), W_ih, W_hh, b_ih, b_hh)


@pytest.mark.parametrize("fn,word", [(_lstm_torch_lstm, "lstm"), (_lstm_cell_by_getattr, "lstm_cell")])
def test_lstm_may_not_run_torchs_lstm(fn, word):
    failure = _grade("lstm_cell", fn)
    assert failure is not None and f"ran torch's {word}:" in failure and "section 2" in failure, failure


@pytest.mark.parametrize("name,fn,word", [
    ("lstm_cell", _lstm_torch_lstm, "lstm"),
    ("scaled_dot_product_attention", _attn_library, "softmax"),
    ("scaled_dot_product_attention", _attn_aten, "_softmax"),
])
def test_library_names_are_refused_in_the_source(name, fn, word):
    ex = T.EXERCISES[name]
    with pytest.raises(AssertionError, match=f"uses `{word}`"):
        forbidden.check(fn, ex.forbidden, ex.why)


def test_bench_reports_both_layers_on_the_cpu():
    rows = T.bench(lambda fn: (fn(), 1e-3)[1], cuda=False)
    assert len(rows["lengths"]) == len(rows["lstm_ms"]) == len(rows["attention_ms"]) > 0
