"""Chapter 08's cases: what the learner's Kimi-VL pieces are run on, and how (the learner's kernel).

Besides the case generators and runs, this module holds `MatmulWatch`, a TorchDispatchMode that
counts the matrix-multiply FLOPs and names the matrix-multiply ops run outside Triton launches
(the MoE cost rule and the grouped GEMM's "no torch matmul" rule), and the FLOP budget of the
dispatch rule.
"""
import numpy as np
import torch

from autograder.device import CUDA, DEVICE

from autograder.exercise import NO_NUMPY, Case, Task, dtype_name, raised, to_numpy
from autograder.watch import HostOps, count_lines, tensors

# ---------------------------------------------------------------- watching matrix products

MATMUL_OPS = {"mm", "bmm", "addmm", "baddbmm", "addbmm", "matmul", "mv", "dot", "vdot", "einsum", "linear",
              "addmv", "addr", "outer", "tensordot", "_grouped_mm", "_scaled_mm", "inner", "chain_matmul"}


def _flops(name: str, args) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of one aten matrix op, from its operands' shapes."""
    ts = [t for t in args if isinstance(t, torch.Tensor)]
    if name in ("mm", "bmm", "addmm", "baddbmm", "addbmm"):
        a, b = ts[-2], ts[-1]
        return 2 * a.numel() * b.shape[-1]
    if name in ("mv", "addmv"):
        return 2 * ts[-2].numel()
    if name in ("dot", "vdot"):
        return 2 * ts[0].numel()
    return 2 * max((t.numel() for t in ts), default=0)  # anything else: at least its largest operand


class MatmulWatch(HostOps):
    """Records, outside Triton launches: `flops`, the FLOPs of matrix-multiply ops (aten level:
    F.linear and @ arrive as mm / addmm / bmm), `matmuls`, their names, `products`, how many of
    them ran, `largest`, the most elements one computing op (not a view, not an allocation) wrote,
    `work`, the elements all computing ops wrote together (a dense pass written with broadcasting,
    or a loop of multiply-adds, runs no matmul but writes every expert's intermediate), `ops`, the
    host ops that computed anything (HostOps: allocations, views and copies are free), and the
    launches (`triton`, `launches`). `poison=True` fills fresh `torch.empty*` with NaN."""

    def __init__(self, poison: bool = False):
        super().__init__(poison=poison)
        self.flops, self.matmuls, self.products, self.largest, self.work = 0, set(), 0, 0, 0

    def on_op(self, name, func, args, kwargs, out):
        super().on_op(name, func, args, kwargs, out)
        if name.lstrip("_") in _MATMUL_NAMES:
            self.matmuls.add(name)
            self.products += 1
            self.flops += _flops(name, list(tensors(args)))
        if not func.is_view and name not in _FREE:
            written = [t.numel() for t in tensors(out)]
            self.largest = max([self.largest] + written)
            self.work += sum(written)


_MATMUL_NAMES = {m.lstrip("_") for m in MATMUL_OPS}
_FREE = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like",
         "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like", "new_full", "scalar_tensor", "detach",
         "alias", "lift_fresh", "lift_fresh_copy", "_local_scalar_dense", "item",
         "sym_size", "sym_stride", "sym_numel", "is_nonzero"}  # allocations and reads: no work


def moe_flop_budget(t: int, d: int, f: int, e: int, top_k: int) -> int:
    """1.5 x (router 2 T D E + routed experts 6 T k D F): what a sort-dispatched MoE needs, with room."""
    return int(1.5 * (2 * t * d * e + 6 * t * top_k * d * f))


def moe_work_budget(t: int, d: int, f: int, e: int, top_k: int) -> int:
    """6 x (T E + T k (D + F) + E T D): elements a dispatched MoE's torch ops write (router scores,
    each routed pair's hidden and output rows, one scatter-add into (T, D) per expert), with room.
    Every expert on every token writes T E (3F + D) or more, elementwise."""
    return 6 * (t * e + t * top_k * (d + f) + e * t * d)


def moe_largest(t: int, f: int, e: int) -> int:
    """No tensor of T E F elements: every expert's hidden layer for every token."""
    return t * e * f


def moe_products(e: int) -> int:
    """Matrix products of a dispatched call: 3 per expert (gate, up, down on its block of rows),
    one for the router and three for the shared expert."""
    return 3 * e + 4


def moe_lines(t: int, e: int) -> int:
    """Python lines moe_forward may run: a loop over the experts, not over tokens times features."""
    return 40 * (t + e) + 500


COST_CASE = "the matmul FLOPs of one call stay under 1.5 x (2TDE + 6TkDF)"  # the case whose check reads them
BIAS_CASE = "an expert bias for selection only"  # cases whose kind starts with it pass bias=

# ---------------------------------------------------------------- helpers


def _grid(rows) -> np.ndarray:
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def _changed(before, after) -> np.ndarray:
    return np.array(not all(torch.equal(a, b) for a, b in zip(before, after)))


# ---------------------------------------------------------------- exercise 1: patch merger


def _merger_cases(rng) -> list[Case]:
    def x(grid, d, dtype=np.float32):
        n = int(np.prod(grid, axis=1).sum()) if len(grid) else 0
        return rng.standard_normal((n, d)).astype(dtype)

    g1, g2, g3 = _grid([[4, 6], [2, 2], [6, 4]]), _grid([[4, 6], [8, 3]]), _grid([[3, 5], [2, 4]])
    return [
        Case("one square image, 2 x 2", (x(_grid([[4, 4]]), 3), _grid([[4, 4]]), (2, 2))),
        Case("three packed images of different shapes, 2 x 2", (x(g1, 5), g1, (2, 2))),
        Case("non-square kernel (2, 3)", (x(_grid([[4, 6]]), 2), _grid([[4, 6]]), (2, 3))),
        Case("non-square kernel (2, 1) on two images", (x(g2, 3), g2, (2, 1))),
        Case("kernel (1, 1) keeps every patch", (x(g3, 4), g3, (1, 1))),
        Case("random packed images, 2 x 2 (float64)",
             (x(g := _grid(rng.integers(1, 5, (3, 2)) * 2), 4, np.float64), g, (2, 2))),
        Case("an empty grid (0, 2) with L = 0", (np.zeros((0, 6), np.float32), _grid([]), (2, 2))),
        Case("h is not a multiple of kh (raise ValueError)", (x(_grid([[3, 4]]), 2), _grid([[3, 4]]), (2, 2))),
        Case("w is not a multiple of kw (raise ValueError)", (x(_grid([[4, 4]]), 2), _grid([[4, 4]]), (2, 3))),
        Case("sum of h * w differs from L (raise ValueError)", (x(_grid([[4, 4]]), 2)[:-2], _grid([[4, 4]]), (2, 2))),
    ]


def _run_merger(fn, case: Case):
    x, grid, k = case.args
    xt, gt = torch.from_numpy(x.copy()).to(DEVICE), torch.from_numpy(grid.copy())
    before = [xt.clone(), gt.clone()]
    if "raise" in case.kind:
        return {"raised": raised(lambda: fn(xt, gt, k)), "changed": _changed(before, [xt, gt])}
    out = fn(xt, gt, k)
    return {"out": to_numpy(out), "out_dtype": dtype_name(out), "changed": _changed(before, [xt, gt])}


# ---------------------------------------------------------------- exercise 2: 2-D RoPE

SHIFT_CASE = "scores unchanged when both patches shift by the same (drow, dcol)"


def _rope_cases(rng) -> list[Case]:
    def qk(n, h, d, dtype=np.float32):
        return tuple(rng.standard_normal((n, h, d)).astype(dtype) for _ in range(2))

    g1, g2 = _grid([[3, 5], [2, 7]]), _grid([[4, 2], [1, 6], [2, 3]])
    return [
        Case("two packed images of different widths, head_dim 8", (g1, 8, 10000.0, qk(29, 2, 8))),
        Case("three packed images, head_dim 16, theta 100", (g2, 16, 100.0, qk(20, 1, 16))),
        Case("one image, head_dim 4", (_grid([[5, 3]]), 4, 10000.0, qk(15, 3, 4))),
        Case("float64 q and k keep their dtype", (g1, 8, 10000.0, qk(29, 2, 8, np.float64))),
        Case("bfloat16 q and k keep their dtype", (g1, 8, 10000.0, qk(29, 2, 8), "bfloat16")),
        Case(SHIFT_CASE, (_grid([[6, 7]]), 8, 10000.0, None, (int(rng.integers(1, 3)), int(rng.integers(1, 4))))),
        Case("an empty grid", (_grid([]), 8, 10000.0, qk(0, 2, 8))),
        Case("head_dim 6 is not a multiple of 4 (raise ValueError)", (g1, 6, 10000.0, None)),
        Case("head_dim 0 (raise ValueError)", (g1, 0, 10000.0, None)),
    ]


def _complex(t) -> np.ndarray:
    """(L, P) complex -> (L, P, 2) float64 real and imaginary parts."""
    return torch.view_as_real(t.detach().cpu().to(torch.complex128)).numpy()


def _run_rope(fn, case: Case):
    grid, head_dim, theta, q_k, *extra = case.args
    apply = fn.__globals__.get("apply_rope_2d")
    if apply is None:
        raise NameError("apply_rope_2d is not defined beside rope_2d (write both in the same cell)")
    gt = torch.from_numpy(grid.copy())
    if "raise" in case.kind:
        return {"raised": raised(lambda: fn(gt, head_dim, theta)), "changed": _changed([gt], [torch.from_numpy(grid)])}
    freqs = fn(gt, head_dim, theta)
    out = {"freqs": _complex(freqs), "freqs_dtype": dtype_name(freqs), "changed": _changed([gt], [torch.from_numpy(grid)])}
    if case.kind == SHIFT_CASE:
        dr, dc = extra[0]
        h, w = int(grid[0, 0]), int(grid[0, 1])
        gen = torch.Generator().manual_seed(0)
        q = torch.randn(1, 1, head_dim, generator=gen, dtype=torch.float64).expand(h * w, 1, head_dim).contiguous()
        k = torch.randn(1, 1, head_dim, generator=gen, dtype=torch.float64).expand(h * w, 1, head_dim).contiguous()
        qr, kr = apply(q, k, freqs.to(DEVICE) if freqs.device != torch.device(DEVICE) else freqs)
        s = (qr[:, 0].double().cpu() @ kr[:, 0].double().cpu().T).view(h, w, h, w)  # s[r, c, r', c']
        a, b = s[:h - dr, :w - dc, :h - dr, :w - dc], s[dr:, dc:, dr:, dc:]
        out["shift_gap"] = np.array(float((a - b).abs().max()))
        return out
    if q_k is not None:
        q, k = (torch.from_numpy(a.copy()).to(DEVICE) for a in q_k)
        if extra:
            q, k = q.to(getattr(torch, extra[0])), k.to(getattr(torch, extra[0]))
        before = [q.clone(), k.clone()]
        qo, ko = apply(q, k, freqs.to(q.device))
        out.update({"q": to_numpy(qo.float() if extra else qo), "k": to_numpy(ko.float() if extra else ko),
                    "q_dtype": dtype_name(qo), "k_dtype": dtype_name(ko), "changed": np.array(bool(out["changed"]) or
                                                                                      bool(_changed(before, [q, k])))})
    return out


# ---------------------------------------------------------------- exercise 3: MoE forward


def _moe_args(rng, t, d, f, e, top_k, dtype=np.float32, shared=False, router_scale=1.0, bias=None, **kw):
    x = rng.standard_normal((t, d)).astype(dtype)
    router = (rng.standard_normal((e, d)) * router_scale).astype(dtype)
    ws = [(rng.standard_normal(s) / np.sqrt(s[-2])).astype(dtype) for s in ((e, d, f), (e, d, f), (e, f, d))]
    sh = tuple((rng.standard_normal(s) / np.sqrt(s[0])).astype(dtype) for s in ((d, f), (d, f), (f, d))) if shared else None
    b = None if bias is None else (rng.uniform(-1, 1, e) * bias).astype(np.float32)  # (E,) selection-only bias
    return (x, router, *ws, top_k, kw.get("scoring", "softmax"), kw.get("norm_topk", True), kw.get("scale", 1.0), sh, b)


def _moe_cases(rng) -> list[Case]:
    starved = _moe_args(rng, 12, 8, 16, 4, 2)
    x = np.abs(starved[0]) + 0.1  # every token: logits (-, 0, +, 0), so experts 2 then 1; expert 0 never
    router = np.stack([-np.ones(8), np.zeros(8), np.ones(8), np.zeros(8)]).astype(np.float32)
    starved = (x.astype(np.float32), router, *starved[2:])
    skewed = _moe_args(rng, 24, 8, 12, 8, 2, scoring="sigmoid", scale=2.446, bias=0.6)
    return [
        Case("softmax scores, norm_topk on", _moe_args(rng, 20, 8, 16, 6, 2)),
        Case("softmax scores, norm_topk off", _moe_args(rng, 20, 8, 16, 6, 2, norm_topk=False)),
        Case("sigmoid scores, norm_topk on, scale 2.5", _moe_args(rng, 24, 8, 12, 8, 3, scoring="sigmoid", scale=2.5)),
        Case("sigmoid scores, norm_topk off", _moe_args(rng, 16, 8, 12, 5, 2, scoring="sigmoid", norm_topk=False)),
        Case("a shared expert and scale 1.7", _moe_args(rng, 18, 8, 16, 6, 2, shared=True, scale=1.7)),
        Case("expert 0 gets no token, expert 2 gets them all", starved),
        Case(BIAS_CASE + ", sigmoid, norm_topk on, scale 2.446", skewed),
        Case(BIAS_CASE + ", softmax, norm_topk off", _moe_args(rng, 20, 8, 16, 6, 2, norm_topk=False, bias=0.3)),
        Case("top_k = E", _moe_args(rng, 10, 8, 8, 4, 4, norm_topk=False)),
        Case("exact ties: a zero router (ties go to the lower expert index)",
             _moe_args(rng, 9, 8, 8, 6, 2, router_scale=0.0, norm_topk=False)),
        Case("float64 inputs", _moe_args(rng, 15, 8, 16, 6, 2, dtype=np.float64, shared=True)),
        Case("T = 0", _moe_args(rng, 0, 8, 16, 4, 2)),
        Case(COST_CASE, _moe_args(rng, 32, 16, 32, 8, 2)),
        Case("top_k = 0 (raise ValueError)", _moe_args(rng, 4, 8, 8, 4, 0)),
        Case("top_k > E (raise ValueError)", _moe_args(rng, 4, 8, 8, 4, 5)),
        Case("an unknown scoring (raise ValueError)", _moe_args(rng, 4, 8, 8, 4, 2, scoring="relu")),
    ]


def _run_moe(fn, case: Case):
    x, router, wg, wu, wd, top_k, scoring, norm_topk, scale, shared, bias = case.args
    ts = [torch.from_numpy(a.copy()).to(DEVICE) for a in (x, router, wg, wu, wd)]
    sh = tuple(torch.from_numpy(a.copy()).to(DEVICE) for a in shared) if shared is not None else None
    bt = None if bias is None else torch.from_numpy(bias.copy()).to(DEVICE)
    inputs = ts + list(sh or ()) + ([bt] if bt is not None else [])
    before = [t.clone() for t in inputs]

    def call():
        if bt is None:  # the call without the keyword: a bias-free moe_forward still runs these cases
            return fn(*ts, top_k, scoring=scoring, norm_topk=norm_topk, scale=scale, shared=sh)
        return fn(*ts, top_k, scoring=scoring, norm_topk=norm_topk, scale=scale, shared=sh, bias=bt)

    if "raise" in case.kind:
        return {"raised": raised(call), "changed": _changed(before, inputs)}
    cost = {}
    with MatmulWatch() as watch:
        if case.kind == COST_CASE:  # the Python lines run too, stopped at the budget
            result, lines = count_lines(fn, (*ts, top_k, scoring, norm_topk, scale, sh),
                                        moe_lines(x.shape[0], router.shape[0]))
            cost["lines"] = np.array(lines)
            if result is None:
                return cost | {"changed": _changed(before, inputs)}
        else:
            result = call()
    out, counts = result
    cost |= {"flops": np.array(watch.flops), "products": np.array(watch.products), "largest": np.array(watch.largest),
             "work": np.array(watch.work)}
    return {"out": to_numpy(out), "out_dtype": dtype_name(out), "counts": to_numpy(counts), "counts_dtype": dtype_name(counts),
            **cost, "changed": _changed(before, inputs)}


# ---------------------------------------------------------------- exercise 5: MLA decode step

MLA_KEYS = ("q_nope", "q_rope", "dkv", "kr", "uk", "uv", "o")  # the weights dict of mla_decode_step


class LatentWatch(MatmulWatch):
    """MatmulWatch (matmul FLOPs, the largest op output, the elements all ops wrote) plus
    `with_n`: the most elements one computing op wrote in a tensor that has a dimension of `n`,
    the number of cached positions attended (the per-head keys or values of the whole cache would
    be one such tensor of n H d elements)."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.with_n = n, 0

    def on_op(self, name, func, args, kwargs, out):
        super().on_op(name, func, args, kwargs, out)
        if not func.is_view and name not in _FREE:
            for t in tensors(out):
                if self.n in t.shape:
                    self.with_n = max(self.with_n, t.numel())


def mla_sizes(w: dict) -> dict:
    """D, H, d_nope, d_rope, r (latent width), d_v from the weights' shapes."""
    d, h, dn = w["q_nope"].shape
    return dict(D=d, H=h, dn=dn, dr=w["q_rope"].shape[2], r=w["dkv"].shape[1], dv=w["uv"].shape[2])


def mla_flop_budget(n: int, z: dict) -> int:
    """1.5 x the absorbed step's matmul FLOPs over n positions: the projections of the new token
    2D(H(dn + dr) + r + dr), W_UK folded into the query 2H dn r, scores against the latents and the
    rope keys 2nH(r + dr), the latent-space values 2nHr, W_UV 2H r dv and W_O 2H dv D."""
    D, H, dn, dr, r, dv = (z[k] for k in ("D", "H", "dn", "dr", "r", "dv"))
    return int(1.5 * (2 * D * (H * (dn + dr) + r + dr) + 2 * H * dn * r + 2 * n * H * (2 * r + dr)
                      + 2 * H * r * dv + 2 * H * dv * D))


def mla_work_budget(n: int, z: dict) -> int:
    """Elements all ops of an absorbed step may write: 3 n (r + dr + 4H) (the grown caches, scores,
    softmax, a few elementwise passes over them) plus 10 x the per-token vectors. Expanding the
    keys or values of every head writes n H dn or n H dv more."""
    H, dn, dr, r, dv, D = (z[k] for k in ("H", "dn", "dr", "r", "dv", "D"))
    return 3 * n * (r + dr + 4 * H) + 10 * (H * (dn + dr + 2 * r + dv) + r + dr + D)


def mla_largest(n: int, z: dict) -> int:
    """No op writes a tensor of n H min(dn, dv) elements: one head dimension of keys or values for
    every head over every cached position."""
    return n * z["H"] * min(z["dn"], z["dv"])


def mla_lines(z: dict) -> int:
    """Python lines mla_decode_step may run: a loop over heads at most, never over positions."""
    return 20 * z["H"] + 200


MLA_COST_CASE = "the absorbed step's cost over a cache of 255 tokens"


def _mla_args(rng, t, d, h, dn, dr, r, dv, theta=10000.0, dtype=np.float32):
    def g(*shape, fan):
        return (rng.standard_normal(shape) / np.sqrt(fan)).astype(dtype)

    w = {"q_nope": g(d, h, dn, fan=d), "q_rope": g(d, h, dr, fan=d), "dkv": g(d, r, fan=d), "kr": g(d, dr, fan=d),
         "uk": g(r, h, dn, fan=r), "uv": g(r, h, dv, fan=r), "o": g(h, dv, d, fan=h * dv)}
    return g(d, fan=1), g(t, r, fan=1), g(t, dr, fan=1), w, theta


def _mla_cases(rng) -> list[Case]:
    bad = _mla_args(rng, 5, 16, 2, 8, 4, 8, 8)
    bad = (bad[0], bad[1], bad[2][:4], *bad[3:])
    return [
        Case("an empty cache: the first token attends to itself", _mla_args(rng, 0, 16, 2, 8, 4, 8, 8)),
        Case("a cache of 9 tokens, dn = dv", _mla_args(rng, 9, 24, 3, 8, 4, 12, 8)),
        Case("d_nope 8, d_v 12, d_rope 8, latent 6", _mla_args(rng, 6, 16, 2, 8, 8, 6, 12)),
        Case("theta 100 at position 40", _mla_args(rng, 40, 16, 2, 8, 4, 8, 8, theta=100.0)),
        Case("float64 inputs", _mla_args(rng, 11, 16, 2, 8, 4, 8, 8, dtype=np.float64)),
        Case(MLA_COST_CASE, _mla_args(rng, 255, 32, 4, 64, 8, 16, 64)),
        Case("c_cache and kr_cache hold different lengths (raise ValueError)", bad),
    ]


def _run_mla(fn, case: Case):
    x, c, kr, w, theta = case.args
    xt, ct, kt = (torch.from_numpy(a.copy()).to(DEVICE) for a in (x, c, kr))
    wt = {k: torch.from_numpy(w[k].copy()).to(DEVICE) for k in MLA_KEYS}
    inputs = [xt, ct, kt, *wt.values()]
    before = [t.clone() for t in inputs]
    if "raise" in case.kind:
        return {"raised": raised(lambda: fn(xt, ct, kt, wt, theta)), "changed": _changed(before, inputs)}
    cost = {}
    with LatentWatch(c.shape[0] + 1) as watch:
        if case.kind == MLA_COST_CASE:  # the Python lines run too, stopped at the budget
            result, lines = count_lines(fn, (xt, ct, kt, wt, theta), mla_lines(mla_sizes(w)))
            cost["lines"] = np.array(lines)
            if result is None:
                return cost | {"changed": _changed(before, inputs)}
        else:
            result = fn(xt, ct, kt, wt, theta)
    out, c_new, kr_new = result
    cost |= {"flops": np.array(watch.flops), "work": np.array(watch.work), "with_n": np.array(watch.with_n)}
    return {"out": to_numpy(out), "out_dtype": dtype_name(out), "c_cache": to_numpy(c_new),
            "kr_cache": to_numpy(kr_new), **cost, "changed": _changed(before, inputs)}


# ---------------------------------------------------------------- exercise 4: grouped matmul


def _grouped_args(rng, sizes, k, n, dtype=np.float32):
    t = int(sum(sizes))
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return (rng.standard_normal((t, k)).astype(dtype), off, rng.standard_normal((len(sizes), k, n)).astype(dtype))


def _grouped_cases(rng) -> list[Case]:
    cases = [
        Case("K = 7 (under 16), segments not block multiples", _grouped_args(rng, [5, 11, 3], 7, 9)),
        Case("K = 33, N = 20", _grouped_args(rng, [17, 4, 9, 2], 33, 20)),
        Case("K = 50, an empty expert before a used one", _grouped_args(rng, [0, 13, 0, 21], 50, 12)),
        Case("one expert holds every row", _grouped_args(rng, [40], 16, 16)),
        Case("300 rows in one expert's segment (more than one row tile of at most 128)",
             _grouped_args(rng, [300, 7], 16, 16)),
        Case("random segment sizes", _grouped_args(rng, [int(s) for s in rng.integers(0, 20, 5)], 24, 10)),
        Case("T = 0 returns (0, N)", _grouped_args(rng, [0, 0, 0], 8, 5)),
        Case("K = 0 gives zeros", _grouped_args(rng, [3, 2], 0, 4)),
        Case("offsets do not start at 0 (raise ValueError)", (np.zeros((5, 4), np.float32), np.array([1, 3, 5]),
                                                             np.zeros((2, 4, 3), np.float32))),
        Case("offsets do not end at T (raise ValueError)", (np.zeros((5, 4), np.float32), np.array([0, 3, 4]),
                                                           np.zeros((2, 4, 3), np.float32))),
        Case("offsets decrease (raise ValueError)", (np.zeros((5, 4), np.float32), np.array([0, 4, 2, 5]),
                                                    np.zeros((3, 4, 3), np.float32))),
        Case("offsets have E + 2 entries (raise ValueError)", (np.zeros((5, 4), np.float32), np.array([0, 2, 3, 5]),
                                                              np.zeros((2, 4, 3), np.float32))),
        Case("w's K differs from x's (raise ValueError)", (np.zeros((5, 4), np.float32), np.array([0, 2, 5]),
                                                          np.zeros((2, 3, 3), np.float32))),
    ]
    if CUDA:
        cases.append(Case("T = 3000 over 8 experts, K = 96, N = 80", _grouped_args(
            rng, [int(s) for s in rng.multinomial(3000, np.ones(8) / 8)], 96, 80)))
    return cases


def _run_grouped(fn, case: Case):
    x, off, w = case.args
    xt, ot, wt = (torch.from_numpy(a.copy()).to(DEVICE) for a in (x, off, w))
    before = [xt.clone(), ot.clone(), wt.clone()]
    if "raise" in case.kind:
        return {"raised": raised(lambda: fn(xt, ot, wt)), "changed": _changed(before, [xt, ot, wt])}
    with MatmulWatch(poison=True) as watch:
        out = fn(xt, ot, wt)
    return {"out": to_numpy(out), "out_dtype": dtype_name(out), **watch.summary(),
            "matmul_ops": np.array(sorted(watch.matmuls), dtype=str), "changed": _changed(before, [xt, ot, wt])}


# ---------------------------------------------------------------- tasks

NO_TORCH_MATMUL = ("the products must run inside your Triton kernel with tl.dot, one tile of an expert's rows at a "
                   "time: no torch matrix product (matmul, @, mm, bmm, einsum, linear) may run in the call, and no "
                   "NumPy.")

TASKS = {
    "patch_merger": Task("patch_merger", _merger_cases, _run_merger),
    "rope_2d": Task("rope_2d", _rope_cases, _run_rope),
    "moe_forward": Task("moe_forward", _moe_cases, _run_moe, forbidden=NO_NUMPY - {".tolist"},
                        why="the routing and the experts run in torch ops, where the grader counts their work: "
                            "no NumPy."),
    "grouped_matmul": Task(
        "grouped_matmul", _grouped_cases, _run_grouped,
        forbidden=frozenset({"matmul", "bmm", "einsum", "baddbmm", "mm", "linear", "tensordot", "_grouped_mm", "@",
                             "torch.func"}) | (NO_NUMPY - {".tolist"}),
        why=NO_TORCH_MATMUL),
    "mla_decode_step": Task("mla_decode_step", _mla_cases, _run_mla, forbidden=NO_NUMPY,
                            why="the step runs in torch ops, where the grader counts what it writes: no NumPy."),
}
