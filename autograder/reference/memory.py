"""Chapter 05: where the memory of training goes.

Specs: the byte counts of model states under ZeRO (Rajbhandari et al. 2020) and of activations
(Korthikanti et al. 2022) written as the papers state them, with exact integers; the parameter
count of a Llama-style decoder as `sum(p.numel())` of the model itself, built on the meta device
(no memory, so Llama-2-7B is instant); one AdamW step as `torch.optim.AdamW` on the mean gradient.
Implementations: the closed-form parameter count and ZeRO simulated in one process (flat padded
buffers, reduce-scatter, per-rank AdamW on a shard, all-gather), which the chapter runs as black
boxes for its figures.
"""
import math
import numbers

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.cases.memory import LLAMA_2_7B, LLAMA_3_8B, STATE_BYTES_KEYS, TASKS, random_config  # noqa: F401
from autograder.device import DEVICE
from autograder.exercise import Case, require
from autograder.tolerance import compare

RECOMPUTE = ("none", "selective", "full")

# ---------------------------------------------------------------- validation


def whole(x, what: str) -> int:
    """x as a Python int: ints, NumPy integers and integral floats pass; bools and fractions do not."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise ValueError(f"{what} must be a whole number, got {x!r}")
    if isinstance(x, numbers.Integral):
        return int(x)
    if not math.isfinite(x) or x != int(x):
        raise ValueError(f"{what} must be a whole number, got {x!r}")
    return int(x)


def count(x, what: str, least: int = 0) -> int:
    n = whole(x, what)
    if n < least:
        raise ValueError(f"{what} must be >= {least}, got {n}")
    return n


# ---------------------------------------------------------------- 1. model states (ZeRO)


def model_state_bytes(n_params, zero_stage, dp, optimizer_bytes=12, offload=False) -> dict:
    """Bytes of model states on one GPU: 2 per weight, 2 per gradient, K per element of optimizer
    state (fp32 master + Adam m and v: K = 12); ZeRO stage s splits the first s of (optimizer
    state, gradients, weights) into dp padded shards of ceil(n / dp) elements; offload moves the
    optimizer state to the CPU."""
    if isinstance(zero_stage, (bool, np.bool_)) or not isinstance(zero_stage, numbers.Integral) \
            or not 0 <= zero_stage <= 3:
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage!r}")
    n = count(n_params, "n_params")
    dp = count(dp, "dp", least=1)
    k = count(optimizer_bytes, "optimizer_bytes")
    shard = -(-n // dp)  # ceil(n / dp): every rank holds an equal, zero-padded shard
    held = lambda stage: shard if zero_stage >= stage else n  # noqa: E731  (elements held per rank)
    out = {"params": 2 * held(3), "grads": 2 * held(2), "optimizer": 0 if offload else k * held(1)}
    out["total"] = out["params"] + out["grads"] + out["optimizer"]
    return out


# ---------------------------------------------------------------- 2. activations (Korthikanti et al.)


def activation_bytes(seq, batch, hidden, heads, layers, recompute="none") -> int:
    """Bytes of activations a Transformer of `layers` layers keeps for backward, 16-bit, per
    Korthikanti et al. (2022): per layer 34 s b h + 5 a s^2 b without recomputation, 34 s b h with
    selective recomputation of attention's softmax and dropout, 2 s b h (the layer's input) with full."""
    s, b, h, a, n = (count(v, name) for v, name in zip((seq, batch, hidden, heads, layers),
                                                        ("seq", "batch", "hidden", "heads", "layers")))
    if not isinstance(recompute, str) or recompute not in RECOMPUTE:
        raise ValueError(f"recompute must be one of {RECOMPUTE}, got {recompute!r}")
    per_layer = {"none": 34 * s * b * h + 5 * a * s * s * b, "selective": 34 * s * b * h, "full": 2 * s * b * h}
    return n * per_layer[recompute]


def logits_bytes(seq, batch, vocab, bytes_per_element=4) -> int:
    """The output logits, s b V elements (often fp32 for the loss)."""
    return seq * batch * vocab * bytes_per_element


# ---------------------------------------------------------------- 3. parameters of a Llama-style decoder


def _check_config(cfg: dict) -> dict:
    c = {k: count(cfg[k], k) for k in ("vocab_size", "hidden_size", "intermediate_size", "num_layers")}
    for k in ("num_heads", "num_kv_heads"):
        c[k] = count(cfg[k], k, least=1)
    if c["hidden_size"] % c["num_heads"]:
        raise ValueError(f"hidden_size {c['hidden_size']} is not a multiple of num_heads {c['num_heads']}")
    if c["num_heads"] % c["num_kv_heads"]:
        raise ValueError(f"num_heads {c['num_heads']} is not a multiple of num_kv_heads {c['num_kv_heads']}")
    c["tie_embeddings"] = bool(cfg.get("tie_embeddings", False))
    return c


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5, **factory):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, **factory))

    def forward(self, x):
        return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps).to(x.dtype) * self.weight


class Block(nn.Module):
    """One Llama decoder layer: RMSNorm, GQA attention (no biases), RMSNorm, SwiGLU MLP."""

    def __init__(self, c, **factory):
        super().__init__()
        h, i, a, kv = c["hidden_size"], c["intermediate_size"], c["num_heads"], c["num_kv_heads"]
        self.a, self.kv, self.d = a, kv, h // a
        self.attn_norm, self.mlp_norm = RMSNorm(h, **factory), RMSNorm(h, **factory)
        self.q = nn.Linear(h, a * self.d, bias=False, **factory)
        self.k = nn.Linear(h, kv * self.d, bias=False, **factory)
        self.v = nn.Linear(h, kv * self.d, bias=False, **factory)
        self.o = nn.Linear(a * self.d, h, bias=False, **factory)
        self.gate = nn.Linear(h, i, bias=False, **factory)
        self.up = nn.Linear(h, i, bias=False, **factory)
        self.down = nn.Linear(i, h, bias=False, **factory)

    def forward(self, x):  # (B, N, h)
        B, N, _ = x.shape
        y = self.attn_norm(x)
        q = self.q(y).view(B, N, self.a, self.d).transpose(1, 2)  # (B, a, N, d)
        k = self.k(y).view(B, N, self.kv, self.d).transpose(1, 2)  # (B, kv, N, d)
        v = self.v(y).view(B, N, self.kv, self.d).transpose(1, 2)
        k, v = (t.repeat_interleave(self.a // self.kv, dim=1) for t in (k, v))  # (B, a, N, d)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, a, N, d)
        x = x + self.o(att.transpose(1, 2).reshape(B, N, -1))
        y = self.mlp_norm(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


class LlamaStyle(nn.Module):
    """A Llama-style decoder built from the exercise's configuration keys (random init)."""

    def __init__(self, cfg: dict, device=None, dtype=None):
        super().__init__()
        c = _check_config(cfg)
        factory = dict(device=device, dtype=dtype)
        self.embed = nn.Embedding(c["vocab_size"], c["hidden_size"], **factory)
        self.layers = nn.ModuleList(Block(c, **factory) for _ in range(c["num_layers"]))
        self.norm = RMSNorm(c["hidden_size"], **factory)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False, **factory)
        if c["tie_embeddings"]:
            self.lm_head.weight = self.embed.weight

    def forward(self, tokens):  # (B, N) -> logits (B, N, V)
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))


def count_params_by_model(cfg: dict) -> int:
    """The spec: build the model on the meta device (shapes, no storage) and add up numel()."""
    return sum(p.numel() for p in LlamaStyle(cfg, device="meta").parameters())  # parameters() dedups tied


def count_params(cfg: dict) -> int:
    """The closed form: per layer 2 h^2 (q, o) + 2 h kv d (k, v) + 3 h I (SwiGLU) + 2 h (norms);
    then V h (embeddings) + h (final norm) + V h again when the head is untied."""
    c = _check_config(cfg)
    V, h, I, L = c["vocab_size"], c["hidden_size"], c["intermediate_size"], c["num_layers"]
    kv_dim = c["num_kv_heads"] * (h // c["num_heads"])
    layer = 2 * h * h + 2 * h * kv_dim + 3 * h * I + 2 * h
    return L * layer + V * h + h + (0 if c["tie_embeddings"] else V * h)


# ---------------------------------------------------------------- 4. ZeRO, simulated in one process


def flat_padded(tensors, world: int) -> torch.Tensor:
    """Concatenate flattened tensors and zero-pad to world * ceil(P / world) elements."""
    flat = torch.cat([t.reshape(-1) for t in tensors]) if tensors else torch.zeros(0)
    shard = -(-flat.numel() // world)
    return torch.cat([flat, flat.new_zeros(world * shard - flat.numel())])


def _check_zero_args(params, grads, states, world, stage, step):
    if isinstance(stage, bool) or stage not in (1, 2, 3):
        raise ValueError(f"stage must be 1, 2 or 3, got {stage!r}")
    if isinstance(world, bool) or not isinstance(world, numbers.Integral) or world < 1:
        raise ValueError(f"world must be an int >= 1, got {world!r}")
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 1:
        raise ValueError(f"step counts from 1, got {step!r}")
    if len(grads) != world:
        raise ValueError(f"grads holds {len(grads)} ranks' gradients for world {world}")
    for rank in grads:
        if len(rank) != len(params) or any(g.shape != p.shape for g, p in zip(rank, params)):
            raise ValueError("every rank's gradients must have the shapes of params")
    shard = -(-sum(p.numel() for p in params) // world)
    if states is not None:
        ok = len(states) == world and all(
            set(s) >= {"exp_avg", "exp_avg_sq"} and all(s[k].shape == (shard,) for k in ("exp_avg", "exp_avg_sq"))
            for s in states)
        if not ok:
            raise ValueError(f"states must be {world} dicts of exp_avg, exp_avg_sq of {shard} elements each")
    return shard


def zero_step(params, grads, states, world, stage, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, step=1):
    """One AdamW step under ZeRO stage 1-3 over `world` simulated ranks (see the exercise)."""
    shard = _check_zero_args(params, grads, states, world, stage, step)
    b1, b2 = betas
    flat_p = flat_padded([p.detach() for p in params], world)  # (world * S,) every rank's copy
    flat_g = torch.stack([flat_padded([g.detach() for g in rank], world) for rank in grads])  # (world, world * S)
    new_flat, new_states = torch.empty_like(flat_p), []
    for r in range(world):
        sl = slice(r * shard, (r + 1) * shard)
        g = flat_g[:, sl].sum(0) / world  # reduce-scatter: rank r receives the sum of its shard, then averages
        m = torch.zeros_like(g) if states is None else states[r]["exp_avg"]
        v = torch.zeros_like(g) if states is None else states[r]["exp_avg_sq"]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = flat_p[sl] * (1 - lr * weight_decay)  # decoupled weight decay (AdamW)
        denom = (v / (1 - b2**step)).sqrt() + eps
        new_flat[sl] = p - lr * (m / (1 - b1**step)) / denom
        new_states.append({"exp_avg": m, "exp_avg_sq": v})
    # all-gather: every rank now holds new_flat; cut it back into the parameters' shapes
    sizes = [p.numel() for p in params]
    new_params = [t.reshape(p.shape).clone() for t, p in zip(new_flat[:sum(sizes)].split(sizes), params)]
    P, elem = sum(sizes), (params[0].element_size() if params else 4)
    held_p, held_g = (shard if stage == 3 else P), (shard if stage >= 2 else P)
    return new_params, new_states, [elem * (held_p + held_g + 2 * shard)] * world


def adamw_reference(params, grads_per_step, world, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """The spec: torch.optim.AdamW on the mean of the ranks' gradients, step after step.
    Returns, per step, the parameters and the optimizer state laid out as ZeRO's (world, 2, S)."""
    ps = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt = torch.optim.AdamW(ps, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    out = []
    for grads in grads_per_step:
        for i, p in enumerate(ps):
            p.grad = torch.stack([rank[i] for rank in grads]).mean(0)
        opt.step()
        m = flat_padded([opt.state[p]["exp_avg"] for p in ps], world).view(world, -1)
        v = flat_padded([opt.state[p]["exp_avg_sq"] for p in ps], world).view(world, -1)
        out.append(([p.detach().clone() for p in ps], torch.stack([m, v], dim=1)))  # (world, 2, S)
    return out


# ---------------------------------------------------------------- references and checks (the grader's process)


def _check_raised(got, want) -> bool:
    """True when the case is an error case (and the learner raised the right error)."""
    if "raised" not in want:
        return False
    require(got, want)
    raised = str(got["raised"])
    if raised.startswith("returned"):
        raise AssertionError(f"{raised.replace('returned', 'returns a')} instead of raising ValueError")
    if raised != "ValueError":
        raise AssertionError(f"raises {raised}; raise ValueError for arguments outside the exercise's domain")
    return True


def _check_integer(got, want, key: str, hint: str):
    if str(got[f"{key}_type"]) != "int":
        raise AssertionError(f"{key!r} is a {got[f'{key}_type']}, not a Python int (use exact integer arithmetic)")
    if str(got[key]) != str(want[key]):
        raise AssertionError(f"{key!r} is wrong: {hint}")


def _ref_state(case: Case):
    args, kwargs = case.args
    if "raise" in case.kind:
        return {"raised": np.array("ValueError")}
    want = model_state_bytes(*args, **kwargs)
    out = {"keys": np.array(sorted(STATE_BYTES_KEYS))}
    for key in STATE_BYTES_KEYS:
        out.update({key: np.array(str(want[key])), f"{key}_type": np.array("int")})
    return out


STATE_HINTS = {
    "params": "2 bytes per weight, split into dp padded shards of ceil(n / dp) elements only at stage 3",
    "grads": "2 bytes per gradient (16-bit), split into dp padded shards only from stage 2 on",
    "optimizer": "optimizer_bytes per element (fp32 master, m and v: 12), split from stage 1 on, 0 when offloaded",
    "total": "the sum of params, grads and optimizer",
}


def _check_state(case: Case, got, want):
    if _check_raised(got, want):
        return
    require(got, {"keys": want["keys"]})
    if list(got["keys"]) != list(want["keys"]):
        raise AssertionError(f"returns the keys {list(map(str, got['keys']))}; the dict needs exactly params, "
                             "grads, optimizer and total")
    for key in STATE_BYTES_KEYS:
        _check_integer(got, want, key, STATE_HINTS[key])


def _ref_activation(case: Case):
    args, options = case.args
    if options.get("raise"):
        return {"raised": np.array("ValueError")}
    kwargs = {k: v for k, v in options.items() if k != "raise"}
    return {"bytes": np.array(str(activation_bytes(*args, **kwargs))), "bytes_type": np.array("int")}


def _check_activation(case: Case, got, want):
    if _check_raised(got, want):
        return
    require(got, want)
    _check_integer(got, want, "bytes", "per layer 34 s b h + 5 a s^2 b ('none'), 34 s b h ('selective'), "
                   "2 s b h ('full'), times layers, in exact integer arithmetic (no division, no floats)")


def _ref_count(case: Case):
    if "raise" in case.kind:
        return {"raised": np.array("ValueError")}
    return {"count": np.array(str(count_params_by_model(case.args[0]))), "count_type": np.array("int")}


def _check_count(case: Case, got, want):
    if _check_raised(got, want):
        return
    require(got, want)
    _check_integer(got, want, "count", "differs from sum(p.numel()) of the model built from this config "
                   "(k and v have num_kv_heads * head_dim outputs; an untied LM head is a second V x h matrix)")


def _ref_zero(case: Case):
    spec = case.args[0]
    if spec["bad"]:
        return {"raised": np.array("ValueError")}
    params = [torch.from_numpy(np.array(p)) for p in spec["params"]]
    grads = [[[torch.from_numpy(np.array(g)) for g in rank] for rank in step] for step in spec["grads"]]
    world, stage = spec["world"], spec["stage"]
    steps = adamw_reference(params, grads, world, spec["lr"], spec["betas"], spec["eps"], spec["weight_decay"])
    P = sum(p.numel() for p in params)
    shard, elem = -(-P // world), params[0].element_size()
    held_p, held_g = (shard if stage == 3 else P), (shard if stage >= 2 else P)
    out = {"mutated": np.array(False), "aliased": np.array(False)}
    for k, (ps, st) in enumerate(steps):
        out[f"shapes{k}"] = np.array([str(tuple(p.shape)) for p in ps])
        out[f"params{k}"] = np.concatenate([p.reshape(-1).numpy() for p in ps])
        out[f"dtypes{k}"] = np.array([str(params[0].dtype)])
        out[f"states{k}"] = st.numpy()
        out[f"bytes{k}"] = np.array([elem * (held_p + held_g + 2 * shard)] * world, dtype=np.int64)
    return out


def _check_zero(case: Case, got, want):
    if _check_raised(got, want):
        return
    require(got, want)
    if bool(got["mutated"]):
        raise AssertionError("changes an input tensor in place (params, grads or states); return new tensors")
    if bool(got["aliased"]):
        raise AssertionError("returns a tensor that shares storage with an input; return new tensors (clone)")
    steps = sum(key.startswith("params") for key in want)
    for k in range(steps):
        after = f"after step {k + 1}" if steps > 1 else "after the step"
        compare(got[f"shapes{k}"], want[f"shapes{k}"], f"the shapes of new_params {after}", exact=True)
        if list(got[f"dtypes{k}"]) != list(want[f"dtypes{k}"]):
            raise AssertionError(f"new tensors {after} have dtypes {list(map(str, got[f'dtypes{k}']))}; keep the "
                                 "parameters' dtype for parameters and states")
        compare(got[f"params{k}"], want[f"params{k}"],
                f"new_params {after}, against torch.optim.AdamW on the mean gradient")
        compare(got[f"states{k}"], want[f"states{k}"],
                f"new_states {after} (rank r's exp_avg, exp_avg_sq: the zero-padded slice [rS, (r+1)S))")
        if list(got[f"bytes{k}"]) != list(want[f"bytes{k}"]):
            raise AssertionError(f"per_rank_bytes {after} is wrong: each rank holds elem_size * (held_p + held_g "
                                 "+ 2 S), with params sharded only at stage 3 and grads from stage 2 (a list of ints)")


# ---------------------------------------------------------------- 5, 6. ring collectives


def ring_reduce_scatter(x, rank, world, send, recv):
    """Rank `rank`'s chunk of the sum of every rank's x, by N - 1 sends of one chunk to rank + 1."""
    chunks = list(x.reshape(world, -1).clone())  # world x (n / world,)
    right, left = (rank + 1) % world, (rank - 1) % world
    for k in range(world - 1):
        send(chunks[(rank - k - 1) % world], right)  # the partial sum that rank + 1 extends next
        j = (rank - k - 2) % world
        incoming = torch.empty_like(chunks[j])
        recv(incoming, left)
        chunks[j] = chunks[j] + incoming
    return chunks[rank]


def ring_all_gather(shard, rank, world, send, recv):
    """Every rank's shard, in rank order, by N - 1 sends of one shard to rank + 1."""
    parts = [None] * world
    parts[rank] = shard.clone()
    right, left = (rank + 1) % world, (rank - 1) % world
    for k in range(world - 1):
        send(parts[(rank - k) % world], right)  # forward what arrived last step (own shard first)
        j = (rank - k - 1) % world
        parts[j] = torch.empty_like(shard)
        recv(parts[j], left)
    return torch.cat(parts)


def _ring_expect(case: Case, got, reduce: bool):
    """Outputs and messages a ring gives on the case's inputs, per rank."""
    world, chunk, inputs = case.args
    xs = [np.asarray(x, dtype=np.float64) for x in inputs]
    if not reduce:
        xs = [x[:chunk] for x in xs]
    want = {}
    for r in range(world):
        if reduce:
            c = lambda r_, j: xs[r_].reshape(world, chunk)[j]  # noqa: E731  chunk j of rank r_'s input
            out = sum(c(q, r) for q in range(world))
            msgs = [sum(c((r - i) % world, (r - k - 1) % world) for i in range(k + 1)) for k in range(world - 1)]
        else:
            out = np.concatenate(xs)
            msgs = [xs[(r - k) % world] for k in range(world - 1)]
        want[r] = (out, msgs)
    return want


def _check_ring(case: Case, got, reduce: bool):
    world, chunk, _ = case.args
    if "error" in got:
        raise AssertionError(f"raises or hangs: {got['error']}")
    section = "section 5's ring " + ("reduce-scatter" if reduce else "all-gather")
    size = chunk if reduce else world * chunk
    for r, (out, msgs) in _ring_expect(case, got, reduce).items():
        on = f"on rank {r} of {world}"
        if str(got[f"dtype{r}"]) != "torch.float32" or str(got[f"shape{r}"]) != str((size,)):
            raise AssertionError(f"{on}: returns {got[f'dtype{r}']} of shape {got[f'shape{r}']}; return a float32 "
                                 f"tensor of {'one chunk, len(x) // world' if reduce else 'world * len(shard)'} "
                                 "elements")
        if not np.array_equal(np.asarray(got[f"out{r}"], np.float64), out):
            raise AssertionError(f"{on}: the values are wrong: " + (
                f"rank r returns chunk r of the sum over ranks ({section})" if reduce else
                f"the result is every rank's shard in rank order, rank 0 first, whatever order they arrive in "
                f"({section})"))
        dst, nbytes, lens = (np.asarray(got[f"{k}{r}"]) for k in ("dst", "nbytes", "lens"))
        if len(dst) != world - 1 or np.any(dst != (r + 1) % world):
            raise AssertionError(f"{on}: sent {len(dst)} messages to ranks {sorted(set(dst.tolist()))}; a ring sends "
                                 f"world - 1 messages, each to rank (rank + 1) % world only ({section})")
        if np.any(nbytes != 4 * chunk) or np.any(lens != chunk):
            raise AssertionError(f"{on}: a message carried more or less than one chunk; each of the world - 1 sends "
                                 f"moves one chunk, (world - 1) / world of the tensor in all ({section})")
        if list(np.asarray(got[f"received{r}"])) != [chunk] * (world - 1):
            raise AssertionError(f"{on}: received {len(got[f'received{r}'])} messages; a ring receives world - 1, "
                                 f"one chunk each from rank (rank - 1) % world, and uses them ({section})")
        sent = np.split(np.asarray(got[f"msgs{r}"], np.float64), world - 1) if world > 1 else []
        for k, (m, w) in enumerate(zip(sent, msgs)):
            if not np.array_equal(m, w):
                raise AssertionError(f"{on}: message {k + 1} is not what the ring carries at that step: " + (
                    "step k sends the running sum of the chunk that rank + 1 extends next, chunk (rank - k - 1) % "
                    "world, with what came from rank - 1 added" if reduce else
                    "step k forwards the shard that arrived at step k - 1 (its own shard at step 0)")
                    + f" ({section})")


EXERCISES = {
    "ring_reduce_scatter": TASKS["ring_reduce_scatter"].graded(
        lambda case: {}, lambda case, got, want: _check_ring(case, got, reduce=True)),
    "ring_all_gather": TASKS["ring_all_gather"].graded(
        lambda case: {}, lambda case, got, want: _check_ring(case, got, reduce=False)),
    "model_state_bytes": TASKS["model_state_bytes"].graded(_ref_state, _check_state),
    "activation_bytes": TASKS["activation_bytes"].graded(_ref_activation, _check_activation),
    "count_params": TASKS["count_params"].graded(_ref_count, _check_count),
    "zero_step": TASKS["zero_step"].graded(_ref_zero, _check_zero),
}


# ---------------------------------------------------------------- measuring (the page and make bench)


def storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind `tensors` (views and tied weights counted once)."""
    seen = {}
    for t in tensors:
        if t is not None and t.numel():
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


class MixedPrecisionAdamW:
    """16-bit weights and gradients on the model, fp32 master weights and AdamW state beside them:
    the 2 + 2 + 12 bytes per parameter of section 1. The fp32 copies of the gradients exist only
    during step(): a transient 4 bytes per parameter (kept, they make the 20 of section 1)."""

    def __init__(self, model: nn.Module, **adamw):
        self.params = list(model.parameters())
        self.master = [p.detach().float().clone() for p in self.params]
        self.opt = torch.optim.AdamW(self.master, **adamw)

    def step(self):
        for p, m in zip(self.params, self.master):
            m.grad = p.grad.float()
        self.opt.step()
        with torch.no_grad():
            for p, m in zip(self.params, self.master):
                m.grad = None
                p.copy_(m)

    def state_tensors(self):
        state = [t for s in self.opt.state.values() for t in s.values() if torch.is_tensor(t)]
        return self.params + [p.grad for p in self.params] + self.master + state


def bench(timer, cuda: bool) -> dict:
    """Model-state bytes of Llama-style models under mixed-precision AdamW (bf16 weights and grads,
    fp32 master and state): after one training step, measured (torch.cuda.memory_allocated on a
    GPU, distinct storages on the CPU) against 16 bytes per parameter, and the step's peak."""
    if cuda:
        shapes = [(1024, 4), (2048, 4), (2048, 8), (3072, 8), (4096, 8)]  # (hidden, layers)
        batch, seq = 4, 1024
    else:
        shapes = [(32, 1), (64, 2)]
        batch, seq = 2, 16
    rows = {"n_params": [], "predicted_state_bytes": [], "measured_state_bytes": [], "peak_bytes": [],
            "step_seconds": [], "config": f"vocab 32000, GQA 4:1, SwiGLU 8/3 h, batch {batch}, seq {seq}"}
    for hidden, layers in shapes:
        cfg = dict(vocab_size=32000, hidden_size=hidden, intermediate_size=8 * hidden // 3, num_layers=layers,
                   num_heads=max(hidden // 128, 4), num_kv_heads=max(hidden // 512, 1))
        torch.manual_seed(0)
        if cuda:
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
        model = LlamaStyle(cfg, device=DEVICE, dtype=torch.bfloat16)
        opt = MixedPrecisionAdamW(model, lr=1e-4)
        tokens = torch.randint(0, cfg["vocab_size"], (batch, seq), device=DEVICE)

        def train_step():
            logits = model(tokens[:, :-1])
            F.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten()).backward()
            opt.step()

        if cuda:
            torch.cuda.reset_peak_memory_stats()
        train_step()
        n = count_params(cfg)
        measured = (torch.cuda.memory_allocated() - base) if cuda else storage_bytes(opt.state_tensors())
        rows["n_params"].append(n)
        rows["predicted_state_bytes"].append(16 * n)
        rows["measured_state_bytes"].append(int(measured))
        rows["peak_bytes"].append(int(torch.cuda.max_memory_allocated()) if cuda else 0)
        rows["step_seconds"].append(timer(train_step))
        del model, opt, tokens
        if cuda:
            torch.cuda.empty_cache()
    return rows
