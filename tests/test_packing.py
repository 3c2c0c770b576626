"""Chapter 07 references: packing, unpad/pad and the varlen kernel agree with their specs, the
packed batch gives the padded batch's loss, the op recorder sees what the cost rule relies on,
and every check fails when it should, with a message that teaches and shows no expected values."""
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder import verifier
from autograder.exercise import Case
from autograder.reference import packing as P

SLUG = "07-packing"


def _run_and_check(name, fn, case):
    ex = P.EXERCISES[name]
    got = verifier._run(ex, fn, case)
    ex.check(case, got, ex.reference(case))


def _case(name, kind):
    return next(c for c in P.EXERCISES[name].cases(np.random.default_rng(0)) if c.kind.startswith(kind))


# ---------------------------------------------------------------- packing


def test_ffd_follows_its_definition():
    assert P.ffd([4, 8, 1, 4, 2, 1], 10) == [[1, 4], [0, 3, 2, 5]]
    assert P.ffd([9, 4, 7, 1, 4, 1], 10) == [[0, 3], [2, 5], [1, 4]]  # best fit would put the last 1 in bin 2
    assert P.ffd([3, 3, 3, 3], 7) == [[0, 1], [2, 3]]
    assert P.ffd([0, 0], 4) == [[0, 1]] and P.ffd([], 4) == []
    for args in (([1], 0), ([], -1), ([-1], 4), ([5], 4)):
        with pytest.raises(ValueError):
            P.ffd(*args)


def test_ffd_and_next_fit_are_valid_packings_near_the_lower_bound():
    rng = np.random.default_rng(1)
    lengths = P.long_tailed_lengths(rng, 500, 1024, 100).tolist()
    bound = -(-sum(lengths) // 1024)
    for pack, slack in ((P.ffd, 11 / 9), (P.next_fit, 2.0)):
        bins = pack(lengths, 1024)
        assert sorted(i for b in bins for i in b) == list(range(500))
        assert all(sum(lengths[i] for i in b) <= 1024 for b in bins)
        assert bound <= len(bins) <= slack * bound + 1
    assert P.next_fit([3, 3, 3], 5) == [[0], [1], [2]] and P.next_fit([2, 3, 4], 5) == [[0, 1], [2]]


# ---------------------------------------------------------------- unpad / pad


def test_unpad_and_pad_round_trip_with_gradients():
    hidden = torch.randn(3, 5, 2, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 1, 1, 1]], dtype=torch.int32)
    values, indices, cu, max_seqlen = P.unpad(hidden, mask)
    assert values.shape == (6, 2, 4) and indices.tolist() == [0, 1, 11, 12, 13, 14]
    assert cu.tolist() == [0, 2, 2, 6] and cu.dtype == torch.int32 and max_seqlen == 4 and type(max_seqlen) is int
    keep = mask.bool()[..., None, None]
    assert torch.equal(P.pad(values, indices, 3, 5), hidden.detach() * keep)
    torch.autograd.gradcheck(lambda h: P.pad(P.unpad(h, mask)[0], indices, 3, 5), (hidden,))
    empty = P.unpad(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool))
    assert empty[0].shape == (0,) and empty[2].tolist() == [0, 0, 0] and empty[3] == 0


# ---------------------------------------------------------------- varlen attention


def _packed(lengths, h=2, d=16, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    t = sum(lengths)
    q, k, v = (torch.randn(t, h, d, generator=gen, dtype=dtype) for _ in range(3))
    cu = torch.tensor([0, *np.cumsum(lengths).tolist()], dtype=torch.int32)
    return q, k, v, cu


@pytest.mark.parametrize("lengths,d,causal,scale", [
    ([64], 16, False, None), ([37, 100, 5], 16, True, None), ([37, 100, 5], 32, False, None),
    ([1, 1, 3], 16, True, None), ([20, 0, 33], 64, True, 0.25), ([70], 128, False, None),
])
def test_varlen_kernel_matches_per_sequence_attention(lengths, d, causal, scale):
    q, k, v, cu = _packed(lengths, d=d, seed=len(lengths) + d)
    out = P.varlen_attention_triton(q, k, v, cu, max(lengths), causal, scale)
    assert out.shape == q.shape and out.dtype == q.dtype
    assert (out.double() - P.varlen_attention_spec(q, k, v, cu, causal, scale)).abs().max() < 2e-6


def test_varlen_spec_is_dense_attention_under_the_block_diagonal_mask():
    q, k, v, cu = _packed([5, 3, 9], h=1, dtype=torch.float64)
    dense = F.scaled_dot_product_attention(*(t.transpose(0, 1) for t in (q, k, v)),
                                           attn_mask=P.block_diagonal_mask(cu, causal=True)).transpose(0, 1)
    assert torch.allclose(P.varlen_attention_spec(q, k, v, cu, causal=True), dense, atol=1e-12)


def test_varlen_kernel_reads_strided_views_and_allocates_only_its_output():
    qkv = torch.randn(50, 3, 2, 16)  # (T, 3, H, D): q, k, v are strided views
    q, k, v = qkv.unbind(1)
    cu = torch.tensor([0, 20, 50], dtype=torch.int32)
    with P.AttentionWatch() as watch:
        out = P.varlen_attention_triton(q, k, v, cu, 30, causal=True)
    assert (out.double() - P.varlen_attention_spec(q, k, v, cu, True)).abs().max() < 2e-6
    assert watch.launches == 1 and not watch.ops and not watch.attention and watch.largest_out == out.numel()
    assert not torch.isnan(out).any()  # the output came from a poisoned torch.empty: every row was written
    summary = watch.summary()  # in bounds (else OutOfBounds was raised), and compiled for sm_90
    assert not summary["compile_errors"].size, summary["compile_errors"]
    assert list(summary["dot_precisions"]) == ["fp32 x fp32 ieee"] and not summary["host_ops"].size


def test_attention_watch_names_softmax_and_matrix_products():
    x = torch.randn(8, 8)
    with P.AttentionWatch() as watch:
        (x @ x).softmax(-1)
        x.sum()
    assert {"mm", "_softmax"} <= watch.attention and {"mm", "_softmax", "sum"} <= set(watch.ops)
    assert watch.largest_out == 64
    assert P.attention_like("_scaled_dot_product_flash_attention") and not P.attention_like("sum")


# ---------------------------------------------------------------- the packed batch


def test_collate_layout_and_the_loss_of_packed_equals_padded():
    batch = P.collate([{"input_ids": [1, 2, 3]}, {"input_ids": [4, 5, 6, 7, 8]}, {"input_ids": [9]}], 8)
    assert batch["input_ids"].tolist() == [[4, 5, 6, 7, 8, 1, 2, 3], [9, 0, 0, 0, 0, 0, 0, 0]]
    assert batch["labels"].tolist()[0] == [5, 6, 7, 8, -100, 2, 3, -100]
    assert batch["cu_seqlens"].tolist() == [0, 5, 8, 9] and batch["cu_seqlens"].dtype == torch.int32
    empty = P.collate([], 4)
    assert empty["input_ids"].shape == (0, 4) and empty["cu_seqlens"].tolist() == [0]
    rng = np.random.default_rng(3)
    samples = [{"input_ids": rng.integers(1, 64, n).tolist()} for n in rng.integers(1, 20, 15)]
    model = P.tiny_decoder(5, P.TinyConfig(max_positions=24))
    with torch.no_grad():
        packed = P.packed_loss(model, P.collate(samples, 24))
        padded = P.padded_loss(model, [s["input_ids"] for s in samples])
    assert abs(packed.item() - padded.item()) < 1e-12


def test_packed_attention_patch_is_undone_even_on_error():
    original = P.Attention.forward
    with pytest.raises(RuntimeError):
        with P.packed_attention():
            assert P.Attention.forward is not original
            raise RuntimeError("boom")
    assert P.Attention.forward is original


# ---------------------------------------------------------------- the checks fail when they should


def _best_fit(lengths, capacity):
    if capacity <= 0 or any(not 0 <= n <= capacity for n in lengths):
        raise ValueError
    bins, free = [], []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        fits = [b for b, room in enumerate(free) if room >= lengths[i]]
        b = min(fits, key=lambda b: free[b]) if fits else len(bins)
        if b == len(bins):
            bins.append([])
            free.append(capacity)
        bins[b].append(i)
        free[b] -= lengths[i]
    return bins


def test_ffd_checks():
    case = _case("first_fit_decreasing", "the first bin with room")
    _run_and_check("first_fit_decreasing", P.ffd, case)
    with pytest.raises(AssertionError, match="bin 1 differs from first-fit decreasing's") as e:
        _run_and_check("first_fit_decreasing", _best_fit, case)
    assert "[[0, 3]" not in str(e.value)
    with pytest.raises(AssertionError, match="instead of raising ValueError"):
        _run_and_check("first_fit_decreasing", lambda lengths, c: [], _case("first_fit_decreasing", "capacity is 0"))
    with pytest.raises(AssertionError, match="modified its inputs"):
        _run_and_check("first_fit_decreasing", lambda lengths, c: (lengths.sort(), P.ffd(lengths, c))[1],
                       _case("first_fit_decreasing", "a small example"))
    def resums_every_bin(lengths, capacity):  # O(n^2) lines: each item re-sums every bin's items
        bins = []
        for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
            for b in bins:
                used = 0
                for j in b:
                    used += lengths[j]
                if used + lengths[i] <= capacity:
                    b.append(i)
                    break
            else:
                bins.append([i])
        return bins

    work = _case("first_fit_decreasing", "10^4 lengths")
    _run_and_check("first_fit_decreasing", P.ffd, work)
    with pytest.raises(AssertionError, match=r"stopped after \d+ Python lines"):
        _run_and_check("first_fit_decreasing", resums_every_bin, work)


def unpad_input(hidden, mask):
    values, indices, cu, max_seqlen = P.unpad(hidden, mask)
    return values, indices, cu.long(), max_seqlen


def pad_input(values, indices, batch, seqlen):
    return P.pad(values, indices, batch, seqlen)


def test_unpad_checks_name_the_dtype_and_the_missing_gradient():
    case = _case("unpad_input", "a row holds no tokens")
    with pytest.raises(AssertionError, match="cu_seqlens: output has dtype int64, expected int32"):
        _run_and_check("unpad_input", unpad_input, case)

    def detached(hidden, mask):
        values, indices, cu, m = P.unpad(hidden.detach(), mask)
        return values, indices, cu, m

    with pytest.raises(AssertionError, match="grad_hidden: no gradient"):
        _run_and_check("unpad_input", detached, case)


def test_varlen_checks_catch_leaks_library_ops_and_tt_memory():
    case = _case("varlen_attention", "lengths are not block multiples, causal off")

    def whole_tensor(q, k, v, cu, max_seqlen, causal=False, scale=None):  # one sequence: attends across
        return P.varlen_attention_triton(q, k, v, torch.tensor([0, q.shape[0]], dtype=torch.int32),
                                         q.shape[0], causal, scale)

    with pytest.raises(AssertionError, match="out: max \\|err\\|"):
        _run_and_check("varlen_attention", whole_tensor, case)

    def by_torch(q, k, v, cu, max_seqlen, causal=False, scale=None):
        return P.varlen_attention_spec(q, k, v, cu, causal, scale).float()

    with pytest.raises(AssertionError, match="ran the torch op"):
        _run_and_check("varlen_attention", by_torch, case)
    big = _case("varlen_attention", "T = 1024")
    t = big.args[0].shape[0]
    good = _kernel_record(big) | {"out": np.zeros((t, 1, 16), np.float32), "out_dtype": np.array("float32"),
                                  "attention_ops": np.array([], dtype=str), "changed": np.array(False)}
    want = {k: good[k] for k in ("out", "out_dtype")}
    P._check_varlen(big, good | {"largest_out": np.array(0), "python_peak_bytes": np.array(0)}, want)
    with pytest.raises(AssertionError, match="T x T"):
        P._check_varlen(big, good | {"largest_out": np.array(t * t), "python_peak_bytes": np.array(0)}, want)
    with pytest.raises(AssertionError, match="Python or NumPy allocations"):
        P._check_varlen(big, good | {"largest_out": np.array(0), "python_peak_bytes": np.array(t * t)}, want)


def _kernel_record(case, launches=1, block_m=64, block_n=64, grid=None, loads=None, host_ops=()):
    """What the run records of a learner's varlen_kernel launch (as a notebook would define it)."""
    q, _, _, cu, max_seqlen = case.args[:5]
    grid = grid or (-(-max_seqlen // block_m), len(cu) - 1, q.shape[1])
    return {"launches": np.array(launches), "kernels": np.array(["varlen_kernel"] * launches),
            "kernel_modules": np.array(["__main__"] * launches), "grids": np.array([grid] * launches),
            "constexprs": np.array([f"D=16, BLOCK_M={block_m}, BLOCK_N={block_n}, CAUSAL=True, PRECISION=ieee"] * launches),
            "dot_precisions": np.array(["fp32 x fp32 ieee"]), "compile_errors": np.array([], dtype=str),
            "loads_per_program": np.array(1.0),
            "host_ops": np.array(list(host_ops), dtype=str), "host_op_elements": np.zeros(len(host_ops), np.int64),
            "kernel_loads": np.array(-1 if loads is None else loads), "largest_out": np.array(0),
            "python_peak_bytes": np.array(0)}


def test_varlen_checks_name_the_launch_the_running_max_and_one_pass():
    sharp = _case("varlen_attention", "scores reach 640")
    want = P._ref_varlen(sharp)
    base = {"out": want["out"], "out_dtype": want["out_dtype"], "attention_ops": np.array([], dtype=str),
            "changed": np.array(False)}
    P._check_varlen(sharp, base | _kernel_record(sharp, loads=100), want)
    nan = want["out"].copy()
    nan[3] = np.nan
    with pytest.raises(AssertionError, match="running max"):
        P._check_varlen(sharp, base | _kernel_record(sharp) | {"out": nan}, want)
    with pytest.raises(AssertionError, match="launched varlen_kernel 2 times for 2 sequences: one launch"):
        P._check_varlen(sharp, base | _kernel_record(sharp, launches=2), want)
    with pytest.raises(AssertionError, match="BLOCK_N = 512"):
        P._check_varlen(sharp, base | _kernel_record(sharp, block_n=512), want)
    with pytest.raises(AssertionError, match="grid of \\(5, 1, 1\\) for 2 sequences"):
        P._check_varlen(sharp, base | _kernel_record(sharp, grid=(5, 1, 1)), want)
    with pytest.raises(AssertionError, match="130 tl.load calls .* at most 108"):
        P._check_varlen(sharp, base | _kernel_record(sharp, loads=130), want)
    with pytest.raises(AssertionError, match="computed on the host"):
        P._check_varlen(sharp, base | _kernel_record(sharp, host_ops=("exp",)), want)
    with pytest.raises(AssertionError, match="ran no tl.dot"):
        P._check_varlen(sharp, base | _kernel_record(sharp) | {"dot_precisions": np.array([], dtype=str)}, want)
    assert np.abs(want["out"]).max() > 0 and np.isfinite(want["out"]).all()


def test_collate_checks_teach_positions_and_loss():
    def no_restart(samples, capacity):
        batch = P.collate(samples, capacity)
        batch["position_ids"] = torch.arange(capacity).expand_as(batch["input_ids"]) * batch["attention_mask"]
        return batch

    with pytest.raises(AssertionError, match="positions restart at 0"):
        _run_and_check("packed_collate", no_restart, _case("packed_collate", "a small example"))
    with pytest.raises(AssertionError, match="loss differs from the padded batch's"):
        _run_and_check("packed_collate", no_restart, _case("packed_collate", "the tiny decoder's mean loss"))


# ---------------------------------------------------------------- cases and the record


@pytest.mark.parametrize("name", list(P.EXERCISES))
def test_cases_are_deterministic_per_seed(name):
    one, two = (P.EXERCISES[name].cases(np.random.default_rng(5)) for _ in range(2))
    assert [c.kind for c in one] == [c.kind for c in two]
    assert pickle.dumps([c.args for c in one]) == pickle.dumps([c.args for c in two])


def test_verify_records_and_the_grader_agrees(tmp_path, monkeypatch):
    monkeypatch.setenv(verifier.SEED_VAR, "7")
    monkeypatch.setenv(verifier.RECORD_VAR, str(tmp_path))
    verifier.verify(SLUG, "first_fit_decreasing", P.ffd)
    assert verifier.check_record(SLUG, "first_fit_decreasing", 7, tmp_path / "first_fit_decreasing.npz") is None


# ---------------------------------------------------------------- boundaries from position_ids


def test_boundaries_from_positions_match_the_collators():
    flat = P.flatten_collate([{"input_ids": [1, 2, 3]}, {"input_ids": [4]}, {"input_ids": [5, 6]}])
    assert flat["position_ids"].tolist() == [[0, 1, 2, 0, 0, 1]] and flat["labels"].tolist() == [[2, 3, -100, -100, 6, -100]]
    cu, max_seqlen = P.boundaries_from_positions(flat["position_ids"])
    assert torch.equal(cu, flat["cu_seq_lens_q"]) and cu.dtype == torch.int32 and max_seqlen == flat["max_length_q"] == 3
    case = _case("cu_seqlens_from_position_ids", "the positions of a packed_collate batch")
    want = P.collate(*case.args)["cu_seqlens"]
    assert torch.equal(P.boundaries_from_positions(torch.from_numpy(P.positions_of(case)))[0], want)
    assert P.boundaries_from_positions(torch.zeros(1, 0, dtype=torch.int64))[0].tolist() == [0]
    for bad in ([[1, 2, 0]], [[0, 1], [1, 2]], [[0, 2]], [0, 1]):
        with pytest.raises(ValueError):
            P.boundaries_from_positions(torch.tensor(bad))


def test_positions_checks_catch_off_by_one_and_a_loop():
    def off_by_one(pos):
        cu, m = P.boundaries_from_positions(pos)
        return torch.cat([cu[:1], cu[1:-1] - 1, cu[-1:]]), m

    with pytest.raises(AssertionError, match="a position is 0"):
        _run_and_check("cu_seqlens_from_position_ids", off_by_one, _case("cu_seqlens_from_position_ids", "one row"))

    def by_python(pos):  # the right boundaries, one element at a time
        flat = pos.flatten()
        starts = [t for t in range(flat.numel()) if int(flat[t]) == 0] + [flat.numel()]
        return torch.tensor(starts, dtype=torch.int32), max(b - a for a, b in zip(starts[:-1], starts[1:]))

    big = _case("cu_seqlens_from_position_ids", "20 000 tokens")
    _run_and_check("cu_seqlens_from_position_ids", P.boundaries_from_positions, big)
    with pytest.raises(AssertionError, match=r"ran \d+ torch ops"):
        _run_and_check("cu_seqlens_from_position_ids", by_python, big)


# ---------------------------------------------------------------- the accumulated loss


def test_accumulated_loss_checks_catch_the_mean_of_means_and_one_big_batch():
    unequal = _case("accumulated_loss", "unequal real-token counts")
    _run_and_check("accumulated_loss", P.token_sum_losses, unequal)
    with pytest.raises(AssertionError, match="sum of the micro-batch losses.*whole batch"):
        _run_and_check("accumulated_loss", P.mean_of_means, unequal)

    def one_big_batch(micro):
        full = F.cross_entropy(torch.cat([m["logits"].flatten(0, 1) for m in micro]),
                               torch.cat([m["labels"].flatten() for m in micro]), ignore_index=-100)
        return [full] + [full.new_zeros(()) for _ in micro[1:]]

    with pytest.raises(AssertionError, match="has a gradient on micro-batch 1's logits"):
        _run_and_check("accumulated_loss", one_big_batch, unequal)
    with pytest.raises(AssertionError, match="NaN or inf"):
        _run_and_check("accumulated_loss", P.mean_of_means, _case("accumulated_loss", "a micro-batch with no real label"))
