"""Chapter 04's reference: the Triton kernels and the PyTorch recurrences agree with the float64
spec, the op recorder measures what the checks rely on, and every check fails when it should,
with a message that teaches and shows no expected values."""
import numpy as np
import pytest
import torch

from autograder import verifier
from autograder.device import CUDA
from autograder.exercise import Case
from autograder.cases import flash_attention as FC
from autograder.reference import flash_attention as F

SLUG = "04-flash-attention"


def _qkv(z, h, n_q, n_k, d, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(z, h, n_q, d, generator=gen, dtype=dtype)
    k, v = (torch.randn(z, h, n_k, d, generator=gen, dtype=dtype) for _ in range(2))
    return q, k, v


def _err(a, b):
    return (a.double() - b.double()).abs().max().item()


# ---------------------------------------------------------------- spec vs fast


@pytest.mark.parametrize("n_q,n_k,d,causal,blocks", [
    (64, 64, 16, False, (None, None)), (200, 200, 32, False, (None, None)), (200, 200, 16, True, (None, None)),
    (80, 200, 16, False, (None, None)), (200, 80, 32, False, (None, None)), (1, 1, 16, True, (None, None)),
    (100, 100, 16, True, (32, 16)), (100, 100, 16, True, (16, 32)), (77, 77, 32, True, (64, 16)),
])
def test_triton_forward_matches_the_spec(n_q, n_k, d, causal, blocks):
    q, k, v = _qkv(1, 2, n_q, n_k, d, seed=n_q + n_k)
    o, lse = F.flash_attn_triton(q, k, v, causal, *blocks)
    o_ref, lse_ref = F.attention_spec(q, k, v, causal)
    assert o.dtype == torch.float32 and lse.dtype == torch.float32 and lse.shape == (1, 2, n_q)
    assert _err(o, o_ref) < 2e-6 and _err(lse, lse_ref) < 2e-6


def test_triton_forward_reads_strided_views_without_copying():
    qkv = torch.randn(3, 2, 96, 3, 16).transpose(2, 3)  # (3, Z, H, N, D) views of (Z, N, H, D)
    with F.OpRecorder() as rec:
        o, lse = F.flash_attn_triton(*qkv, causal=True)
    assert _err(o, F.attention_spec(*qkv, True)[0]) < 2e-6
    assert rec.alloc_bytes == o.numel() * 4 + lse.numel() * 4 and rec.launches == 1


@pytest.mark.parametrize("n,d,causal", [(64, 16, False), (128, 32, True), (200, 32, False), (200, 16, True), (37, 16, True)])
def test_triton_backward_matches_autograd_through_the_spec(n, d, causal):
    q, k, v = _qkv(1, 2, n, n, d, seed=n)
    do = torch.randn_like(q)
    o, lse = F.flash_attn_triton(q, k, v, causal)
    for got, want in zip(F.flash_attn_bwd_triton(q, k, v, o, lse, do, causal), F.attention_grads_spec(q, k, v, do, causal)):
        assert _err(got, want) < 5e-6


def test_autograd_function_matches_naive_attention():
    q, k, v = (t.requires_grad_(True) for t in _qkv(1, 2, 70, 70, 16, seed=3))
    w = torch.randn(1, 2, 70, 16)
    (F.FlashAttention.apply(q, k, v, True) * w).sum().backward()
    flash = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    (F.naive_attention(q, k, v, True) * w).sum().backward()
    assert max(_err(a, t.grad) for a, t in zip(flash, (q, k, v))) < 5e-6


@pytest.mark.parametrize("block", [1, 3, 16, 100])
def test_online_softmax_matches_torch_with_infinities_and_huge_entries(block):
    x = torch.randn(5, 37, dtype=torch.float64) * 4
    x[:, ::5] = 1e4
    x[0, :21] = float("-inf")
    x[1, :36] = float("-inf")
    assert torch.allclose(F.online_softmax_torch(x, block), torch.softmax(x, -1), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n_q,n_k,block,causal", [(50, 50, 16, True), (37, 90, 32, False), (9, 9, 1, True), (20, 20, 64, False)])
def test_blocked_attention_matches_the_spec(n_q, n_k, block, causal):
    q, k, v = _qkv(2, 3, n_q, n_k, 8, dtype=torch.float64)
    o, lse = F.blocked_attention_torch(q, k, v, block, causal)
    o_ref, lse_ref = F.attention_spec(q, k, v, causal)
    assert _err(o, o_ref) < 1e-12 and _err(lse, lse_ref) < 1e-12


# ---------------------------------------------------------------- the op recorder


def test_recorder_sees_the_score_matrix_of_naive_attention_but_not_of_the_blocked_one():
    q, k, v = _qkv(1, 2, 256, 256, 16)
    with F.OpRecorder() as naive:
        F.naive_attention(q, k, v)
    with F.OpRecorder() as blocked:
        F.blocked_attention_torch(q, k, v, 32)
    assert naive.largest_op == 2 * 256 * 256 and naive.peak_bytes >= 2 * 2 * 256 * 256 * 4
    assert blocked.largest_op == 2 * 256 * 32 and blocked.largest_out < 256 * 256


def test_recorder_ignores_views_and_the_output_allocation_but_not_whole_row_ops():
    x = torch.randn(8, 100)
    with F.OpRecorder() as rec:
        F.online_softmax_torch(x, 10)
    assert rec.largest_op == 8 * 10 and rec.launches == 0
    with F.OpRecorder() as rec:
        torch.exp(x - x.amax(-1, keepdim=True))
    assert rec.largest_op == 8 * 100


def test_recorder_counts_launches_and_skips_what_the_interpreter_does_inside_them():
    q, k, v = _qkv(1, 2, 64, 64, 16)
    with F.OpRecorder() as rec:
        F.flash_attn_bwd_triton(q, k, v, *F.flash_attn_triton(q, k, v), torch.randn_like(q))
    assert rec.launches == 4  # forward, then preprocess, dK/dV and dQ
    assert rec.largest_out < 64 * 64 * 2


@pytest.mark.parametrize("n_q,n_k,splits", [(1, 100, 3), (3, 257, 8), (1, 40, 1), (2, 130, 130)])
def test_split_kv_decoding_matches_the_spec(n_q, n_k, splits):
    q, k, v = _qkv(2, 1, n_q, n_k, 16, seed=n_k)
    o, lse = F.flash_decode_triton(q, k, v, splits)
    o_ref, lse_ref = F.attention_spec(q, k, v)
    assert _err(o, o_ref) < 1e-5 and _err(lse, lse_ref) < 1e-5


def test_the_merge_of_partial_states_is_associative_commutative_and_exact():
    q, k, v = _qkv(1, 2, 3, 90, 16, dtype=torch.float64)
    a, b, c = (F.partial_state(q, k[..., j:j + 30, :], v[..., j:j + 30, :]) for j in (0, 30, 60))
    left, right = F.merge_states(F.merge_states(a, b), c), F.merge_states(a, F.merge_states(c, b))
    o_ref, lse_ref = F.attention_spec(q, k, v)
    for m, l, o in (left, right):
        assert _err(o / l[..., None], o_ref) < 1e-12 and _err(m + torch.log(l), lse_ref) < 1e-12
    empty = (torch.full_like(a[0], float("-inf")), torch.zeros_like(a[1]), torch.zeros_like(a[2]))
    assert all(_err(x, y) == 0 for x, y in zip(F.merge_states(empty, a), a)), "the empty state is the identity"
    assert torch.isneginf(F.merge_states(empty, empty)[0]).all() and not F.merge_states(empty, empty)[2].isnan().any()


def test_rounded_blocked_attention_is_exact_in_float32_and_rounds_in_16_bits():
    q, k, v = (t.half() for t in _qkv(1, 1, 8, 300, 64))
    want = F.attention_spec(q, k, v)[0]
    assert _err(F.blocked_attention_rounded(q, k, v, 128), want) < 1e-5
    assert 1e-5 < _err(F.blocked_attention_rounded(q, k, v, 128, torch.float16, torch.float16), want) < 1e-2


# ---------------------------------------------------------------- cases and checks


@pytest.mark.parametrize("name", list(F.EXERCISES))
def test_cases_are_deterministic_per_seed(name):
    ex = F.EXERCISES[name]
    one, two = ex.cases(np.random.default_rng(5)), ex.cases(np.random.default_rng(5))
    assert [c.kind for c in one] == [c.kind for c in two]
    for c1, c2 in zip(one, two):
        for x, y in zip(c1.args, c2.args):
            np.testing.assert_array_equal(x, y)


def test_gpu_only_cases_appear_only_with_cuda():
    kinds = [c.kind for c in F.EXERCISES["flash_attn_fwd"].cases(np.random.default_rng(0))]
    assert any("float16" in k for k in kinds) == CUDA
    fwd = {(c.args[0].shape[-2], c.args[0].shape[-1], c.args[3]) for c in FC._fwd_cases(np.random.default_rng(0))}
    assert {(n, d, causal) for n, d in ((64, 16), (200, 16), (200, 32)) for causal in (False, True)} <= fwd
    decode = [c.kind for c in F.EXERCISES["flash_decode"].cases(np.random.default_rng(0))]
    assert any("float16" in k for k in decode) == CUDA


REFERENCES = {"online_softmax": F.online_softmax_torch, "blocked_attention": F.blocked_attention_torch,
              "flash_attn_fwd": F.flash_attn_triton, "flash_attn_bwd": F.flash_attn_bwd_triton,
              "flash_decode": F.flash_decode_triton}


@pytest.fixture
def reference_kernels_count_as_own(monkeypatch):
    """The checks require kernels defined in the learner's notebook; here the reference's stand in."""
    from autograder import rules

    monkeypatch.setattr(rules, "NOTEBOOK", F.__name__)


@pytest.mark.parametrize("name", list(F.EXERCISES))
def test_the_reference_passes_every_case_and_the_grader_agrees(name, tmp_path, monkeypatch, reference_kernels_count_as_own):
    monkeypatch.setenv(verifier.SEED_VAR, "77")
    monkeypatch.setenv(verifier.RECORD_VAR, str(tmp_path))
    verifier.verify(SLUG, name, REFERENCES[name])
    assert verifier.check_record(SLUG, name, 77, tmp_path / f"{name}.npz") is None


def _first_failure(name, fn, seed=1):
    ex = F.EXERCISES[name]
    cases = ex.cases(np.random.default_rng(seed))
    return verifier._failures(ex, cases, [verifier._run(ex, fn, c) for c in cases])


def _softmax_no_rescale(x, block):
    m = torch.full(x.shape[:-1], float("-inf"), dtype=x.dtype)
    l = torch.zeros(x.shape[:-1], dtype=x.dtype)
    for j in range(0, x.shape[-1], block):
        m_new = torch.maximum(m, x[..., j:j + block].amax(-1))
        l = l + torch.exp(x[..., j:j + block] - m_new[..., None]).sum(-1)
        m = m_new
    out = torch.empty_like(x)
    for j in range(0, x.shape[-1], block):
        out[..., j:j + block] = torch.exp(x[..., j:j + block] - m[..., None]) / l[..., None]
    return out


def _softmax_whole_rows(x, block):
    e = torch.exp(x - x.amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


def _blocked_unscaled(q, k, v, block_n, causal=False):
    return F.blocked_attention_torch(q * q.shape[-1] ** 0.5, k, v, block_n, causal)


def _blocked_naive(q, k, v, block_n, causal=False):
    s = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
    if causal:
        s = s.masked_fill(F.causal_mask(s.shape[-2], s.shape[-1]), float("-inf"))
    m = s.amax(-1, keepdim=True)
    p = torch.exp(s - m)
    lse = m[..., 0] + torch.log(p.sum(-1))
    return p @ v / p.sum(-1, keepdim=True), lse


def _fwd_in_torch(q, k, v, causal=False):
    o, lse = F.blocked_attention_torch(q, k, v, 64, causal)
    return o, lse.float()


def _fwd_copies(q, k, v, causal=False):
    return F.flash_attn_triton(q.contiguous(), k.contiguous(), v.contiguous(), causal)


def _fwd_with_scratch(q, k, v, causal=False):
    torch.empty(q.shape[-2], k.shape[-2], device=q.device)  # an N x N scratch buffer
    return F.flash_attn_triton(q, k, v, causal)


def _fwd_tail_garbage(q, k, v, causal=False):
    o, lse = F.flash_attn_triton(q, k, v, causal)
    if q.shape[-2] % 64:
        o[..., -1, :] += 1.0  # stands for a tail block that was not masked
    return o, lse


def _bwd_without_delta(q, k, v, o, lse, do, causal=False):
    return F.flash_attn_bwd_triton(q, k, v, torch.zeros_like(o), lse, do, causal)  # delta = rowsum(dO * 0) = 0


def _bwd_in_torch(q, k, v, o, lse, do, causal=False):
    s = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
    if causal:
        s = s.masked_fill(F.causal_mask(s.shape[-2], s.shape[-1]), float("-inf"))
    p = torch.exp(s - lse[..., None])
    dp = do @ v.transpose(-2, -1)
    ds = p * (dp - (do * o).sum(-1, keepdim=True))
    scale = q.shape[-1] ** -0.5
    return ds @ k * scale, ds.transpose(-2, -1) @ q * scale, p.transpose(-2, -1) @ do


def _decode_merge_without_max(q, k, v, num_splits):
    z, h, n_q, d = q.shape
    n_k = k.shape[-2]
    split = F.triton.cdiv(n_k, num_splits)
    s = F.triton.cdiv(n_k, split)
    o_part, lse_part = torch.empty(z, h, s, n_q, d), torch.empty(z, h, s, n_q)
    F.flash_decode_kernel[(s, z * h)](q, k, v, o_part, lse_part, *q.stride(), *k.stride(), *v.stride(), h, n_q, n_k,
                                      s, d ** -0.5, D=d, BLOCK_M=16, BLOCK_N=64, SPLIT=split, PRECISION="ieee")
    w = torch.exp(lse_part)  # e^lse_s, not e^(lse_s - max): overflows past 88
    return (w[..., None] * o_part).sum(2) / w.sum(2)[..., None], torch.log(w.sum(2))


def _decode_one_split(q, k, v, num_splits):
    return F.flash_decode_triton(q, k, v, 1)


def _decode_on_host(q, k, v, num_splits):
    return F.blocked_attention_torch(q, k, v, 64)


@pytest.mark.parametrize("name,fn,match", [
    ("flash_decode", _decode_on_host, r"launched no Triton kernel"),
    ("online_softmax", _softmax_no_rescale, r"y: max \|err\|"),
    ("online_softmax", _softmax_whole_rows, r"rows x block = \d+.*torch.empty_like"),
    ("blocked_attention", _blocked_unscaled, r"first: when causal is off.*(o|lse): max \|err\|"),
    ("blocked_attention", _blocked_naive, r"N_q x N_k = 256 x 256.*one block of keys at a time"),
    ("flash_attn_fwd", _fwd_in_torch, r"launched no Triton kernel"),
    ("flash_attn_fwd", _fwd_copies, r"non-contiguous views.*allocates \d+ bytes.*\.contiguous\(\) copies"),
    ("flash_attn_fwd", _fwd_with_scratch, r"allocates \d+ bytes"),
    ("flash_attn_fwd", _fwd_tail_garbage, r"N = 200 \(not a multiple of the block: mask the tail\).*o: max \|err\|"),
    ("flash_attn_bwd", _bwd_without_delta, r"first: when N = 64, D = 16, causal off.*d[qk]: max \|err\|"),
    ("flash_attn_bwd", _bwd_in_torch, r"launched no Triton kernel"),
])
def test_each_check_fails_with_a_teaching_message(name, fn, match):
    failure = _first_failure(name, fn)
    assert failure is not None and failure.startswith(f"{name} fails in"), failure
    import re

    assert re.search(match, failure), failure


def _softmax_three_sweeps(x, block):
    m = torch.full(x.shape[:-1], float("-inf"), dtype=x.dtype)
    for j in range(0, x.shape[-1], block):
        m = torch.maximum(m, x[..., j:j + block].amax(-1))
    l = torch.zeros(x.shape[:-1], dtype=x.dtype)
    for j in range(0, x.shape[-1], block):
        l = l + torch.exp(x[..., j:j + block] - m[..., None]).sum(-1)
    out = torch.empty_like(x)
    for j in range(0, x.shape[-1], block):
        out[..., j:j + block] = torch.exp(x[..., j:j + block] - m[..., None]) / l[..., None]
    return out


def _softmax_reads_output(x, block):
    out = F.online_softmax_torch(x, block)
    for j in range(0, x.shape[-1], block):
        out[..., j:j + block] *= 1.0  # reads each block of the output back
    return out


def _softmax_keeps_copies(x, block):
    copies = [x[..., j:j + block].clone() for j in range(0, x.shape[-1], block)]  # x read once, kept whole
    m = torch.full(x.shape[:-1], float("-inf"), dtype=x.dtype)
    for c in copies:
        m = torch.maximum(m, c.amax(-1))
    l = torch.zeros_like(m)
    for c in copies:
        l = l + torch.exp(c - m[..., None]).sum(-1)
    out = torch.empty_like(x)
    for j, c in zip(range(0, x.shape[-1], block), copies):
        out[..., j:j + block] = torch.exp(c - m[..., None]) / l[..., None]
    return out


def _blocked_two_sweeps(q, k, v, block_n, causal=False):
    for j in range(0, k.shape[-2], block_n):  # a first sweep that only reads the key blocks
        (q @ k[..., j:j + block_n, :].transpose(-2, -1)).amax(-1)
    return F.blocked_attention_torch(q, k, v, block_n, causal)


def _blocked_keeps_keys(q, k, v, block_n, causal=False):
    return F.blocked_attention_torch(q, k.clone(), v, block_n, causal)  # k read once, into a copy kept whole


def _fwd_whole_key_row(q, k, v, causal=False):
    return F.flash_attn_triton(q, k, v, causal, block_n=max(16, 1 << (k.shape[-2] - 1).bit_length()))


def _fwd_lse_on_host(q, k, v, causal=False):
    o, lse = F.flash_attn_triton(q, k, v, causal)
    return o, lse * 1.0  # a host op, however small


def _fwd_two_launches(q, k, v, causal=False):
    o, lse = F.flash_attn_triton(q, k, v, causal)
    z, h, n_q, d = q.shape
    args = (q, k, v, o, lse, *q.stride(), *k.stride(), *v.stride(), *o.stride(), h, n_q, k.shape[-2], d ** -0.5)
    F.flash_fwd_kernel[(F.triton.cdiv(n_q, 64), z * h)](*args, D=d, BLOCK_M=64, BLOCK_N=64, CAUSAL=causal,
                                                        PRECISION="ieee")  # the same work again
    return o, lse


def _bwd_delta_on_host(q, k, v, o, lse, do, causal=False):
    do.mul_(1.0)  # a host op that allocates nothing
    return F.flash_attn_bwd_triton(q, k, v, o, lse, do, causal)


@pytest.mark.parametrize("name,fn,match", [
    ("online_softmax", _softmax_three_sweeps, r"reads column block 0 of x \(columns 0 to 15\) 3 times.*section 2"),
    ("online_softmax", _softmax_reads_output, r"reads its output back"),
    ("online_softmax", _softmax_keeps_copies, r"alive at once than the output and 8 column blocks"),
    ("blocked_attention", _blocked_two_sweeps, r"reads key block 0 of K \(keys 0 to 15\) 2 times.*section 3"),
    ("blocked_attention", _blocked_keeps_keys, r"N_k = 2048.*alive at once than a few outputs"),
    ("flash_attn_fwd", _fwd_whole_key_row, r"BLOCK_N = (128|256|512)|fewer than a K and a V block"),
    ("flash_attn_fwd", _fwd_lse_on_host, r"computed on the host with torch \(mul\)"),
    ("flash_attn_fwd", _fwd_two_launches, r"launched 2 kernel\(s\), exactly 1 expected"),
    ("flash_attn_bwd", _bwd_delta_on_host, r"computed on the host with torch \(mul_\)"),
    ("flash_decode", _decode_one_split, r"SPLIT = \d+ for N_k = 512 keys and num_splits = 4"),
    ("flash_decode", _decode_merge_without_max, r"fails in 1 of \d+ cases; first: when scores pass 100.*o: NaN"),
])
def test_each_method_rule_fails_with_a_teaching_message(name, fn, match, reference_kernels_count_as_own):
    import re

    failure = _first_failure(name, fn)
    assert failure is not None and re.search(match, failure), failure


def test_the_read_counter_counts_a_slice_once_per_sweep():
    x = torch.randn(4, 40, dtype=torch.float64)
    with FC.Reads(x, big=x.nbytes // 2) as rec:
        y = F.online_softmax_torch(x, 8)
    assert (rec.reads(x) == 2).all() and (rec.reads(y) == 0).all()
    with FC.Reads(x) as rec:
        _softmax_three_sweeps(x, 8)
    assert (rec.reads(x) == 3).all()
    with FC.Reads(x) as rec:
        x[:, :8].amax(-1), torch.exp(x[:, :8]), x[:, 8:16].sum(-1), x[:, :8].sum(-1)  # block 0 again after block 1
    assert rec.reads(x)[:, :8].max() == 2 and rec.reads(x)[:, 8:16].max() == 1 and rec.reads(x)[:, 16:].max() == 0


def test_a_learner_exception_is_reported_as_such():
    def raises(x, block):
        raise ValueError("boom")

    assert "raises ValueError: boom" in _first_failure("online_softmax", raises)


def test_forbidden_calls_are_refused():
    from autograder import forbidden

    def uses_softmax(x, block):
        return torch.softmax(x, -1)

    def uses_sdpa(q, k, v, block_n, causal=False):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v), None

    for name, fn in (("online_softmax", uses_softmax), ("blocked_attention", uses_sdpa)):
        ex = F.EXERCISES[name]
        with pytest.raises(AssertionError, match="forbids"):
            forbidden.check(fn, ex.forbidden, ex.why)


def test_16bit_comparison_uses_the_16bit_tolerance():
    want = np.linspace(-2, 2, 64, dtype=np.float32)
    F._compare_16bit(want + 1e-3, want, "bfloat16", "o")  # well inside bf16's 1e-2 + 1.6e-2 |x|
    with pytest.raises(AssertionError, match=r"o: max \|err\| .* for float16"):
        F._compare_16bit(want + 5e-2, want, "float16", "o")


def test_timed_case_compares_nothing():
    case = Case("N = 4096, D = 64, float16 (timed on the GPU: information only)",
                (np.zeros((1, 1, 4, 16), np.float32),) * 3 + (False, "float16"))
    assert F._ref_fwd(case) == {}
    F._check_fwd(case, {"tflops": np.array([1.0, 2.0]), "alloc_bytes": np.array(0), "launches": np.array(1),
                        "largest_out": np.array(0)}, {})


def test_bench_on_the_cpu_returns_equal_length_series():
    from autograder.bench import timer

    figures = F.bench(lambda fn: timer(fn, repeats=1), cuda=False)
    series = {k: v for k, v in figures.items() if not isinstance(v, str)}
    assert {len(v) for v in series.values()} == {len(figures["sizes"])}
    assert all(np.isfinite(v).all() for k, v in series.items() if k.endswith("_mib"))
    assert figures["triton_d16_mib"][-1] < figures["naive_d16_mib"][-1]
