"""Chapter 08 references: the merger, 2-D RoPE, MoE and grouped GEMM agree with their specs, the
published config's parameter count is about 16B total and under 3B active, the tiny model runs end
to end, and each check fails when it should, with a message that teaches and shows no expected values."""
import numpy as np
import pytest
import torch

from autograder import verifier
from autograder.reference import kimi_vl as K


def _fails(name, fn, kind_start, needle):
    ex = K.EXERCISES[name]
    case = next(c for c in ex.cases(np.random.default_rng(0)) if c.kind.startswith(kind_start))
    got = verifier._run(ex, fn, case)
    with pytest.raises(AssertionError, match=needle):
        ex.check(case, got, ex.reference(case))


def test_parameter_count_matches_the_report():
    c = K.parameter_count()
    total, active = (sum(c[k].values()) / 1e9 for k in ("total", "active"))
    assert 15.5 < total < 16.5 and 2.5 < active < 3.0


def test_merger_fast_equals_spec_and_rejects_bad_grids():
    grid = torch.tensor([[4, 6], [2, 2], [6, 4]])
    x = torch.randn(int((grid[:, 0] * grid[:, 1]).sum()), 3)
    for k in ((2, 2), (2, 1), (1, 1)):
        assert torch.equal(K.merge_patches(x, grid, k), K.patch_merger_spec(x, grid, k))
    with pytest.raises(ValueError):
        K.merge_patches(x, grid, (4, 4))


def test_rope_convention_and_relative_property():
    f = K.rope_2d_spec(torch.tensor([[2, 3]]), 8)
    assert torch.allclose(f[5].angle(), torch.tensor([2.0, 1.0, 0.02, 0.01]), atol=1e-6)
    q = torch.randn(1, 1, 8, dtype=torch.float64).expand(12, 1, 8)
    k = torch.randn(1, 1, 8, dtype=torch.float64).expand(12, 1, 8)
    g = K.rope_2d_spec(torch.tensor([[3, 4]]), 8)
    qr, kr = K.apply_rope_spec(q, k, g)
    s = (qr[:, 0] @ kr[:, 0].T).view(3, 4, 3, 4)
    assert torch.allclose(s[:2, :3, :2, :3], s[1:, 1:, 1:, 1:], atol=1e-6)


def test_moe_dispatch_and_grouped_kernel_match_dense_spec():
    gen = torch.Generator().manual_seed(0)
    x, r = torch.randn(20, 8, generator=gen), torch.randn(6, 8, generator=gen)
    wg, wu, wd = torch.randn(6, 8, 12, generator=gen), torch.randn(6, 8, 12, generator=gen), torch.randn(6, 12, 8, generator=gen)
    want, counts = K.moe_dense_spec(x, r, wg, wu, wd, 2, "sigmoid", True, 2.0)
    for grouped in (None, K.grouped_matmul_triton):
        got, c = K.moe_dispatch(x, r, wg, wu, wd, 2, "sigmoid", True, 2.0, grouped=grouped)
        assert torch.allclose(got, want, atol=1e-4) and torch.equal(c, counts)


def test_tiny_model_runs_end_to_end():
    cfg = K.tiny_config()
    imgs = [torch.randn(3, 16, 24), torch.randn(3, 8, 8)]
    with torch.no_grad():
        h, counts = K.tiny_forward(imgs, torch.tensor([1, 2, 3]), K.tiny_weights(0), cfg)
    assert h.shape == ((24 + 4) // 4 + 3, cfg["lm_dim"]) and int(counts.sum()) == h.shape[0] * cfg["top_k"]


def test_checks_fail_with_teaching_messages():

    def merger_wrong(x, g, k=(2, 2)):
        out = K.merge_patches(x, g, k)
        return out.flip(0)

    _fails("patch_merger", merger_wrong, "one square image", "row-major")

    def moe_dense(*a, **kw):
        return K.moe_dense_spec(*a, **kw)

    _fails("moe_forward", moe_dense, K.COST_CASE, "budget")

    def gmm_torch(x, off, w):
        return K.per_expert_loop(x, off, w)

    _fails("grouped_matmul", gmm_torch, "K = 7", "torch op")


def test_moe_cost_checks_name_each_dense_road():
    case = next(c for c in K.EXERCISES["moe_forward"].cases(np.random.default_rng(0)) if c.kind == K.COST_CASE)
    want = K._ref_moe(case)
    fine = {**want, "flops": np.array(1), "largest": np.array(512), "work": np.array(17000), "products": np.array(25),
            "lines": np.array(75), "changed": np.array(False)}
    K._check_moe(case, fine, want)
    for change, needle in (({"lines": np.array(10**4)}, "Python lines"), ({"flops": np.array(10**6)}, "budget"),
                           ({"largest": np.array(32 * 8 * 32)}, "T E F = 8192 or more"),
                           ({"work": np.array(10**5)}, "elementwise pass"), ({"products": np.array(64)}, "3 E \\+ 4")):
        with pytest.raises(AssertionError, match=needle):
            K._check_moe(case, fine | change, want)


def test_grouped_checks_name_the_launch_the_grid_and_the_host():
    case = next(c for c in K.EXERCISES["grouped_matmul"].cases(np.random.default_rng(0)) if c.kind.startswith("300 rows"))
    want = K._ref_grouped(case)
    x, off, w = case.args

    def record(launches=1, grid=(10, 2, 1), bm=32, host_ops=()):
        return {**want, "matmul_ops": np.array([], dtype=str), "changed": np.array(False),
                "launches": np.array(launches), "kernels": np.array(["_gmm_kernel"] * launches),
                "kernel_modules": np.array(["__main__"] * launches), "grids": np.array([grid] * launches),
                "constexprs": np.array([f"BM={bm}, BN=32, BK=32, IEEE=True"] * launches),
                "dot_precisions": np.array(["fp32 x fp32 ieee"]), "compile_errors": np.array([], dtype=str),
                "loads_per_program": np.array(1.0), "host_ops": np.array(list(host_ops), dtype=str)}

    K._check_grouped_mm(case, record(), want)
    for rec, needle in ((record(launches=2), "launched _gmm_kernel 2 times for 2 experts: one launch"),
                        (record(grid=(10, 1, 1)), "grid of \\(10, 1, 1\\) for 2 experts"),
                        (record(bm=512, grid=(1, 2, 1)), "BM = 512"), (record(host_ops=("add",)), "on the host"),
                        (record() | {"dot_precisions": np.array([], dtype=str)}, "ran no tl.dot")):
        with pytest.raises(AssertionError, match=needle):
            K._check_grouped_mm(case, rec, want)


def test_reference_grouped_kernel_is_in_bounds_and_compiles_for_sm90():
    off = torch.tensor([0, 5, 5, 45, 48])
    x, w = torch.randn(48, 33), torch.randn(4, 33, 20)
    with K.MatmulWatch(poison=True) as watch:  # OutOfBounds would be raised inside the launch
        out = K.grouped_matmul_triton(x, off, w)
    assert torch.allclose(out.double(), K.grouped_matmul_spec(x, off, w).double(), atol=1e-4)
    summary = watch.summary()
    assert int(summary["launches"]) == 1 and not summary["compile_errors"].size, summary["compile_errors"]
    assert not watch.matmuls and list(summary["dot_precisions"]) == ["fp32 x fp32 ieee"]


def test_vision_tower_is_outside_the_decoder_count():
    v = K.vision_parameter_count()
    assert 0.40e9 < v["MoonViT"] < 0.43e9 and 0.02e9 < v["projector"] < 0.04e9
    assert K.kv_cache_elements() == {"MLA (latent + rope key)": 576, "MHA (keys + values, every head)": 5120}


def _mla_inputs(t=9, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    d, h, dn, dr, r, dv = 16, 2, 8, 4, 6, 12

    def g(*s):
        return torch.randn(*s, generator=gen, dtype=dtype) / 3

    w = {"q_nope": g(d, h, dn), "q_rope": g(d, h, dr), "dkv": g(d, r), "kr": g(d, dr), "uk": g(r, h, dn),
         "uv": g(r, h, dv), "o": g(h, dv, d)}
    return g(d), g(t, r), g(t, dr), w


def test_mla_absorbed_equals_expanded_and_keeps_the_latent_unrotated():
    x, c, kr, w = _mla_inputs()
    want, got = K.mla_naive_spec(x, c, kr, w, 100.0), K.mla_absorbed(x, c, kr, w, 100.0)
    for a, b in zip(want, got):
        assert torch.allclose(a, b, atol=1e-12)
    assert torch.equal(got[1][-1], x @ w["dkv"]) and torch.equal(got[1][:-1], c)
    with pytest.raises(ValueError):
        K.mla_absorbed(x, c, kr[:3], w)


def _per_head_expansion(x, c_cache, kr_cache, w, theta=10000.0):
    """Right values, every head's keys and values built one head at a time (the loop hides the n H d tensor)."""
    t = c_cache.shape[0]
    c = torch.cat([c_cache, (x @ w["dkv"])[None]])
    kr = torch.cat([kr_cache, K.rope_1d_spec(x @ w["kr"], t, theta).to(x.dtype)[None]])
    dn, dr = w["q_nope"].shape[2], w["q_rope"].shape[2]
    out = torch.zeros_like(x)
    for h in range(w["q_nope"].shape[1]):
        k_h, v_h = c @ w["uk"][:, h], c @ w["uv"][:, h]  # (n, dn), (n, dv)
        qr = K.rope_1d_spec(x @ w["q_rope"][:, h], t, theta).to(x.dtype)
        p = (((x @ w["q_nope"][:, h]) @ k_h.T + qr @ kr.T) / (dn + dr) ** 0.5).softmax(-1)
        out = out + (p @ v_h) @ w["o"][h]
    return out, c, kr


def test_mla_checks_refuse_the_expansions_and_the_bias_in_the_weights():
    _fails("mla_decode_step", _per_head_expansion, K.MLA_COST_CASE, "elements in all")

    def expanded(x, c, kr, w, theta=10000.0):
        return tuple(v.to(x.dtype) for v in K.mla_naive_spec(x, c, kr, w, theta))

    _fails("mla_decode_step", expanded, K.MLA_COST_CASE, "keys or values of every head")

    def bias_in_weights(x, rw, wg, wu, wd, top_k, scoring="softmax", norm_topk=True, scale=1.0, shared=None, bias=None):
        out, counts = K.moe_dispatch(x, rw + 0, wg, wu, wd, top_k, scoring, norm_topk, scale, shared, bias=bias)
        return out * 1.01, counts  # wrong weights, right choice

    _fails("moe_forward", bias_in_weights, K.BIAS_CASE, "unbiased scores")
