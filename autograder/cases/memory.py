"""Chapter 05's cases: what the learner's memory accounting and ZeRO step are run on (the learner's
kernel; nothing here imports autograder.reference).

The counting exercises return Python ints that may exceed 2^63 (a sum over a huge configuration),
so their runs record them as decimal strings, compared exactly, with their Python type. The ZeRO
run chains the learner's steps, and records whether any input was changed or aliased.
"""
import datetime
import multiprocessing as mp
import socket
import time

import numpy as np
import torch
import torch.distributed as dist

from autograder.exercise import Case, Task

STATE_BYTES_KEYS = ("params", "grads", "optimizer", "total")


def _raised(fn, args, kwargs) -> dict:
    """Call fn on arguments it must refuse; record the exception's type (or what came back)."""
    try:
        got = fn(*args, **kwargs)
    except Exception as e:  # the learner's choice of exception is the output
        return {"raised": np.array(type(e).__name__)}
    return {"raised": np.array(f"returned {type(got).__name__}")}


def _integer(value, what: str) -> dict:
    """A returned count as outputs: its decimal digits and its Python type."""
    return {f"{what}": np.array(str(value)), f"{what}_type": np.array(type(value).__name__)}


# ---------------------------------------------------------------- 1. model_state_bytes


def _state_cases(rng: np.random.Generator) -> list[Case]:
    big = int(rng.integers(10**6, 10**10))
    cases = [
        *(Case(f"the ZeRO paper's Figure 1: 7.5B parameters, N_d = 64, stage {s}", ((7_500_000_000, s, 64), {}))
          for s in range(4)),
        Case("7B parameters, stage 0, dp = 1 (the 112 GB of mixed-precision AdamW)", ((7_000_000_000, 0, 1), {})),
        *(Case(f"dp = 1 at stage {s} (must equal stage 0)", ((big, s, 1), {})) for s in (1, 2, 3)),
        *(Case(f"dp does not divide the count at stage {s} (shards are padded to ceil(n / dp))",
               ((int(rng.integers(1000, 10**9)) * dp + int(rng.integers(1, dp)), s, dp), {}))
          for s, dp in zip((1, 2, 3), (int(rng.choice([3, 7, 96])) for _ in range(3)))),
        *(Case(f"offload=True at stage {s}", ((big, s, int(rng.integers(2, 130))), {"offload": True})) for s in range(4)),
        Case("optimizer_bytes = 4 (SGD with momentum in fp32 plus nothing else), stage 2",
             ((big, 2, 8), {"optimizer_bytes": 4})),
        Case("optimizer_bytes = 0 at stage 1", ((big, 1, 8), {"optimizer_bytes": 0})),
        Case("n_params == 0", ((0, 3, 8), {})),
        Case("an integral float count (7.5e9)", ((7.5e9, 3, 64), {})),
        Case("NumPy integers for n_params and dp", ((np.int64(big), 2, np.int64(12)), {})),
    ]
    bad = [
        ("stage 4 (raise ValueError)", (10, 4, 2), {}),
        ("stage -1 (raise ValueError)", (10, -1, 2), {}),
        ("stage True (a bool is not a stage: raise ValueError)", (10, True, 2), {}),
        ("dp == 0 (raise ValueError)", (10, 1, 0), {}),
        ("n_params < 0 (raise ValueError)", (-1, 1, 2), {}),
        ("optimizer_bytes < 0 (raise ValueError)", (10, 1, 2), {"optimizer_bytes": -4}),
        ("n_params = 1.5, not a whole count (raise ValueError)", (1.5, 1, 2), {}),
        ("dp = 2.5, not a whole count (raise ValueError)", (10, 1, 2.5), {}),
        ("n_params = inf, not a whole count (raise ValueError, not math.floor's OverflowError)",
         (float("inf"), 1, 2), {}),
    ]
    return cases + [Case(kind, (args, kwargs)) for kind, args, kwargs in bad]


def _run_state(fn, case: Case) -> dict:
    args, kwargs = case.args
    if "raise" in case.kind:
        return _raised(fn, args, kwargs)
    got = fn(*args, **kwargs)
    if not isinstance(got, dict):
        raise TypeError(f"returned a {type(got).__name__}, not a dict")
    out = {"keys": np.array(sorted(map(str, got)))}
    for key in STATE_BYTES_KEYS:
        if key in got:
            out.update(_integer(got[key], key))
    return out


# ---------------------------------------------------------------- 2. activation_bytes


def _activation_cases(rng: np.random.Generator) -> list[Case]:
    def dims():
        heads = int(rng.integers(1, 17))
        return [int(rng.integers(1, 513)), int(rng.integers(1, 9)), heads * int(rng.integers(1, 65)), heads,
                int(rng.integers(1, 49))]

    odd = dims()
    odd[2] = 5 * odd[3] * odd[0] + 1  # h does not divide 5 a s
    return [
        *(Case(f"recompute='{mode}', random sizes", (tuple(dims()), {"recompute": mode}))
          for mode in ("none", "none", "selective", "full")),
        Case("recompute left at its default ('none')", (tuple(dims()), {})),
        Case("hidden does not divide 5 * heads * seq (the count is still an exact integer)",
             (tuple(odd), {"recompute": "none"})),
        Case("GPT-3 175B sizes: s = 2048, b = 1, h = 12288, a = 96, 96 layers",
             ((2048, 1, 12288, 96, 96), {"recompute": "none"})),
        Case("a count beyond 2^63 (exact integers, not floats)",
             ((2**22 + 3, 4099, 3 * 10**5 + 7, 97, 1000), {"recompute": "none"})),
        Case("a zero dimension (batch = 0)", ((128, 0, 64, 4, 2), {"recompute": "none"})),
        Case("layers = 0", ((128, 2, 64, 4, 0), {"recompute": "full"})),
        Case("a negative seq (raise ValueError)", ((-8, 1, 64, 4, 2), {"recompute": "none", "raise": True})),
        Case("hidden = 64.5, not integral (raise ValueError)", ((8, 1, 64.5, 4, 2), {"recompute": "none", "raise": True})),
        Case("seq = inf, not a whole number (raise ValueError, not math.floor's OverflowError)",
             ((float("inf"), 1, 64, 4, 2), {"recompute": "none", "raise": True})),
        Case("recompute='Full' (raise ValueError: the three modes are lowercase)",
             ((8, 1, 64, 4, 2), {"recompute": "Full", "raise": True})),
        Case("recompute='selective ' with a trailing space (raise ValueError)",
             ((8, 1, 64, 4, 2), {"recompute": "selective ", "raise": True})),
        Case("recompute=None (raise ValueError)", ((8, 1, 64, 4, 2), {"recompute": None, "raise": True})),
    ]


def _run_activation(fn, case: Case) -> dict:
    args, options = case.args
    kwargs = {k: v for k, v in options.items() if k != "raise"}
    if options.get("raise"):
        return _raised(fn, args, kwargs)
    return _integer(fn(*args, **kwargs), "bytes")


# ---------------------------------------------------------------- 3. count_params

LLAMA_2_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_layers=32,
                  num_heads=32, num_kv_heads=32, tie_embeddings=False)
LLAMA_3_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_layers=32,
                  num_heads=32, num_kv_heads=8, tie_embeddings=False)


def random_config(rng: np.random.Generator, tie: bool | None = None, kv_heads: int | None = None) -> dict:
    """A tiny Llama-style configuration (num_heads divisible by num_kv_heads)."""
    kv = kv_heads or int(rng.integers(1, 4))
    heads = kv * int(rng.integers(1, 4))
    cfg = dict(vocab_size=int(rng.integers(5, 200)), hidden_size=heads * int(rng.integers(1, 9)),
               intermediate_size=int(rng.integers(1, 100)), num_layers=int(rng.integers(1, 4)),
               num_heads=heads, num_kv_heads=kv)
    if tie is not None:
        cfg["tie_embeddings"] = tie
    return cfg


def _count_cases(rng: np.random.Generator) -> list[Case]:
    with_extras = {**random_config(rng, tie=False), "rope_theta": 10000.0, "max_position_embeddings": 4096}
    mqa = random_config(rng, tie=False, kv_heads=1)
    mqa["num_heads"] = mqa["num_heads"] * 4
    mqa["hidden_size"] = mqa["num_heads"] * 3
    bad = dict(LLAMA_2_7B, hidden_size=4097)
    return [
        Case("Llama-2-7B (published total 6,738,415,616)", (LLAMA_2_7B,)),
        Case("Llama-3-8B, 8 KV heads (published total 8,030,261,248)", (LLAMA_3_8B,)),
        *(Case("a tiny random config, untied embeddings", (random_config(rng, tie=False),)) for _ in range(3)),
        *(Case("a tiny random config, tied embeddings", (random_config(rng, tie=True),)) for _ in range(2)),
        Case("grouped-query attention: num_kv_heads < num_heads", (random_config(rng, tie=False, kv_heads=2),)),
        Case("multi-query attention: one KV head", (mqa,)),
        Case("tie_embeddings absent (untied)", (random_config(rng),)),
        Case("extra keys in the config (ignored)", (with_extras,)),
        Case("num_layers = 0 (embeddings and the final norm only)", (dict(random_config(rng, tie=False), num_layers=0),)),
        Case("hidden_size % num_heads != 0 (raise ValueError)", (bad,)),
        Case("num_heads % num_kv_heads != 0 (raise ValueError)", (dict(LLAMA_2_7B, num_kv_heads=3),)),
        Case("num_heads = 0 (raise ValueError)", (dict(LLAMA_2_7B, num_heads=0, num_kv_heads=1),)),
        Case("num_kv_heads = 0 (raise ValueError)", (dict(LLAMA_2_7B, num_kv_heads=0),)),
        Case("a negative vocab_size (raise ValueError)", (dict(LLAMA_2_7B, vocab_size=-1),)),
        Case("a negative intermediate_size (raise ValueError)", (dict(LLAMA_2_7B, intermediate_size=-5),)),
    ]


def _run_count(fn, case: Case) -> dict:
    cfg = dict(case.args[0])  # a copy: the learner may not change the case
    if "raise" in case.kind:
        return _raised(fn, (cfg,), {})
    return _integer(fn(cfg), "count")


# ---------------------------------------------------------------- 4. zero_step


def _shapes(rng: np.random.Generator, count: int) -> list[tuple]:
    return [tuple(int(d) for d in rng.integers(1, 6, int(rng.integers(1, 4)))) for _ in range(count)]


def _problem(rng, kind, world, stage, steps=1, shapes=None, lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
             weight_decay=0.0, scale=1.0, dtype=np.float32, bad=None) -> Case:
    shapes = shapes or _shapes(rng, int(rng.integers(1, 5)))
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[[(scale * rng.standard_normal(s)).astype(dtype) for s in shapes] for _ in range(world)]
             for _ in range(steps)]
    spec = dict(params=params, grads=grads, world=world, stage=stage, lr=lr, betas=betas, eps=eps,
                weight_decay=weight_decay, bad=bad)
    return Case(kind, (spec,))


def _zero_cases(rng: np.random.Generator) -> list[Case]:
    p = lambda kind, **kw: _problem(rng, kind, **kw)  # noqa: E731
    return [
        p("stage 1, world 4, total size not divisible by 4", world=4, stage=1, shapes=[(3, 5), (7,), (2, 2, 2)]),
        p("stage 2, random shapes and world", world=int(rng.integers(2, 6)), stage=2),
        p("stage 3, random shapes and world", world=int(rng.integers(2, 6)), stage=3),
        p("world = 1", world=1, stage=3),
        p("more ranks than elements (some shards are all padding)", world=7, stage=2, shapes=[(2,), (1, 2)]),
        p("three chained steps (states and step carried over)", world=3, stage=int(rng.integers(1, 4)), steps=3),
        p("weight decay 0.1, three steps (decoupled, as in AdamW)", world=2, stage=2, steps=3, weight_decay=0.1,
          lr=0.05),
        p("eps comparable to the gradients (eps = 1e-3, gradients about 1e-3)", world=3, stage=1, steps=2,
          eps=1e-3, scale=1e-3),
        p("betas = (0.5, 0.6), two steps", world=2, stage=3, steps=2, betas=(0.5, 0.6)),
        p("float64 parameters (8-byte elements)", world=3, stage=2, steps=2, dtype=np.float64),
        p("stage 0 (raise ValueError)", world=2, stage=0, bad="raise"),
        p("stage 4 (raise ValueError)", world=2, stage=4, bad="raise"),
        p("world = 0 (raise ValueError)", world=2, stage=1, bad="world0"),
        p("len(grads) != world (raise ValueError)", world=3, stage=1, bad="fewgrads"),
        p("a gradient of the wrong shape (raise ValueError)", world=2, stage=2, bad="shape"),
        p("step = 0 (raise ValueError: steps count from 1)", world=2, stage=1, bad="step0"),
        p("states with floor(P / world) elements per rank (raise ValueError)", world=4, stage=1,
          shapes=[(3, 5), (7,)], bad="states"),
        p("states for another number of ranks (raise ValueError)", world=3, stage=2, bad="fewstates"),
    ]


def _tensors(arrays) -> list[torch.Tensor]:
    return [torch.from_numpy(np.array(a)) for a in arrays]


def _bad_call(fn, spec) -> dict:
    params, world, stage = _tensors(spec["params"]), spec["world"], spec["stage"]
    grads = [_tensors(g) for g in spec["grads"][0]]
    P = sum(t.numel() for t in params)
    states, step = None, 1
    bad = spec["bad"]
    if bad == "world0":
        world = 0
    elif bad == "fewgrads":
        grads = grads[:-1]
    elif bad == "shape":
        grads[-1][0] = torch.zeros(params[0].numel() + 1, dtype=params[0].dtype)
    elif bad == "step0":
        step = 0
    elif bad in ("states", "fewstates"):
        size = P // world if bad == "states" else -(-P // world)
        count = world if bad == "states" else world - 1
        states = [{"exp_avg": torch.zeros(size, dtype=params[0].dtype),
                   "exp_avg_sq": torch.zeros(size, dtype=params[0].dtype)} for _ in range(count)]
        step = 2
    return _raised(fn, (params, grads, states, world, stage, spec["lr"]),
                   dict(betas=spec["betas"], eps=spec["eps"], weight_decay=spec["weight_decay"], step=step))


def _snapshot(params, grads, states) -> list[torch.Tensor]:
    tensors = list(params) + [t for g in grads for t in g]
    if states is not None:
        tensors += [s[k] for s in states for k in ("exp_avg", "exp_avg_sq")]
    return tensors


def _run_zero(fn, case: Case) -> dict:
    spec = case.args[0]
    if spec["bad"]:
        return _bad_call(fn, spec)
    params, world, stage = _tensors(spec["params"]), spec["world"], spec["stage"]
    states, out = None, {"mutated": np.array(False), "aliased": np.array(False)}
    for k, step_grads in enumerate(spec["grads"]):
        grads = [_tensors(g) for g in step_grads]
        inputs = _snapshot(params, grads, states)
        before = [t.clone() for t in inputs]
        ptrs = {t.untyped_storage().data_ptr() for t in inputs if t.numel()}
        new_params, new_states, per_rank = fn(params, grads, states, world, stage, spec["lr"], betas=spec["betas"],
                                              eps=spec["eps"], weight_decay=spec["weight_decay"], step=k + 1)
        if any(not torch.equal(t, b) for t, b in zip(inputs, before)):
            out["mutated"] = np.array(True)
        new_params, new_states = list(new_params), list(new_states)
        if len(new_params) != len(params) or any(not isinstance(t, torch.Tensor) for t in new_params):
            raise TypeError(f"new_params must be a list of {len(params)} tensors, one per parameter")
        if len(new_states) != world or any(not isinstance(s, dict) for s in new_states):
            raise TypeError(f"new_states must be a list of {world} dicts, one per rank")
        held = [s[key] for s in new_states for key in ("exp_avg", "exp_avg_sq")]
        if any(t.untyped_storage().data_ptr() in ptrs for t in list(new_params) + held if t.numel()):
            out["aliased"] = np.array(True)
        out[f"shapes{k}"] = np.array([str(tuple(t.shape)) for t in new_params])
        out[f"params{k}"] = np.concatenate([t.detach().reshape(-1).numpy() for t in new_params])
        out[f"dtypes{k}"] = np.array(sorted({str(t.dtype) for t in new_params + held}))
        lengths = {t.shape for t in held}
        if len(lengths) != 1 or len(next(iter(lengths))) != 1:
            raise ValueError(f"every exp_avg and exp_avg_sq must be a 1-D tensor of one length; got shapes {sorted(lengths)}")
        out[f"states{k}"] = np.stack([t.detach().numpy() for t in held]).reshape(world, 2, -1)  # (world, 2, S)
        out[f"bytes{k}"] = np.array([int(b) if type(b) is int else -1 for b in per_rank], dtype=np.int64)
        params, states = new_params, new_states
    return out


# ---------------------------------------------------------------- 5, 6. ring collectives, in real processes

RING_SECONDS = 5  # a rank that waits this long for a message gives up (a ring that never closes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ring_rank(fn, rank, world, x, port, conn):
    """One rank, in its own process: gloo over loopback, its input, counted sends and receives."""
    try:
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=RING_SECONDS))
        x = torch.from_numpy(np.array(x))
        sent, pending, received = [], [], []

        def send(tensor, dst):  # returns at once; the message is copied as it is now
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"send takes a tensor, got {type(tensor).__name__}")
            message = tensor.detach().reshape(-1).to(torch.float32, copy=True)
            sent.append((int(dst), message, tensor.numel() * tensor.element_size()))
            pending.append(dist.isend(message, int(dst)))

        def recv(buffer, src):  # fills `buffer` (a float32 tensor of the message's size) in place
            dist.recv(buffer, int(src))
            received.append(buffer.numel())

        try:
            out = fn(x.clone(), rank, world, send, recv)
        except Exception as e:  # gloo's own errors (a timeout, a lost peer) name ports: keep them apart
            gloo = isinstance(e, (RuntimeError, dist.DistError)) and ("gloo" in str(e) or "Connection" in str(e))
            conn.send({"error": "gloo" if gloo else f"{type(e).__name__}: {str(e)[:200]}"})
            return
        for work in pending:
            work.wait()
        kind = str(out.dtype) if isinstance(out, torch.Tensor) else type(out).__name__
        out = out.detach() if isinstance(out, torch.Tensor) else torch.tensor([])
        conn.send({"out": out.reshape(-1).to(torch.float32).numpy(),
                   "shape": np.array(str(tuple(out.shape))), "dtype": np.array(kind),
                   "dst": np.array([d for d, _, _ in sent], dtype=np.int64),
                   "nbytes": np.array([b for _, _, b in sent], dtype=np.int64),
                   "lens": np.array([m.numel() for _, m, _ in sent], dtype=np.int64),
                   "received": np.array(received, dtype=np.int64),
                   "msgs": np.concatenate([m.numpy() for _, m, _ in sent] or [np.zeros(0, np.float32)])})
        dist.barrier()
        dist.destroy_process_group()
    except BaseException:  # set-up or teardown failed (gloo): no message with ports in it
        conn.send({"error": "gloo"})


def run_ring(fn, xs) -> dict:
    """fn(xs[rank], rank, world, send, recv) on world = len(xs) processes (fork); per rank: its output,
    every message it sent (destination, bytes, values) and the sizes of those it received."""
    world = len(xs)
    ctx = mp.get_context("fork")
    port, procs, conns = _free_port(), [], []
    for rank in range(world):
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_ring_rank, args=(fn, rank, world, xs[rank], port, child), daemon=True)
        proc.start()
        procs.append(proc)
        conns.append(parent)
    records, deadline = [None] * world, time.monotonic() + RING_SECONDS + 5
    try:
        for rank, conn in enumerate(conns):
            if conn.poll(max(0.0, deadline - time.monotonic())):
                records[rank] = conn.recv()
    finally:
        for proc in procs:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
    for rank, record in enumerate(records):  # the learner's own error first: the others follow from it
        if record is not None and "error" in record and not record["error"].startswith("gloo"):
            return {"error": np.array(f"on rank {rank}: {record['error']}")}
    for rank, record in enumerate(records):
        if record is None or "error" in record:
            return {"error": np.array(f"rank {rank} waited {RING_SECONDS} s for a message that never came, or lost "
                                      "its peer (a recv with no matching send, or a send to the wrong rank?)")}
    return {f"{key}{rank}": value for rank, record in enumerate(records) for key, value in record.items()}


def _ring_cases(rng: np.random.Generator) -> list[Case]:
    """(world, chunk, per-rank inputs of world * chunk small integers in float32: every sum is exact)."""
    def case(kind, world, chunk):
        return Case(kind, (world, chunk, [rng.integers(-8, 9, world * chunk).astype(np.float32) for _ in range(world)]))
    chunk = int(rng.integers(2, 6))
    return [case("2 ranks, one element per chunk", 2, 1), case("3 ranks", 3, chunk),
            case("4 ranks", 4, chunk + 1), case("1 rank (nothing to send)", 1, 3)]


def _run_reduce_scatter(fn, case: Case) -> dict:
    world, chunk, xs = case.args
    return run_ring(fn, xs)  # x of world * chunk elements on each rank


def _run_all_gather(fn, case: Case) -> dict:
    world, chunk, xs = case.args
    return run_ring(fn, [x[:chunk] for x in xs])  # a shard of chunk elements on each rank


# ---------------------------------------------------------------- the tasks

NO_OPTIM = ("the exercise is the AdamW update on each rank's shard; torch.optim's AdamW is what the grader "
            "checks it against, so write the update yourself.")

NO_COLLECTIVES = ("the exercise is the collective itself, built from the send and recv it is given; "
                  "torch.distributed's collectives are what the grader checks it against.")
RING_FORBIDDEN = frozenset({  # collectives, and every other channel between ranks: files, sockets, frames, closures
    "torch.distributed", ".all_gather", ".reduce_scatter", ".all_reduce", ".broadcast", ".isend", ".irecv",
    "multiprocessing", "os", "socket", "open", "pathlib", "pickle", "shutil", "tempfile", "subprocess", "mmap",
    "ctypes", "io", ".save", ".load", ".tofile", ".fromfile", ".memmap", ".from_file",
    "sys", "inspect", "gc", "globals", "vars", "locals", "getattr", "__import__", "importlib", "exec", "eval",
    "builtins", "__builtins__", ".f_back", ".f_locals", ".f_globals", ".__globals__", ".__closure__", ".__dict__"})

TASKS = {
    "model_state_bytes": Task("model_state_bytes", _state_cases, _run_state),
    "activation_bytes": Task("activation_bytes", _activation_cases, _run_activation),
    "count_params": Task("count_params", _count_cases, _run_count,
                         forbidden=frozenset({".numel", ".parameters"}),
                         why="count from the configuration with the formula; building the model is the check."),
    "zero_step": Task("zero_step", _zero_cases, _run_zero,
                      forbidden=frozenset({"optim", ".AdamW", ".Adam", ".adamw", ".adam"}),
                      why=NO_OPTIM),
    "ring_reduce_scatter": Task("ring_reduce_scatter", _ring_cases, _run_reduce_scatter,
                                forbidden=RING_FORBIDDEN, why=NO_COLLECTIVES),
    "ring_all_gather": Task("ring_all_gather", _ring_cases, _run_all_gather,
                            forbidden=RING_FORBIDDEN, why=NO_COLLECTIVES),
}
