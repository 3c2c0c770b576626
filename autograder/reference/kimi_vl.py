"""Chapter 08: anatomy of a native-resolution MoE vision-language model (Kimi-VL), built small.

Specs: the patch merger by explicit block indexing, MoonViT's 2-D RoPE from its definition in
float64, a dense MoE (every expert on every token, float64) and per-expert matrix products. Fast:
the merger by reshape/permute, a sort-dispatched MoE, and a Triton grouped GEMM (one program per
(row tile of an expert's segment, expert, column tile)) that compiles for CUDA and runs in
Triton's interpreter on a CPU. Also a tiny random-init Kimi-VL (patch embedding, interpolated
learned positions, ViT blocks with 2-D RoPE and per-image attention from cu_seqlens, merger,
projector, one MoE decoder block) for the page's end-to-end forward.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from autograder.device import CUDA, DEVICE
import triton  # noqa: E402  (after autograder.device, always)
import triton.language as tl  # noqa: E402

from autograder.cases.kimi_vl import (  # noqa: F401  (re-exported for the page)
    BIAS_CASE, COST_CASE, MLA_COST_CASE, MLA_KEYS, SHIFT_CASE, TASKS, LatentWatch, MatmulWatch, mla_flop_budget,
    mla_largest, mla_lines, mla_sizes, mla_work_budget, moe_flop_budget, moe_largest, moe_lines, moe_products,
    moe_work_budget)
from autograder import rules
from autograder.exercise import Case, check_outputs, require
from autograder.tolerance import compare, tolerance

# ---------------------------------------------------------------- the published configuration

# Kimi-VL-A3B's config.json (text_config, a DeepSeek-V3-style "Moonlight" decoder; vision_config,
# MoonViT), as published with the model (Kimi Team, 2025, "Kimi-VL Technical Report").
TEXT_CONFIG = dict(hidden_size=2048, num_hidden_layers=27, first_k_dense_replace=1, intermediate_size=11264,
                   moe_intermediate_size=1408, n_routed_experts=64, num_experts_per_tok=6, n_shared_experts=2,
                   scoring_func="sigmoid", norm_topk_prob=True, routed_scaling_factor=2.446, topk_method="noaux_tc",
                   num_attention_heads=16, q_lora_rank=None, kv_lora_rank=512, qk_nope_head_dim=128,
                   qk_rope_head_dim=64, v_head_dim=128, vocab_size=163840, tie_word_embeddings=False)
VISION_CONFIG = dict(patch_size=14, hidden_size=1152, num_hidden_layers=27, num_attention_heads=16,
                     intermediate_size=4304, merge_kernel_size=(2, 2), init_pos_emb_height=64, init_pos_emb_width=64)


def parameter_count(tc: dict = TEXT_CONFIG) -> dict:
    """Parameters of the language decoder by part (weights only; norms are negligible), and the
    active count per token: the routed experts count top_k of n_routed_experts."""
    d, L, h = tc["hidden_size"], tc["num_hidden_layers"], tc["num_attention_heads"]
    attn = (d * h * (tc["qk_nope_head_dim"] + tc["qk_rope_head_dim"])  # q_proj (no q LoRA)
            + d * (tc["kv_lora_rank"] + tc["qk_rope_head_dim"])  # kv_a_proj_with_mqa
            + tc["kv_lora_rank"] * h * (tc["qk_nope_head_dim"] + tc["v_head_dim"])  # kv_b_proj
            + h * tc["v_head_dim"] * d)  # o_proj
    expert = 3 * d * tc["moe_intermediate_size"]  # gate, up, down (SwiGLU)
    moe_layers = L - tc["first_k_dense_replace"]
    parts = {"embedding": tc["vocab_size"] * d, "lm_head": tc["vocab_size"] * d, "attention": L * attn,
             "dense MLP": tc["first_k_dense_replace"] * 3 * d * tc["intermediate_size"],
             "router": moe_layers * tc["n_routed_experts"] * d,
             "shared experts": moe_layers * tc["n_shared_experts"] * expert,
             "routed experts": moe_layers * tc["n_routed_experts"] * expert}
    active = dict(parts, **{"routed experts": moe_layers * tc["num_experts_per_tok"] * expert})
    return {"total": parts, "active": active}


def vision_parameter_count(vc: dict = VISION_CONFIG, lm_width: int = TEXT_CONFIG["hidden_size"]) -> dict:
    """MoonViT and the projector, weights and biases, for a standard pre-norm ViT block (fused qkv,
    output projection, a two-layer MLP of width intermediate_size, two LayerNorms): the patch
    embedding, the learned position table, the blocks, the final norm; the projector's LayerNorm
    and its two Linears (merged width kh kw D -> kh kw D -> the decoder's width)."""
    d, f, p = vc["hidden_size"], vc["intermediate_size"], vc["patch_size"]
    block = (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 4 * d
    m = vc["merge_kernel_size"][0] * vc["merge_kernel_size"][1] * d
    return {"MoonViT": 3 * p * p * d + d + vc["init_pos_emb_height"] * vc["init_pos_emb_width"] * d
            + vc["num_hidden_layers"] * block + 2 * d,
            "projector": 2 * d + (m * m + m) + (m * lm_width + lm_width)}


# ---------------------------------------------------------------- exercise 1: patch merger


def _check_grid(n: int, grid_hw, k) -> list[tuple[int, int]]:
    kh, kw = k
    if kh < 1 or kw < 1:
        raise ValueError(f"merge kernel {k} must be positive")
    rows = [(int(h), int(w)) for h, w in torch.as_tensor(grid_hw).reshape(-1, 2).tolist()]
    for i, (h, w) in enumerate(rows):
        if h % kh or w % kw:
            raise ValueError(f"image {i}: grid {h} x {w} is not divisible by the kernel {kh} x {kw}")
    if sum(h * w for h, w in rows) != n:
        raise ValueError(f"the grids hold {sum(h * w for h, w in rows)} patches, x holds {n}")
    return rows


def patch_merger_spec(x: torch.Tensor, grid_hw, k=(2, 2)) -> torch.Tensor:
    """The definition, one merged token at a time: block (i, j) of image g is its patches
    (i kh + a, j kw + b), a, b row-major, concatenated along channels."""
    kh, kw = k
    rows = _check_grid(x.shape[0], grid_hw, k)
    out, start = [], 0
    for h, w in rows:
        for i in range(h // kh):
            for j in range(w // kw):
                idx = [start + (i * kh + a) * w + j * kw + b for a in range(kh) for b in range(kw)]
                out.append(torch.cat([x[p] for p in idx]))
        start += h * w
    return torch.stack(out) if out else x.new_zeros((0, kh * kw * x.shape[1]))


def merge_patches(x: torch.Tensor, grid_hw, k=(2, 2)) -> torch.Tensor:
    """The same by one reshape and permute per image: (h w, D) -> (h/kh, kh, w/kw, kw, D) ->
    (h/kh, w/kw, kh, kw, D) -> (h w / (kh kw), kh kw D)."""
    kh, kw = k
    rows = _check_grid(x.shape[0], grid_hw, k)
    d, parts, start = x.shape[1], [], 0
    for h, w in rows:
        img = x[start:start + h * w].view(h // kh, kh, w // kw, kw, d).permute(0, 2, 1, 3, 4)
        parts.append(img.reshape(-1, kh * kw * d))
        start += h * w
    return torch.cat(parts) if parts else x.new_zeros((0, kh * kw * d))


# ---------------------------------------------------------------- exercise 2: 2-D RoPE


def rope_2d_spec(grid_hw, head_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """complex64 (L, head_dim / 2): for patch (r, c) of its image, entry 2j = cis(c theta^(-4j/head_dim)),
    entry 2j + 1 = cis(r theta^(-4j/head_dim)), j < head_dim / 4; angles in float64."""
    if head_dim <= 0 or head_dim % 4:
        raise ValueError(f"head_dim must be a positive multiple of 4, got {head_dim}")
    freq = theta ** (-4.0 * torch.arange(head_dim // 4, dtype=torch.float64) / head_dim)  # (head_dim/4,)
    out = []
    for h, w in torch.as_tensor(grid_hw).reshape(-1, 2).tolist():
        r, c = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
        ang = torch.stack([c.reshape(-1, 1) * freq, r.reshape(-1, 1) * freq], dim=-1)  # (h w, head_dim/4, 2)
        out.append(torch.polar(torch.ones_like(ang), ang).reshape(h * w, head_dim // 2))
    return torch.cat(out).to(torch.complex64) if out else torch.zeros(0, head_dim // 2, dtype=torch.complex64)


def apply_rope_spec(q: torch.Tensor, k: torch.Tensor, freqs: torch.Tensor):
    """Pairs (2p, 2p+1) as complex numbers times freqs[:, p], in fp32 (fp64 for fp64), in the input dtype."""
    def rot(x):
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        z = torch.view_as_complex(x.to(work).reshape(*x.shape[:-1], x.shape[-1] // 2, 2).contiguous())  # (L, H, head_dim/2)
        f = freqs.to(z.dtype)[:, None, :]  # (L, 1, head_dim/2)
        return torch.view_as_real(z * f).reshape(x.shape).to(x.dtype)
    return rot(q), rot(k)


# ---------------------------------------------------------------- exercise 3: MoE


def _route(x, router_w, top_k: int, scoring: str, norm_topk: bool, scale: float, bias=None):
    """(experts (T, k) int64, weights (T, k) fp32): fp32 logits, scores, stable top-k (ties to the
    lower index) of scores + bias (DeepSeek-V3's selection-only bias), weights from the unbiased
    scores, optional renormalisation, times scale."""
    e = router_w.shape[0]
    if not 1 <= top_k <= e:
        raise ValueError(f"top_k must be in [1, {e}], got {top_k}")
    if scoring not in ("softmax", "sigmoid"):
        raise ValueError(f"scoring must be 'softmax' or 'sigmoid', got {scoring!r}")
    logits = x.float() @ router_w.float().T  # (T, E)
    scores = logits.softmax(-1) if scoring == "softmax" else logits.sigmoid()
    pick = scores if bias is None else scores + bias.float()  # the bias only moves the choice
    order = torch.sort(pick, dim=-1, descending=True, stable=True).indices[:, :top_k]  # (T, k)
    weights = scores.gather(1, order)
    if norm_topk:
        weights = weights / weights.sum(-1, keepdim=True)
    return order, weights * scale


def _swiglu(x, wg, wu, wd):
    return (F.silu(x @ wg) * (x @ wu)) @ wd


def moe_dense_spec(x, router_w, w_gate, w_up, w_down, top_k, scoring="softmax", norm_topk=True, scale=1.0, shared=None,
                   bias=None):
    """Every expert on every token in float64, then the routing weights mask and combine."""
    experts, weights = _route(x, router_w, top_k, scoring, norm_topk, scale, bias)
    t, e = x.shape[0], router_w.shape[0]
    gate = torch.zeros(t, e, dtype=torch.float64).scatter_(1, experts, weights.double())  # (T, E), k nonzeros per row
    xd = x.double()
    every = torch.stack([_swiglu(xd, w_gate[i].double(), w_up[i].double(), w_down[i].double()) for i in range(e)], 1)
    out = (gate[:, :, None] * every).sum(1)  # (T, D)
    if shared is not None:
        out = out + _swiglu(xd, *(w.double() for w in shared))
    return out.to(x.dtype), torch.bincount(experts.flatten(), minlength=e)


def moe_dispatch(x, router_w, w_gate, w_up, w_down, top_k, scoring="softmax", norm_topk=True, scale=1.0, shared=None,
                 grouped=None, bias=None):
    """Sort-dispatched MoE: the T k (token, expert) pairs sorted by expert, each expert's rows
    multiplied once (by `grouped(x_sorted, offsets, w)` when given, else one matmul per expert),
    then weighted and summed back with index_add."""
    experts, weights = _route(x, router_w, top_k, scoring, norm_topk, scale, bias)
    t, e = x.shape[0], router_w.shape[0]
    order = torch.argsort(experts.flatten(), stable=True)  # (T k,) pairs grouped by expert
    token = order // top_k
    counts = torch.bincount(experts.flatten(), minlength=e)
    offsets = F.pad(counts.cumsum(0), (1, 0))
    xs = x[token]  # (T k, D)

    def mm(a, w):
        if grouped is not None:
            return grouped(a, offsets, w)
        out = a.new_empty(a.shape[0], w.shape[-1])
        for i, (lo, hi) in enumerate(zip(offsets[:-1].tolist(), offsets[1:].tolist())):
            out[lo:hi] = a[lo:hi] @ w[i]
        return out

    y = mm(F.silu(mm(xs, w_gate)) * mm(xs, w_up), w_down)  # (T k, D)
    out = torch.zeros_like(x).index_add_(0, token, (y * weights.flatten()[order, None]).to(x.dtype))
    if shared is not None:
        out = out + _swiglu(x, *shared)
    return out, counts


# ---------------------------------------------------------------- exercise 4: grouped GEMM (Triton)


@triton.jit
def grouped_mm_kernel(
    X, OFF, W, O,  # x_sorted (T, K), offsets (E + 1,), w (E, K, N), out (T, N)
    N, K,  # output columns, reduction length
    stride_xt, stride_xk,  # x's strides, in elements
    stride_we, stride_wk, stride_wn,  # w's strides
    stride_ot, stride_on,  # out's strides
    BLOCK_M: tl.constexpr,  # rows of an expert's segment per program
    BLOCK_N: tl.constexpr,  # output columns per program
    BLOCK_K: tl.constexpr,  # reduction step
    PRECISION: tl.constexpr,  # tl.dot's input precision: "ieee" for fp32
):
    pid_m = tl.program_id(0)  # which row tile of the segment
    e = tl.program_id(1)  # which expert
    pid_n = tl.program_id(2)  # which column tile
    start = tl.load(OFF + e)
    rows = tl.load(OFF + e + 1) - start  # this expert's row count
    if pid_m * BLOCK_M < rows:  # tiles past the segment's end have nothing to do
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_k = tl.arange(0, BLOCK_K)
        acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            kk = k0 + offs_k
            a = tl.load(X + (start + offs_m)[:, None] * stride_xt + kk[None, :] * stride_xk,
                        mask=(offs_m[:, None] < rows) & (kk[None, :] < K), other=0.0)  # (BLOCK_M, BLOCK_K)
            b = tl.load(W + e * stride_we + kk[:, None] * stride_wk + offs_n[None, :] * stride_wn,
                        mask=(kk[:, None] < K) & (offs_n[None, :] < N), other=0.0)  # (BLOCK_K, BLOCK_N)
            acc += tl.dot(a, b, input_precision=PRECISION)
        tl.store(O + (start + offs_m)[:, None] * stride_ot + offs_n[None, :] * stride_on, acc.to(O.dtype.element_ty),
                 mask=(offs_m[:, None] < rows) & (offs_n[None, :] < N))


def _check_grouped(x, offsets, w) -> list[int]:
    if x.dim() != 2 or w.dim() != 3:
        raise ValueError(f"x_sorted must be (T, K) and w (E, K, N), got {tuple(x.shape)} and {tuple(w.shape)}")
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w's K = {w.shape[1]} differs from x_sorted's K = {x.shape[1]}")
    off = torch.as_tensor(offsets).reshape(-1).tolist()
    if len(off) != w.shape[0] + 1 or off[0] != 0 or off[-1] != x.shape[0] or any(b < a for a, b in zip(off, off[1:])):
        raise ValueError(f"expert_offsets must be E + 1 = {w.shape[0] + 1} non-decreasing integers from 0 to T = "
                         f"{x.shape[0]}")
    return off


def grouped_matmul_spec(x, offsets, w) -> torch.Tensor:
    """One matmul per expert on its rows, in float64, cast to x's dtype."""
    off = _check_grouped(x, offsets, w)
    out = torch.zeros(x.shape[0], w.shape[2], dtype=torch.float64)
    for i, (lo, hi) in enumerate(zip(off[:-1], off[1:])):
        out[lo:hi] = x[lo:hi].double().cpu() @ w[i].double().cpu()
    return out.to(x.dtype)


def _gmm_blocks(dtype) -> dict:
    if not CUDA:
        return dict(BLOCK_M=32, BLOCK_N=32, BLOCK_K=32)  # big blocks in the interpreter
    return dict(BLOCK_M=64, BLOCK_N=64, BLOCK_K=32, num_warps=4, num_stages=3)


def grouped_matmul_triton(x, offsets, w) -> torch.Tensor:
    """(T, N): rows off[e]..off[e+1] of x times w[e], accumulated in fp32, in x's dtype."""
    off = _check_grouped(x, offsets, w)
    t, k = x.shape
    n = w.shape[2]
    out = torch.zeros((t, n), dtype=x.dtype, device=x.device)
    if t == 0 or k == 0 or n == 0:
        return out
    cfg = _gmm_blocks(x.dtype)
    longest = max(b - a for a, b in zip(off[:-1], off[1:]))
    offs = torch.as_tensor(off, dtype=torch.int64, device=x.device)
    grid = (triton.cdiv(longest, cfg["BLOCK_M"]), w.shape[0], triton.cdiv(n, cfg["BLOCK_N"]))
    grouped_mm_kernel[grid](x, offs, w, out, n, k, *x.stride(), *w.stride(), *out.stride(),
                            PRECISION="ieee" if x.dtype == torch.float32 else "tf32", **cfg)
    return out


def per_expert_loop(x, offsets, w) -> torch.Tensor:
    """The baseline a grouped GEMM replaces: one torch matmul launch per expert."""
    off = torch.as_tensor(offsets).tolist()
    out = x.new_empty(x.shape[0], w.shape[2])
    for i, (lo, hi) in enumerate(zip(off[:-1], off[1:])):
        out[lo:hi] = x[lo:hi] @ w[i]
    return out


# ---------------------------------------------------------------- exercise 5: MLA decode step


def rope_1d_spec(x: torch.Tensor, pos: int, theta: float = 10000.0) -> torch.Tensor:
    """float64: pairs (2p, 2p+1) of the last dim as complex numbers times cis(pos theta^(-2p/d))."""
    d = x.shape[-1]
    f = theta ** (-2.0 * torch.arange(d // 2, dtype=torch.float64) / d)  # (d/2,)
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(z * torch.polar(torch.ones_like(f), pos * f)).reshape(x.shape)


def _check_mla(x, c_cache, kr_cache, w) -> dict:
    if c_cache.shape[0] != kr_cache.shape[0]:
        raise ValueError(f"c_cache holds {c_cache.shape[0]} positions, kr_cache {kr_cache.shape[0]}")
    return mla_sizes(w)


def mla_naive_spec(x, c_cache, kr_cache, w: dict, theta: float = 10000.0):
    """One decode step of MLA in float64 the expanded way (DeepSeek-V2, section 2.1): grow the
    caches by the new token's latent and rotated rope key, rebuild every head's keys and values
    from the latents, attend, project. Returns (out (D,), c (T+1, r), kr (T+1, dr))."""
    z = _check_mla(x, c_cache, kr_cache, w)
    t = c_cache.shape[0]  # the new token's position
    W = {k: w[k].double().cpu() for k in MLA_KEYS}
    xd = x.double().cpu()
    c = torch.cat([c_cache.double().cpu(), (xd @ W["dkv"])[None]])  # (n, r)
    kr = torch.cat([kr_cache.double().cpu(), rope_1d_spec(xd @ W["kr"], t, theta)[None]])  # (n, dr)
    qn = torch.einsum("d,dhk->hk", xd, W["q_nope"])  # (H, dn)
    qr = rope_1d_spec(torch.einsum("d,dhk->hk", xd, W["q_rope"]), t, theta)  # (H, dr)
    k_nope = torch.einsum("nr,rhk->nhk", c, W["uk"])  # (n, H, dn): the expansion MLA avoids
    v = torch.einsum("nr,rhv->nhv", c, W["uv"])  # (n, H, dv)
    s = (torch.einsum("hk,nhk->hn", qn, k_nope) + qr @ kr.T) / math.sqrt(z["dn"] + z["dr"])  # (H, n)
    o = torch.einsum("hn,nhv->hv", s.softmax(-1), v)  # (H, dv)
    return torch.einsum("hv,hvd->d", o, W["o"]), c, kr


def mla_absorbed(x, c_cache, kr_cache, w: dict, theta: float = 10000.0):
    """The same step with W_UK folded into the query and W_UV applied after the latent-space
    weighted sum: nothing of length T is wider than the latent, in x's dtype."""
    z = _check_mla(x, c_cache, kr_cache, w)
    t = c_cache.shape[0]
    c = torch.cat([c_cache, (x @ w["dkv"])[None]])  # (n, r)
    kr = torch.cat([kr_cache, rope_1d_spec(x @ w["kr"], t, theta).to(x.dtype)[None]])  # (n, dr)
    qn = torch.einsum("d,dhk->hk", x, w["q_nope"])  # (H, dn)
    qr = rope_1d_spec(torch.einsum("d,dhk->hk", x, w["q_rope"]), t, theta).to(x.dtype)  # (H, dr)
    q_lat = torch.einsum("hk,rhk->hr", qn, w["uk"])  # (H, r): W_UK absorbed into the query
    s = (q_lat @ c.T + qr @ kr.T) / math.sqrt(z["dn"] + z["dr"])  # (H, n)
    o_lat = s.softmax(-1) @ c  # (H, r): the values' weighted sum, still in the latent space
    o = torch.einsum("hr,rhv->hv", o_lat, w["uv"])  # (H, dv): W_UV after the sum
    return torch.einsum("hv,hvd->d", o, w["o"]), c, kr


def kv_cache_elements(tc: dict = TEXT_CONFIG) -> dict:
    """Cached numbers per token per layer: MLA's latent plus its one rope key, against the
    per-head keys and values multi-head attention would keep with the same head sizes."""
    h = tc["num_attention_heads"]
    return {"MLA (latent + rope key)": tc["kv_lora_rank"] + tc["qk_rope_head_dim"],
            "MHA (keys + values, every head)": h * (tc["qk_nope_head_dim"] + tc["qk_rope_head_dim"] + tc["v_head_dim"])}


# ---------------------------------------------------------------- a tiny Kimi-VL


def tiny_config() -> dict:
    return dict(patch=4, vit_dim=32, vit_heads=2, vit_layers=2, pos_h=6, pos_w=6, merge=(2, 2), lm_dim=48,
                lm_heads=4, experts=8, top_k=2, expert_hidden=32, shared=True, scale=2.446, vocab=100)


def tiny_weights(seed: int = 0, cfg: dict | None = None) -> dict:
    """Random-init weights of the tiny model, the same for the same seed on every machine."""
    cfg = cfg or tiny_config()
    gen = torch.Generator().manual_seed(seed)

    def r(*shape, fan=None):
        return torch.randn(*shape, generator=gen) / math.sqrt(fan or shape[0])

    dv, dl, p, m = cfg["vit_dim"], cfg["lm_dim"], cfg["patch"], cfg["merge"][0] * cfg["merge"][1]
    wts = {"patch": r(3 * p * p, dv), "pos": r(cfg["pos_h"], cfg["pos_w"], dv, fan=1) * 0.1,
           "vit": [{"qkv": r(dv, 3 * dv), "o": r(dv, dv), "fc1": r(dv, 4 * dv), "fc2": r(4 * dv, dv)}
                   for _ in range(cfg["vit_layers"])],
           "proj1": r(m * dv, m * dv), "proj2": r(m * dv, dl), "embed": r(cfg["vocab"], dl, fan=1),
           "attn": {"qkv": r(dl, 3 * dl), "o": r(dl, dl)}, "router": r(cfg["experts"], dl, fan=dl),
           "w_gate": r(cfg["experts"], dl, cfg["expert_hidden"], fan=dl),
           "w_up": r(cfg["experts"], dl, cfg["expert_hidden"], fan=dl),
           "w_down": r(cfg["experts"], cfg["expert_hidden"], dl, fan=cfg["expert_hidden"]),
           "shared": (r(dl, cfg["expert_hidden"]), r(dl, cfg["expert_hidden"]), r(cfg["expert_hidden"], dl))}
    return wts


def to_patches(image: torch.Tensor, p: int) -> torch.Tensor:
    """(3, H, W) with H, W multiples of p -> (H/p W/p, 3 p p) patches in row-major order."""
    c, h, w = image.shape
    return image.view(c, h // p, p, w // p, p).permute(1, 3, 0, 2, 4).reshape(-1, c * p * p)


def interpolated_positions(table: torch.Tensor, grid_hw) -> torch.Tensor:
    """The learned (H0, W0, D) position table resized bicubically to each image's (h, w), packed."""
    parts = []
    for h, w in torch.as_tensor(grid_hw).tolist():
        img = F.interpolate(table.permute(2, 0, 1)[None], size=(h, w), mode="bicubic", align_corners=False)
        parts.append(img[0].permute(1, 2, 0).reshape(h * w, -1))
    return torch.cat(parts)


def varlen_attention_loop(q, k, v, cu_seqlens, causal: bool = False):
    """Attention of packed sequences one at a time (chapter 07's idea): q, k, v (L, H, d)."""
    out = torch.empty_like(q)
    bounds = cu_seqlens.tolist()
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            qs, ks, vs = (u[a:b].transpose(0, 1) for u in (q, k, v))  # (H, n, d)
            out[a:b] = F.scaled_dot_product_attention(qs, ks, vs, is_causal=causal).transpose(0, 1)
    return out


def tiny_forward(images: list, text_ids: torch.Tensor, wts: dict, cfg: dict | None = None, log=None):
    """The tiny model end to end: images (3, H, W) -> packed patches -> ViT (2-D RoPE, per-image
    attention) -> merger -> projector -> [image tokens; text] -> one decoder block with an MoE.
    `log(stage, tensor)` sees every stage. Returns (hidden (N, lm_dim), expert counts (E,))."""
    cfg = cfg or tiny_config()
    log = log or (lambda *a: None)
    p, dv, nh = cfg["patch"], cfg["vit_dim"], cfg["vit_heads"]
    grid = torch.tensor([[im.shape[1] // p, im.shape[2] // p] for im in images])  # (n, 2)
    x = torch.cat([to_patches(im, p) for im in images])  # (L, 3 p p)
    log("pixel patches, packed", x)
    cu = F.pad((grid[:, 0] * grid[:, 1]).cumsum(0), (1, 0)).to(torch.int32)
    x = x @ wts["patch"] + interpolated_positions(wts["pos"], grid)  # (L, dv)
    log("patch embedding + interpolated positions", x)
    freqs = rope_2d_spec(grid, dv // nh)
    for blk in wts["vit"]:
        q, k, v = (F.layer_norm(x, (dv,)) @ blk["qkv"]).view(-1, 3, nh, dv // nh).unbind(1)  # (L, H, d) each
        q, k = apply_rope_spec(q, k, freqs)
        x = x + varlen_attention_loop(q, k, v, cu).reshape(-1, dv) @ blk["o"]
        x = x + F.gelu(F.layer_norm(x, (dv,)) @ blk["fc1"]) @ blk["fc2"]
    x = F.layer_norm(x, (dv,))
    log("ViT output", x)
    x = merge_patches(F.layer_norm(x, (dv,)), grid, cfg["merge"])  # (L/4, 4 dv)
    log("pixel shuffle 2 x 2", x)
    img_tokens = F.gelu(x @ wts["proj1"]) @ wts["proj2"]  # (L/4, lm_dim)
    log("projector output (image tokens)", img_tokens)
    h = torch.cat([img_tokens, wts["embed"][text_ids]])  # (N, lm_dim)
    log("decoder input [image tokens; text tokens]", h)
    dl, lh = cfg["lm_dim"], cfg["lm_heads"]
    q, k, v = (F.layer_norm(h, (dl,)) @ wts["attn"]["qkv"]).view(-1, 3, lh, dl // lh).unbind(1)
    h = h + varlen_attention_loop(q, k, v, torch.tensor([0, h.shape[0]], dtype=torch.int32), causal=True).reshape(-1, dl) @ wts["attn"]["o"]
    moe_out, counts = moe_dispatch(F.layer_norm(h, (dl,)), wts["router"], wts["w_gate"], wts["w_up"], wts["w_down"],
                                   cfg["top_k"], "sigmoid", True, cfg["scale"], wts["shared"])
    h = h + moe_out
    log("decoder block output (attention + MoE)", h)
    return h, counts


# ---------------------------------------------------------------- references and checks (the grader's process)


def _check_unchanged(got, what: str) -> None:
    if bool(got.get("changed", False)):
        raise AssertionError(f"{what} modified its inputs; build new tensors instead")


def _check_raised(got, hint: str) -> None:
    require(got, {"raised": None})
    if str(got["raised"]) != "ValueError":
        what = "returned" if str(got["raised"]).startswith("returned") else f"raised {got['raised']}"
        raise AssertionError(f"{what} instead of raising ValueError; {hint}")


def _ref_merger(case: Case):
    x, grid, k = case.args
    if "raise" in case.kind:
        return {"raised": np.array("ValueError")}
    out = patch_merger_spec(torch.from_numpy(x), torch.from_numpy(grid), k)
    return {"out": out.numpy(), "out_dtype": np.array(str(x.dtype))}


def _check_merger(case: Case, got, want):
    _check_unchanged(got, "patch_merger")
    if "raise" in case.kind:
        return _check_raised(got, "check every h % kh and w % kw, and that the grids' h * w add up to L")
    require(got, want)
    if str(got["out_dtype"]) != str(want["out_dtype"]):
        raise AssertionError(f"the output has dtype {got['out_dtype']}, expected x's dtype {want['out_dtype']}")
    try:
        compare(got["out"], want["out"], "merged tokens", exact=True)
    except AssertionError as e:
        raise AssertionError(f"{e}; per image, merged tokens in row-major order of the (h/kh, w/kw) grid, each the "
                             "kh x kw block's patches in row-major order, each patch's D channels kept together") from None


def _freqs_f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).astype(np.float32)


def _ref_rope(case: Case):
    grid, head_dim, theta, q_k, *extra = case.args
    if "raise" in case.kind:
        return {"raised": np.array("ValueError")}
    freqs = rope_2d_spec(torch.from_numpy(grid), head_dim, theta)
    out = {"freqs": torch.view_as_real(freqs.to(torch.complex128)).numpy(), "freqs_dtype": np.array("complex64")}
    if case.kind == SHIFT_CASE:
        out["shift_gap"] = np.array(0.0)
    elif q_k is not None:
        q, k = (torch.from_numpy(a) for a in q_k)
        if extra:
            q, k = q.to(getattr(torch, extra[0])), k.to(getattr(torch, extra[0]))
        qo, ko = apply_rope_spec(q, k, freqs)
        dt = str(q.dtype).replace("torch.", "")
        out.update({"q": (qo.float() if extra else qo).numpy(), "k": (ko.float() if extra else ko).numpy(),
                    "q_dtype": np.array(dt), "k_dtype": np.array(dt)})
    return out


def _check_rope(case: Case, got, want):
    _check_unchanged(got, "rope_2d / apply_rope_2d")
    if "raise" in case.kind:
        return _check_raised(got, "head_dim must be a positive multiple of 4")
    require(got, want)
    if str(got["freqs_dtype"]) != "complex64":
        raise AssertionError(f"rope_2d returned {got['freqs_dtype']}; return complex64 (angles in float64, then cast)")
    try:
        compare(_freqs_f32(got["freqs"]), _freqs_f32(want["freqs"]), "rope_2d's rotations")
    except AssertionError as e:
        raise AssertionError(f"{e}; entry 2j rotates by the patch's column times theta^(-4j/head_dim), entry 2j+1 by "
                             "its row, and (row, column) restart at (0, 0) for every image") from None
    if "shift_gap" in want:
        gap = float(got["shift_gap"])
        if not gap < 1e-4:
            raise AssertionError(f"a score q(r, c).k(r', c') changed by {gap:.2g} when both patches moved by the same "
                                 "(drow, dcol): each rotation angle must be a position times a frequency")
        return
    if "q" in want:
        for key in ("q_dtype", "k_dtype"):
            if str(got[key]) != str(want[key]):
                raise AssertionError(f"apply_rope_2d returned {key[0]} as {got[key]}, expected its input's {want[key]}")
        dtype = case.args[4] if len(case.args) > 4 else None
        for key in ("q", "k"):
            if dtype:
                atol, rtol = tolerance(dtype)
                g, w = np.asarray(got[key], np.float64), np.asarray(want[key], np.float64)
                if g.shape != w.shape or not np.all(np.abs(g - w) <= atol + rtol * np.abs(w)):
                    raise AssertionError(f"{key}: wrong values for {dtype} inputs: rotate in float32, then cast back")
            else:
                try:
                    compare(got[key], want[key], f"rotated {key}")
                except AssertionError as e:
                    raise AssertionError(f"{e}; pairs (2p, 2p+1) form one complex number multiplied by freqs[:, p] "
                                         "(work in fp32, fp64 for fp64 inputs)") from None


def _ref_moe(case: Case):
    x, router, wg, wu, wd, top_k, scoring, norm_topk, scale, shared, bias = case.args
    if "raise" in case.kind:
        return {"raised": np.array("ValueError")}
    t = [torch.from_numpy(a) for a in (x, router, wg, wu, wd)]
    sh = tuple(torch.from_numpy(a) for a in shared) if shared is not None else None
    b = None if bias is None else torch.from_numpy(bias)
    out, counts = moe_dense_spec(*t, top_k, scoring, norm_topk, scale, sh, bias=b)
    return {"out": out.numpy(), "out_dtype": np.array(str(x.dtype)), "counts": counts.numpy(),
            "counts_dtype": np.array("int64")}


def _check_moe(case: Case, got, want):
    _check_unchanged(got, "moe_forward")
    if "raise" in case.kind:
        return _check_raised(got, "top_k must be in [1, E] and scoring 'softmax' or 'sigmoid'")
    require(got, want)
    for key in ("out_dtype", "counts_dtype"):
        if str(got[key]) != str(want[key]):
            raise AssertionError(f"{key.split('_')[0]} has dtype {got[key]}, expected {want[key]}")
    biased = case.kind.startswith(BIAS_CASE)
    try:
        compare(got["counts"], want["counts"], "counts")
    except AssertionError as e:
        extra = "; the bias is added to the scores for choosing the top_k" if biased else ""
        raise AssertionError(f"{e}; counts[e] is the number of tokens routed to expert e (top_k largest scores, ties "
                             f"to the lower expert index{extra})") from None
    g, w = got["out"], want["out"]
    if str(want["out_dtype"]) == "float64":  # the routing weights are float32: float32's tolerance
        g, w = np.asarray(g, np.float64).astype(np.float32), np.asarray(w).astype(np.float32)
    try:
        compare(g, w, "out")
    except AssertionError as e:
        if biased:
            raise AssertionError(f"{e}; with a bias, the experts are chosen by score + bias but weighted by the "
                                 "unbiased scores (renormalised over the chosen ones when norm_topk): the bias "
                                 "balances the load without changing what the chosen experts contribute, see "
                                 "section 5") from None
        raise AssertionError(f"{e}; scores are softmax over all E logits (or sigmoid), the top_k chosen, divided by "
                             "their sum when norm_topk, times scale (routed experts only), plus the shared expert") from None
    if case.kind == COST_CASE:
        _check_moe_cost(case, got)


DISPATCH = "run each expert only on the tokens routed to it (sort or group the (token, expert) pairs), see section 5"


def _check_moe_cost(case: Case, got) -> None:
    """The dispatch rules at T = 32, D = 16, F = 32, E = 8, top_k = 2: matmul FLOPs, the largest
    intermediate, the elements written, the number of products, the Python lines."""
    x, router, wg = case.args[:3]
    (t, d), f, e, k = x.shape, wg.shape[2], router.shape[0], case.args[5]
    sizes = f"T = {t}, D = {d}, F = {f}, E = {e}, top_k = {k}"
    if "lines" in got and int(got["lines"]) > moe_lines(t, e):
        raise AssertionError(f"stopped after {moe_lines(t, e)} Python lines at {sizes} (40 (T + E) + 500): loop over "
                             "the experts, and let torch ops do the work on each expert's rows; no Python loop over "
                             "tokens and features")
    budget = moe_flop_budget(t, d, f, e, k)
    if int(got["flops"]) > budget:
        raise AssertionError(f"ran {int(got['flops'])} matmul FLOPs at {sizes}, over the budget {budget}: {DISPATCH}")
    if int(got["largest"]) >= moe_largest(t, f, e):
        raise AssertionError(f"a torch op wrote {int(got['largest'])} elements at {sizes}: T E F = "
                             f"{moe_largest(t, f, e)} or more (every expert's hidden layer for every token): {DISPATCH}")
    if int(got["work"]) > moe_work_budget(t, d, f, e, k):
        raise AssertionError(f"the torch ops wrote {int(got['work'])} elements in all at {sizes}, over "
                             f"6 (T E + T k (D + F) + E T D) = {moe_work_budget(t, d, f, e, k)}: an elementwise pass "
                             f"over every expert and token is the dense MoE again; {DISPATCH}")
    if int(got["products"]) > moe_products(e):
        raise AssertionError(f"ran {int(got['products'])} matrix products for E = {e} experts, more than "
                             f"3 E + 4 = {moe_products(e)}: gather each expert's tokens into one block and run its "
                             "three products once on the block (not one product per token), see section 5")


def _ref_grouped(case: Case):
    x, off, w = case.args
    if "raise" in case.kind:
        return {"raised": np.array("ValueError")}
    out = grouped_matmul_spec(torch.from_numpy(x), torch.from_numpy(off), torch.from_numpy(w))
    return {"out": out.numpy(), "out_dtype": np.array(str(x.dtype))}


def _check_grouped_mm(case: Case, got, want):
    _check_unchanged(got, "grouped_matmul")
    if "raise" in case.kind:
        return _check_raised(got, "expert_offsets must be E + 1 non-decreasing integers from 0 to T, and w (E, K, N) "
                                  "must match x_sorted's K")
    require(got, want)
    if str(got["out_dtype"]) != str(want["out_dtype"]):
        raise AssertionError(f"the output has dtype {got['out_dtype']}, expected x_sorted's {want['out_dtype']}")
    ops = [str(o) for o in np.atleast_1d(got.get("matmul_ops", np.array([], dtype=str)))]
    if ops:
        raise AssertionError(f"ran the torch op(s) {', '.join(ops)}: {TASKS['grouped_matmul'].why}")
    try:
        check_outputs(case, {"out": got["out"]}, want={"out": want["out"]})
    except AssertionError as e:
        raise AssertionError(f"{e}; mask the rows past each expert's segment and the K tail (K need not be a "
                             "multiple of BLOCK_K)") from None
    x, off, w = case.args
    if x.shape[0] and x.shape[1] and w.shape[2]:
        _check_grouped_launch(case, got)
    else:  # nothing to multiply: a launch is allowed, not required
        rules.kernel_rules(got, launches=(0, 1), host=True, see="section 7")


GROUPED_BLOCKS = 128  # rows, columns and K per tile: a segment of 300 rows takes three row tiles or more


def _check_grouped_launch(case: Case, got) -> None:
    """One launch of the notebook's kernel over every expert, on a (row tile, expert, column tile) grid."""
    x, off, w = case.args
    n_experts, n = w.shape[0], w.shape[2]
    launches = int(got["launches"])
    names = [str(k) for k in np.atleast_1d(got["kernels"])]
    if launches == 0:
        raise AssertionError("launched no Triton kernel; the products must run inside your @triton.jit kernel")
    if launches > 1:
        name = names[0] if len(set(names)) == 1 else "kernels"
        raise AssertionError(f"launched {name} {launches} times for {n_experts} experts: one launch must cover every "
                             "expert through expert_offsets (a grid axis over the experts), see section 7")
    rules.kernel_rules(got, launches=1, host=True, precision="ieee", see="section 7",
                       block_limits={"BM": GROUPED_BLOCKS, "BN": GROUPED_BLOCKS, "BK": GROUPED_BLOCKS})
    if float(got["loads_per_program"]) >= 0 and not np.atleast_1d(got["dot_precisions"]).size:  # interpreted
        raise AssertionError(f"{names[0]} ran no tl.dot: each program's tile product is a tl.dot of a row tile and "
                             "a weight tile, accumulated over K, see section 7")
    grid = [int(g) for g in np.asarray(got["grids"])[0]]
    consts = rules.constexprs(got, 0)
    longest = int(np.diff(off).max())
    bm, bn = (int(consts[b]) if consts.get(b, "").isdigit() else None for b in ("BM", "BN"))
    want = [-(-longest // bm) if bm else grid[0], n_experts, -(-n // bn) if bn else grid[2]]
    if grid != want:
        raise AssertionError(f"launched {names[0]} on a grid of {tuple(grid)} for {n_experts} experts: one program "
                             "per (row tile of the longest segment, expert, column tile), a grid of "
                             "(cdiv(max rows, BM), E, cdiv(N, BN)), see section 7")


def _ref_mla(case: Case):
    x, c, kr, w, theta = case.args
    if "raise" in case.kind:
        return {"raised": np.array("ValueError")}
    out, c_new, kr_new = mla_naive_spec(torch.from_numpy(x), torch.from_numpy(c), torch.from_numpy(kr),
                                        {k: torch.from_numpy(v) for k, v in w.items()}, theta)
    dt = getattr(torch, str(x.dtype))
    return {"out": out.to(dt).numpy(), "out_dtype": np.array(str(x.dtype)), "c_cache": c_new.to(dt).numpy(),
            "kr_cache": kr_new.to(dt).numpy()}


MLA_SEE = "see section 8"


def _check_mla_step(case: Case, got, want):
    _check_unchanged(got, "mla_decode_step")
    if "raise" in case.kind:
        return _check_raised(got, "c_cache and kr_cache must hold the same number of positions")
    if case.kind == MLA_COST_CASE:  # the cost first: an expansion is named before its values are compared
        _check_mla_cost(case, got)
    require(got, want)
    if str(got["out_dtype"]) != str(want["out_dtype"]):
        raise AssertionError(f"out has dtype {got['out_dtype']}, expected x's dtype {want['out_dtype']}")
    try:
        compare(got["c_cache"], want["c_cache"], "the returned c_cache")
    except AssertionError as e:
        raise AssertionError(f"{e}; the new latent is x @ w['dkv'], appended unrotated after the cached ones: RoPE "
                             f"never touches the compressed part, {MLA_SEE}") from None
    try:
        compare(got["kr_cache"], want["kr_cache"], "the returned kr_cache")
    except AssertionError as e:
        raise AssertionError(f"{e}; the new rope key is x @ w['kr'] rotated at position T (pairs (2p, 2p+1), angle "
                             f"T theta^(-2p/d_rope)), appended after the cached ones, {MLA_SEE}") from None
    try:
        compare(got["out"], want["out"], "out")
    except AssertionError as e:
        raise AssertionError(f"{e}; per head, the score of position j is (q_nope W_UK^T) . c_j + rot(q_rope) . "
                             f"kr_j over sqrt(d_nope + d_rope), with RoPE on the rope parts only; the softmax-weighted "
                             f"sum of the latents goes through W_UV, then W_O: W_UK folds into the query, W_UV into "
                             f"the output, {MLA_SEE}") from None


def _check_mla_cost(case: Case, got) -> None:
    x, c, kr, w, theta = case.args
    z, n = mla_sizes(w), c.shape[0] + 1
    sizes = f"n = {n} positions, H = {z['H']}, d_nope = {z['dn']}, d_v = {z['dv']}, latent r = {z['r']}"
    if "lines" in got and int(got["lines"]) > mla_lines(z):
        raise AssertionError(f"stopped after {mla_lines(z)} Python lines at {sizes}: no Python loop over the cached "
                             f"positions; torch ops over the whole cache at once, {MLA_SEE}")
    if int(got["with_n"]) >= mla_largest(n, z):
        raise AssertionError(f"a torch op wrote {int(got['with_n'])} elements at {sizes}: the keys or values of every "
                             f"head over the whole cache (n H d = {mla_largest(n, z)} or more). Attend in the latent "
                             f"space: fold W_UK into the query and apply W_UV after the weighted sum, {MLA_SEE}")
    if int(got["work"]) > mla_work_budget(n, z):
        raise AssertionError(f"the torch ops wrote {int(got['work'])} elements in all at {sizes}, over the absorbed "
                             f"step's {mla_work_budget(n, z)}: per-head keys or values of the cache were built (one "
                             f"head or one position at a time counts too). Fold W_UK into the query and W_UV into "
                             f"the output, {MLA_SEE}")
    if int(got["flops"]) > mla_flop_budget(n, z):
        raise AssertionError(f"ran {int(got['flops'])} matmul FLOPs at {sizes}, over 1.5 x the absorbed step's "
                             f"{mla_flop_budget(n, z) * 2 // 3}: multiply the query by W_UK (not W_UK by other weight "
                             f"matrices, nor W_UK by the cache), {MLA_SEE}")


EXERCISES = {
    "patch_merger": TASKS["patch_merger"].graded(_ref_merger, _check_merger),
    "rope_2d": TASKS["rope_2d"].graded(_ref_rope, _check_rope),
    "moe_forward": TASKS["moe_forward"].graded(_ref_moe, _check_moe),
    "grouped_matmul": TASKS["grouped_matmul"].graded(_ref_grouped, _check_grouped_mm),
    "mla_decode_step": TASKS["mla_decode_step"].graded(_ref_mla, _check_mla_step),
}


# ---------------------------------------------------------------- benchmark and GPU checks


def _routed_rows(rng, t: int, e: int, top_k: int) -> list[int]:
    """Rows per expert of T k (token, expert) pairs, a little unbalanced (Dirichlet shares)."""
    return [int(s) for s in rng.multinomial(t * top_k, rng.dirichlet(np.full(e, 2.0)))]


def bench(timer, cuda: bool) -> dict:
    """The grouped GEMM against a loop of per-expert torch matmuls on one MoE projection: T tokens,
    top-6 of 64 experts, K = 2048, N = 1408 (Kimi-VL's expert up-projection) in bf16 on a GPU;
    small fp32 sizes in the interpreter."""
    dtype = torch.bfloat16 if cuda else torch.float32
    e, top_k, k, n = (64, 6, 2048, 1408) if cuda else (8, 2, 32, 32)
    tokens = [512, 2048, 8192, 32768] if cuda else [32, 64]
    rng = np.random.default_rng(0)
    rows = {"tokens": tokens, "dtype": str(dtype).replace("torch.", ""), "experts": e, "top_k": top_k, "K": k, "N": n,
            "grouped_ms": [], "loop_ms": [], "grouped_tflops": [], "loop_tflops": []}
    for t in tokens:
        sizes = _routed_rows(rng, t, e, top_k)
        off = torch.tensor([0, *np.cumsum(sizes).tolist()], device=DEVICE)
        x = torch.randn(t * top_k, k, device=DEVICE, dtype=dtype)
        w = torch.randn(e, k, n, device=DEVICE, dtype=dtype) / math.sqrt(k)
        flops = 2 * t * top_k * k * n
        g = timer(lambda: grouped_matmul_triton(x, off, w))
        lp = timer(lambda: per_expert_loop(x, off, w))
        rows["grouped_ms"].append(g * 1e3)
        rows["loop_ms"].append(lp * 1e3)
        rows["grouped_tflops"].append(flops / g / 1e12)
        rows["loop_tflops"].append(flops / lp / 1e12)
    return rows


def gpu_checks(small: bool) -> dict:
    """The grouped GEMM at GPU sizes (or small ones in the interpreter) against per-expert matmuls."""

    def at(t: int, e: int, k: int, n: int, dtype):
        def check():
            rng = np.random.default_rng(t)
            sizes = _routed_rows(rng, t, e, 1)
            off = torch.tensor([0, *np.cumsum(sizes).tolist()])
            x = torch.randn(t, k, dtype=torch.float32).to(dtype)
            w = (torch.randn(e, k, n) / math.sqrt(k)).to(dtype)
            got = grouped_matmul_triton(x.to(DEVICE), off.to(DEVICE), w.to(DEVICE)).float().cpu()
            want = grouped_matmul_spec(x, off, w).float()
            atol, rtol = tolerance(str(dtype).replace("torch.", ""))
            assert torch.allclose(got, want, atol=atol * 10, rtol=rtol * 10), \
                f"grouped_matmul_triton differs from per-expert matmuls at T={t}, E={e}, K={k}, N={n}, {dtype}"
        return check

    shapes = [(70, 3, 40, 24)] if small else [(20000, 64, 2048, 1408), (4099, 8, 1000, 77)]
    dtypes = [torch.float32] if small else [torch.float32, torch.bfloat16]
    return {f"grouped_matmul_triton T={t} E={e} K={k} N={n} {str(dt).split('.')[-1]}": at(t, e, k, n, dt)
            for t, e, k, n in shapes for dt in dtypes}
