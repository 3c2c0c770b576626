"""Chapter 05 references: the byte counts reproduce the papers' numbers, the closed-form parameter
count equals real models' numel() and the published totals, ZeRO simulated in one process equals
torch.optim.AdamW, the measuring helpers count what is really there, and every check fails with a
lesson (never the expected value)."""
import pickle

import numpy as np
import pytest
import torch

from autograder import forbidden, verifier
from autograder.cases import memory as cases
from autograder.reference import memory as M

REFERENCES = {"model_state_bytes": M.model_state_bytes, "activation_bytes": M.activation_bytes,
              "count_params": M.count_params, "zero_step": M.zero_step,
              "ring_reduce_scatter": M.ring_reduce_scatter, "ring_all_gather": M.ring_all_gather}


# ---------------------------------------------------------------- the formulas

def test_zero_paper_figure_1_and_the_112_gb():
    gb = [round(M.model_state_bytes(7.5e9, s, 64)["total"] / 1e9, 1) for s in range(4)]
    assert gb == [120.0, 31.4, 16.6, 1.9]
    assert M.model_state_bytes(7 * 10**9, 0, 1)["total"] == 112 * 10**9


def test_shards_are_padded_and_offload_empties_the_optimizer():
    assert M.model_state_bytes(10, 3, 4) == {"params": 6, "grads": 6, "optimizer": 36, "total": 48}
    assert M.model_state_bytes(10, 1, 4, offload=True)["optimizer"] == 0
    for bad in [dict(zero_stage=True), dict(zero_stage=4), dict(dp=0), dict(n_params=2.5), dict(optimizer_bytes=-1)]:
        with pytest.raises(ValueError):
            M.model_state_bytes(**{"n_params": 10, "zero_stage": 1, "dp": 2, **bad})


def test_activation_bytes_is_exact_beyond_floats():
    s, b, h, a = 2**22 + 3, 4099, 300_007, 97
    assert M.activation_bytes(s, b, h, a, 1) == 34 * s * b * h + 5 * a * s * s * b
    assert M.activation_bytes(2048, 1, 12288, 96, 1, "full") == 2 * 2048 * 12288
    for bad in ["Full", None, "selective "]:
        with pytest.raises(ValueError):
            M.activation_bytes(8, 1, 8, 2, 1, bad)


@pytest.mark.parametrize("cfg,total", [(M.LLAMA_2_7B, 6_738_415_616), (M.LLAMA_3_8B, 8_030_261_248)])
def test_published_totals(cfg, total):
    assert M.count_params(cfg) == M.count_params_by_model(cfg) == total


def test_closed_form_equals_real_models_numel():
    rng = np.random.default_rng(0)
    for _ in range(20):
        cfg = cases.random_config(rng, tie=bool(rng.integers(2)))
        model = M.LlamaStyle(cfg)
        assert M.count_params(cfg) == sum(p.numel() for p in model.parameters()), cfg


def test_the_model_runs_forward_and_backward():
    cfg = dict(vocab_size=11, hidden_size=8, intermediate_size=12, num_layers=2, num_heads=4, num_kv_heads=2,
               tie_embeddings=True)
    model = M.LlamaStyle(cfg)
    logits = model(torch.randint(0, 11, (2, 5)))
    assert logits.shape == (2, 5, 11)
    logits.sum().backward()
    assert model.embed.weight.grad is not None


# ---------------------------------------------------------------- ZeRO simulated

@pytest.mark.parametrize("stage", [1, 2, 3])
@pytest.mark.parametrize("world", [1, 3, 5])
def test_zero_step_equals_adamw_on_the_mean_gradient(stage, world):
    gen = torch.Generator().manual_seed(stage * 10 + world)
    shapes = [(3, 5), (7,), (2, 2)]
    params = [torch.randn(s, generator=gen) for s in shapes]
    grads = [[[torch.randn(s, generator=gen) for s in shapes] for _ in range(world)] for _ in range(3)]
    want = M.adamw_reference(params, grads, world, lr=0.05, weight_decay=0.1, eps=1e-3)
    states = None
    for k, step_grads in enumerate(grads):
        params, states, per_rank = M.zero_step(params, step_grads, states, world, stage, 0.05, eps=1e-3,
                                               weight_decay=0.1, step=k + 1)
        for p, w in zip(params, want[k][0]):
            torch.testing.assert_close(p, w, atol=1e-6, rtol=1e-6)
        got_states = torch.stack([torch.stack([s["exp_avg"], s["exp_avg_sq"]]) for s in states])
        torch.testing.assert_close(got_states, want[k][1], atol=1e-7, rtol=1e-6)
    P, S = 26, -(-26 // world)
    held = {1: (P, P), 2: (P, S), 3: (S, S)}[stage]
    assert per_rank == [4 * (held[0] + held[1] + 2 * S)] * world


def test_zero_step_refuses_bad_layouts():
    params = [torch.zeros(5)]
    grads = [[torch.zeros(5)], [torch.zeros(5)]]
    for kwargs in [dict(stage=0), dict(world=3), dict(step=0), dict(grads=[[torch.zeros(4)]] * 2),
                   dict(states=[{"exp_avg": torch.zeros(2), "exp_avg_sq": torch.zeros(2)}] * 2)]:
        args = {"params": params, "grads": grads, "states": None, "world": 2, "stage": 1, "lr": 0.1, **kwargs}
        with pytest.raises(ValueError):
            M.zero_step(**args)


# ---------------------------------------------------------------- measuring helpers

def test_storage_bytes_counts_views_and_tied_weights_once():
    x = torch.zeros(10, 4)
    assert M.storage_bytes([x, x[1:], x.t(), None, torch.zeros(3, dtype=torch.float16)]) == 160 + 6


def test_mixed_precision_adamw_holds_16_bytes_per_parameter_plus_step_counters():
    cfg = dict(vocab_size=13, hidden_size=8, intermediate_size=12, num_layers=1, num_heads=2, num_kv_heads=1)
    model = M.LlamaStyle(cfg, dtype=torch.bfloat16)
    opt = M.MixedPrecisionAdamW(model, lr=1e-3)
    model(torch.randint(0, 13, (1, 4))).float().sum().backward()
    opt.step()
    tensors = len(list(model.parameters()))
    assert M.storage_bytes(opt.state_tensors()) == 16 * M.count_params(cfg) + 4 * tensors


def test_bench_runs_on_the_cpu():
    rows = M.bench(lambda fn: (fn(), 0.0)[1], cuda=False)
    n = len(rows["n_params"])
    assert n >= 2 and all(len(rows[k]) == n for k in ("predicted_state_bytes", "measured_state_bytes", "step_seconds"))
    assert all(0 <= m - p < 1000 for m, p in zip(rows["measured_state_bytes"], rows["predicted_state_bytes"]))


# ---------------------------------------------------------------- exercises: cases, checks and what they say

@pytest.mark.parametrize("name", list(M.EXERCISES))
def test_reference_passes_its_own_checks(name):
    ex = M.EXERCISES[name]
    for seed in (11, 12):
        for case in ex.cases(np.random.default_rng(seed)):
            ex.check(case, verifier._run(ex, REFERENCES[name], case), ex.reference(case))


@pytest.mark.parametrize("name", list(M.EXERCISES))
def test_cases_are_deterministic_per_seed(name):
    ex = M.EXERCISES[name]
    one, two = ex.cases(np.random.default_rng(5)), ex.cases(np.random.default_rng(5))
    assert [c.kind for c in one] == [c.kind for c in two]
    assert pickle.dumps([c.args for c in one]) == pickle.dumps([c.args for c in two])


def test_verify_records_and_the_grader_agrees(tmp_path, monkeypatch):
    monkeypatch.setenv(verifier.SEED_VAR, "4321")
    monkeypatch.setenv(verifier.RECORD_VAR, str(tmp_path))
    for name, fn in REFERENCES.items():
        verifier.verify("05-memory", name, fn)
        assert verifier.check_record("05-memory", name, 4321, tmp_path / f"{name}.npz") is None


def _failure(name, fn, seed=3):
    ex = M.EXERCISES[name]
    for case in ex.cases(np.random.default_rng(seed)):
        try:
            ex.check(case, verifier._run(ex, fn, case), ex.reference(case))
        except AssertionError as e:
            return case.kind, str(e)
    return None, None


def _states_as_floats(*args, **kwargs):
    out = M.model_state_bytes(*args, **kwargs)
    return {k: float(v) for k, v in out.items()}


def _states_without_validation(n_params, zero_stage, dp, optimizer_bytes=12, offload=False):
    return M.model_state_bytes(n_params, min(max(int(zero_stage), 0), 3), max(int(dp), 1), abs(optimizer_bytes), offload)


def _states_extra_key(*args, **kwargs):
    return {**M.model_state_bytes(*args, **kwargs), "activations": 0}


def _activation_numpy(seq, batch, hidden, heads, layers, recompute="none"):
    return np.int64(M.activation_bytes(seq, batch, hidden, heads, layers, recompute) % 2**62)


def _count_type_error(cfg):
    if cfg["hidden_size"] % cfg["num_heads"]:
        raise TypeError("bad config")
    return M.count_params(cfg)


def _zero_aliasing(params, grads, states, world, stage, lr, **kw):
    new_params, new_states, nbytes = M.zero_step(params, grads, states, world, stage, lr, **kw)
    return list(params) if world == 1 and states is None else new_params, new_states, nbytes


def _zero_bytes_numpy(*args, **kw):
    new_params, new_states, nbytes = M.zero_step(*args, **kw)
    return new_params, new_states, [np.int64(b) for b in nbytes]


def _zero_states_of_floor_size(params, grads, states, world, stage, lr, **kw):
    new_params, new_states, nbytes = M.zero_step(params, grads, states, world, stage, lr, **kw)
    P = sum(p.numel() for p in params)
    return new_params, [{k: v[:max(P // world, 1)] for k, v in s.items()} for s in new_states], nbytes


def _ring_whole_tensor(x, rank, world, send, recv):
    total, passing = x.clone(), x.clone()
    for _ in range(world - 1):
        send(passing, (rank + 1) % world)
        passing = torch.empty_like(x)
        recv(passing, (rank - 1) % world)
        total = total + passing
    return total.reshape(world, -1)[rank]


def _ring_direct(x, rank, world, send, recv):  # right values and bytes, but every rank talks to every rank
    pieces = list(x.reshape(world, -1))
    for j in range(world):
        if j != rank:
            send(pieces[j], j)
    mine = pieces[rank].clone()
    for j in range(world):
        if j != rank:
            arrived = torch.empty_like(mine)
            recv(arrived, j)
            mine = mine + arrived
    return mine


def _ring_ignores_arrivals(x, rank, world, send, recv):  # right traffic, but what arrives is dropped
    pieces = list(x.reshape(world, -1).clone())
    for k in range(world - 1):
        send(pieces[(rank - k - 1) % world], (rank + 1) % world)
        recv(torch.empty_like(pieces[0]), (rank - 1) % world)
    return pieces[rank]


def _gather_arrival_order(shard, rank, world, send, recv):
    arrived = [shard.clone()]
    for _ in range(world - 1):
        send(arrived[-1], (rank + 1) % world)
        arrived.append(torch.empty_like(shard))
        recv(arrived[-1], (rank - 1) % world)
    return torch.cat(arrived)


def _gather_raises_on_rank_1(shard, rank, world, send, recv):
    if rank == 1:
        raise IndexError("rank 1 fails")
    return M.ring_all_gather(shard, rank, world, send, recv)


@pytest.mark.parametrize("name,fn,kind,message", [
    ("ring_reduce_scatter", _ring_whole_tensor, "2 ranks", "more or less than one chunk"),
    ("ring_reduce_scatter", _ring_direct, "3 ranks", "each to rank (rank + 1) % world only"),
    ("ring_reduce_scatter", _ring_ignores_arrivals, "2 ranks", "chunk r of the sum"),
    ("ring_all_gather", _gather_arrival_order, "2 ranks", "in rank order"),
    ("ring_all_gather", _gather_raises_on_rank_1, "2 ranks", "on rank 1: IndexError"),
    ("model_state_bytes", _states_as_floats, "Figure 1", "not a Python int"),
    ("model_state_bytes", _states_without_validation, "raise ValueError", "instead of raising ValueError"),
    ("model_state_bytes", _states_extra_key, "Figure 1", "exactly params, grads, optimizer and total"),
    ("activation_bytes", _activation_numpy, "random sizes", "not a Python int"),
    ("count_params", _count_type_error, "hidden_size % num_heads", "raises TypeError"),
    ("zero_step", _zero_aliasing, "world = 1", "shares storage"),
    ("zero_step", _zero_bytes_numpy, "stage 1", "per_rank_bytes"),
    ("zero_step", _zero_states_of_floor_size, "stage 1", "zero-padded slice"),
])
def test_each_check_fails_with_a_lesson(name, fn, kind, message):
    got_kind, text = _failure(name, fn)
    assert got_kind is not None and kind in got_kind and message in text, (got_kind, text)


def test_messages_never_show_the_expected_count():
    kind, text = _failure("count_params", lambda cfg: M.count_params(cfg) + 1)
    assert "Llama-2-7B" in kind and "6738415617" not in text and "6738415616" not in text


def test_ring_forbids_collectives_and_side_channels():
    ring = set(M.EXERCISES["ring_all_gather"].forbidden)
    assert ring == set(M.EXERCISES["ring_reduce_scatter"].forbidden)
    assert forbidden.uses("import torch.distributed as dist\ndist.all_gather(out, shard)", ring)
    assert forbidden.uses("torch.distributed.all_reduce(x)", ring)
    assert forbidden.uses("frame = sys._getframe().f_back", ring)
    assert forbidden.uses("with open('/tmp/x') as f:\n    pass", ring)
    assert forbidden.uses("torch.save(x, 'r0.pt')", ring)
    assert forbidden.uses("send.__globals__['dist'].all_reduce(x)", ring)
    assert forbidden.uses("getattr(send, name)", ring)
    assert not forbidden.uses("send(chunks[j], (rank + 1) % world)\nrecv(buf, (rank - 1) % world)", ring)


def test_forbidden_names():
    zero = set(M.EXERCISES["zero_step"].forbidden)
    assert forbidden.uses("opt = torch.optim.AdamW(ps)", zero)
    assert forbidden.uses("from torch.optim import AdamW", zero)
    assert not forbidden.uses("def adamw(p, g):\n    return adamw(p, g)", zero)
    counting = set(M.EXERCISES["count_params"].forbidden)
    assert forbidden.uses("sum(p.numel() for p in model.parameters())", counting)
    assert not forbidden.uses("parameters = 3", counting)
