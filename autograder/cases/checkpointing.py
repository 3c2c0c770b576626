"""Chapter 06's cases: what the learner's checkpoint, checkpoint_sequential and min_recompute_plan are run
on, and how (the learner's kernel).

The measuring tool is here: `SavedBytes`, a context manager over
`torch.autograd.graph.saved_tensors_hooks` that counts the bytes of every distinct storage
autograd holds for the backward pass, live, over time (exact, device-independent, and the same
on the CPU as on a GPU). The book and the checks both measure with it. Work is measured in
Python lines (`_count_lines`), which is why these exercises refuse NumPy: bytes held in NumPy
arrays and work done inside NumPy calls are invisible to both measures.
"""
import ast
import functools
import inspect
import math
import textwrap
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

from autograder.device import DEVICE
from autograder.exercise import Case, NO_NUMPY, Task, to_numpy
from autograder.watch import ReadCounter, count_lines as _count_lines


class _Held:
    """What the pack hook returns instead of a saved tensor: the tensor, plus a receipt that
    tells the log when autograd lets go of it (when this object is freed)."""

    __slots__ = ("log", "tensor", "key")

    def __init__(self, log: "SavedBytes", tensor: torch.Tensor, key, nbytes: int):
        self.log, self.tensor, self.key = log, tensor, key
        counted = log._acquire(key, nbytes)
        log.records.append((tuple(tensor.shape), str(tensor.dtype).replace("torch.", ""), nbytes, counted))

    def __del__(self):
        self.log._release(self.key)


def _storage_key(t: torch.Tensor):
    return (t.device.type, t.device.index, t.untyped_storage().data_ptr())


class SavedBytes:
    """Count the bytes autograd saves for the backward pass while the context is active.

    Every tensor a backward node saves passes through the pack hook. Bytes are counted per
    distinct storage (a tensor saved by two nodes, or a view of a saved tensor, costs its storage
    once), and a storage stays live until the last node holding it lets go. Storages of the
    tensors in `exclude` (the parameters: they exist whether or not anything is saved) are not
    counted. Attributes:

      live      bytes held now
      peak      the largest `live` seen (`reset_peak()` starts a new maximum)
      timeline  `live` after every change, starting at 0: the memory trace of the run
      marks     {label: index into timeline} set by `mark(label)`
      records   (shape, dtype, storage bytes, counted) for every tensor packed; counted is False
                when its storage was already held
    """

    def __init__(self, exclude=()):
        self._skip = {_storage_key(t) for t in exclude}
        self._held: dict = {}  # storage key -> [holders, nbytes]
        self.live = self.peak = 0
        self.timeline = [0]
        self.marks: dict[str, int] = {}
        self.records: list[tuple] = []

    def _acquire(self, key, nbytes: int) -> bool:
        entry = self._held.get(key)
        if entry is not None:
            entry[0] += 1
            return False
        self._held[key] = [1, nbytes]
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        self.timeline.append(self.live)
        return True

    def _release(self, key) -> None:
        entry = self._held[key]
        entry[0] -= 1
        if entry[0] == 0:
            del self._held[key]
            self.live -= entry[1]
            self.timeline.append(self.live)

    def _pack(self, t: torch.Tensor):
        key = _storage_key(t)
        if key in self._skip:
            return t
        return _Held(self, t, key, t.untyped_storage().nbytes())

    @staticmethod
    def _unpack(held):
        return held.tensor if isinstance(held, _Held) else held

    def mark(self, label: str) -> None:
        self.marks[label] = len(self.timeline) - 1

    def reset_peak(self) -> None:
        self.peak = self.live

    def __enter__(self) -> "SavedBytes":
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


F64 = np.float64


def _ckpt_cases(rng: np.random.Generator) -> list[Case]:
    r = lambda *shape: rng.standard_normal(shape)  # noqa: E731
    seed = lambda: np.array(int(rng.integers(0, 2**31)))  # noqa: E731
    b, d = (int(v) for v in rng.integers(2, 9, 2))
    t = int(rng.integers(3, 9))
    return [
        Case("fn is a two-layer MLP that closes over its weights",
             ("mlp", r(b, d), r(d, 4 * d) / d**0.5, r(4 * d, d) / d**0.5, r(b, d))),
        Case("fn takes two inputs that both require grad", ("two", r(b, d), r(b, d), r(d, d) / d**0.5, r(b, d))),
        Case("one input does not require grad", ("mask", r(b, d), r(b, d), r(d, d) / d**0.5, r(b, d))),
        Case("one input is an integer index tensor (it cannot require grad)",
             ("index", r(b + 3, d), rng.integers(0, b + 3, 2 * b), r(d, d) / d**0.5, r(2 * b, d))),
        Case("fn contains dropout (the recompute must draw the same mask)",
             ("dropout", r(b, d), r(d, 4 * d) / d**0.5, r(4 * d, d) / d**0.5, r(b, d), seed())),
        Case("fn is a single-head attention block with a residual",
             ("attention", r(t, d), r(d, 3 * d) / d**0.5, r(d, d) / d**0.5, r(t, d))),
    ]


def _ckpt_problem(case: Case):
    """(f, inputs, params, g, seed) on DEVICE in float64: the loss is (f(*inputs) * g).sum()."""
    kind, *arrays = case.args
    arrays = [torch.from_numpy(np.asarray(v)).to(DEVICE) for v in arrays]
    seed = int(arrays.pop()) if str(kind) == "dropout" else 0
    g = arrays.pop()
    leaf = lambda v, grad=True: v.clone().requires_grad_(grad)  # noqa: E731
    kind = str(kind)
    if kind in ("mlp", "dropout"):
        x, w1, w2 = arrays
        w1, w2 = leaf(w1), leaf(w2)
        p = 0.5 if kind == "dropout" else 0.0
        f = lambda x: F.dropout(F.gelu(x @ w1), p=p, training=p > 0) @ w2  # noqa: E731
        return f, [leaf(x)], [w1, w2], g, seed
    if kind == "two":
        x, y, w = arrays
        w = leaf(w)
        return (lambda x, y: torch.tanh(x @ w) * y + y.sin()), [leaf(x), leaf(y)], [w], g, seed
    if kind == "mask":
        x, m, w = arrays
        w = leaf(w)
        return (lambda x, m: torch.relu(x @ w) * m), [leaf(x), m.clone()], [w], g, seed
    if kind == "index":
        x, idx, w = arrays
        w = leaf(w)
        return (lambda x, idx: (x[idx] @ w).sin()), [leaf(x), idx.clone()], [w], g, seed
    if kind == "attention":
        x, wqkv, wo = arrays
        wqkv, wo = leaf(wqkv), leaf(wo)

        def attention(x):  # (T, d)
            q, k, v = (x @ wqkv).chunk(3, dim=-1)  # (T, d) each
            scores = q @ k.T / math.sqrt(x.shape[-1])  # (T, T)
            return x + (scores.softmax(dim=-1) @ v) @ wo  # (T, d)

        return attention, [leaf(x)], [wqkv, wo], g, seed
    raise ValueError(f"unknown checkpoint case {kind}")


def _grads(inputs, params) -> dict:
    out = {f"grad_input{i}": to_numpy(x.grad) for i, x in enumerate(inputs) if x.requires_grad and x.grad is not None}
    with_grad = [p for p in params if p.grad is not None]
    out["params_with_grad"] = np.array(len(with_grad))
    if len(with_grad) == len(params):
        out["grad_params"] = to_numpy(torch.cat([p.grad.flatten() for p in params]))
    return out


def _caller_draws() -> None:
    """The caller's own use of the random stream between the forward and the backward pass (the
    next layer's dropout, say): what a checkpoint must not rewind."""
    torch.rand(16, device=DEVICE)


def _rng_state() -> dict:
    """The caller's random-number state: the CPU's, and the grading GPU's when there is one."""
    out = {"rng_after": to_numpy(torch.get_rng_state())}
    if DEVICE.type == "cuda":
        out["rng_after_cuda"] = to_numpy(torch.cuda.get_rng_state(DEVICE))
    return out


def _function_nodes(out) -> list:
    """The nodes of torch.autograd.Function subclasses (their ctx objects) in out's graph."""
    todo, seen, found = [getattr(out, "grad_fn", None)], [], []
    while todo and len(seen) < 10_000:
        node = todo.pop()
        if node is None or any(node is s for s in seen):
            continue
        seen.append(node)
        if isinstance(node, torch.autograd.function.BackwardCFunction):
            found.append(node)
        todo.extend(nxt for nxt, _ in getattr(node, "next_functions", ()))
    return found


def _held_by(root, limit: int = 100_000):
    """(tensors, histories): every tensor reachable from root's attributes (through lists, tuples,
    sets, dicts, objects' __dict__ and slots, functions' closures and defaults, partials and bound
    methods; not through modules, classes or a function's globals), and how many of the things
    reached carry an autograd history (a tensor with a grad_fn, or a graph node itself)."""
    todo, seen, found, histories = [root], set(), [], 0
    while todo and len(seen) < limit:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType, str, bytes, int, float, bool)) or obj is None:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            found.append(obj)
            histories += obj.grad_fn is not None
            continue
        if obj is not root and isinstance(obj, torch.autograd.graph.Node):
            histories += 1
            continue
        if isinstance(obj, dict):
            todo.extend(obj.keys())
            todo.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            todo.extend(obj)
        elif isinstance(obj, types.FunctionType):
            todo.extend(c.cell_contents for c in obj.__closure__ or () if _filled(c))
            todo.extend(obj.__defaults__ or ())
            todo.extend((obj.__kwdefaults__ or {}).values())
        elif isinstance(obj, functools.partial):
            todo.extend((obj.func, obj.args, obj.keywords))
        elif isinstance(obj, types.MethodType):
            todo.extend((obj.__self__, obj.__func__))
        else:
            todo.extend(getattr(obj, "__dict__", {}).values())
            for klass in type(obj).__mro__:
                for slot in getattr(klass, "__slots__", ()):
                    if isinstance(slot, str) and hasattr(obj, slot):
                        todo.append(getattr(obj, slot))
    return found, histories


def _filled(cell) -> bool:
    try:
        cell.cell_contents
        return True
    except ValueError:  # an empty cell
        return False


def _rng_states() -> list[torch.Tensor]:
    """Every random-number state there is now (the CPU's and each GPU's): what a checkpoint stashes."""
    states = [torch.get_rng_state()]
    if torch.cuda.is_available():
        states += torch.cuda.get_rng_state_all()
    return states


def _is_state(t: torch.Tensor, states) -> bool:
    return t.dtype == torch.uint8 and any(
        t.device == s.device and t.shape == s.shape and torch.equal(t, s) for s in states)


def _forward_holdings(out, log: "SavedBytes", params, states) -> dict:
    """What the call holds for its backward pass once its forward pass is over: the distinct
    storages autograd still holds (save_for_backward) together with every tensor the Function
    nodes keep as ctx attributes, parameters and copies of the random-number states the call
    began with (`states`) left out; and how many autograd histories those attributes keep alive."""
    skip = {_storage_key(p) for p in params}
    held = {key: entry[1] for key, entry in log._held.items()}
    histories = 0
    for node in _function_nodes(out):
        tensors, h = _held_by(node)
        histories += h
        for t in tensors:
            key = _storage_key(t)
            if key not in skip and not _is_state(t, states):
                held[key] = t.untyped_storage().nbytes()
    return {"forward_held_bytes": np.array(sum(held.values())), "ctx_histories": np.array(histories)}


def _run_checkpoint(fn, case: Case):
    f, inputs, params, g, seed = _ckpt_problem(case)
    calls = [0]

    def counted(*args):
        calls[0] += 1
        return f(*args)

    log = SavedBytes(exclude=params)
    torch.manual_seed(seed)
    states = _rng_states()
    with log:
        out = fn(counted, *inputs)
        forward_peak, forward_calls = log.peak, calls[0]
        holdings = _forward_holdings(out, log, params, states)
        inputs_saved = sum(_storage_key(x) in log._held for x in inputs)  # through save_for_backward
        _caller_draws()
        (out * g).sum().backward()
    return {"out": to_numpy(out), **_grads(inputs, params), "fn_calls": np.array(calls[0]),
            "fn_calls_forward": np.array(forward_calls), "forward_saved_bytes": np.array(forward_peak),
            **holdings, "inputs_saved": np.array(inputs_saved), "inputs": np.array(len(inputs)), **_rng_state()}


def _input_bytes(case: Case) -> int:
    """Bytes of the tensors checkpoint is given (the ones it may save)."""
    kind, *arrays = case.args
    inputs = arrays[:2] if str(kind) in ("two", "mask", "index") else arrays[:1]
    return sum(np.asarray(v).nbytes for v in inputs)


def _seq_cases(rng: np.random.Generator) -> list[Case]:
    def stack(n, segments, batch=4, width=16):
        return ("tanh", rng.standard_normal((batch, width)),
                rng.standard_normal((n, width, width)) / width**0.5, 0.1 * rng.standard_normal((n, width)),
                rng.standard_normal((batch, width)), np.array(segments))

    n = int(rng.integers(10, 30))
    k = int(rng.integers(2, n // 2))
    if n % k == 0:
        n += 1
    m = int(rng.integers(2, 40))
    return [
        Case("n = 64 equal layers and segments = 8 (peak at most 30% of no checkpointing)", stack(64, 8)),
        Case("segments = 1", stack(6, 1)),
        Case("segments = n", stack(7, 7)),
        Case("n is not divisible by segments (10 layers, 3 segments)", stack(10, 3)),
        Case(f"n is not divisible by segments ({n} layers, {k} segments)", stack(n, k)),
        Case("n and segments are random", stack(m, int(rng.integers(1, m + 1)))),
        Case("segments < 1 or segments > n (raise ValueError)", stack(5, 1)),
    ]


def _seq_problem(case: Case):
    _, x, weights, biases, g, segments = (np.asarray(v) for v in case.args)
    n, width = weights.shape[0], weights.shape[1]
    layers = []
    for w, b in zip(weights, biases):
        linear = nn.Linear(width, width).to(device=DEVICE, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(nn.Sequential(linear, nn.Tanh()))
    segments = int(segments)
    x = torch.from_numpy(x).to(DEVICE).requires_grad_()
    g = torch.from_numpy(g).to(DEVICE)
    params = [p for layer in layers for p in layer.parameters()]
    return layers, x, g, segments, params


BAD_SEGMENTS = (0, -1, "n + 1")


def _own_numpy(fn) -> str:
    """NumPy in checkpoint_sequential's own source (not in exercise 1's checkpoint, which it reaches
    but which exercise 1 grades): '' or the first use."""
    from autograder.forbidden import uses

    try:
        found = uses(inspect.getsource(fn), set(NO_NUMPY))
    except (OSError, TypeError):
        return ""
    return f"{fn.__name__} uses `{found[0][0]}` (line {found[0][1]} of its definition)" if found else ""


def _run_sequential(fn, case: Case):
    refused = _own_numpy(fn)
    if refused:
        return {"refused": np.array(refused)}
    layers, x, g, segments, params = _seq_problem(case)
    if "raise" in case.kind:
        raised = []
        for s in BAD_SEGMENTS:
            s = len(layers) + 1 if s == "n + 1" else s
            try:
                fn(layers, x, s)
                raised.append(f"returned for segments = {s}")
            except Exception as e:
                raised.append(type(e).__name__)
        return {"raised": np.array(raised)}
    # Grade this exercise alone: the learner's function runs with torch's own (reentrant)
    # checkpoint in place of the one from exercise 1, so a mistake there is not counted twice;
    # that checkpoint records which layers each of its calls runs.
    namespace = getattr(fn, "__globals__", {})
    before = namespace.get("checkpoint", _MISSING)
    segments_log = _Segments(layers)
    namespace["checkpoint"] = segments_log.checkpoint
    log = SavedBytes(exclude=params)
    try:
        with log:
            out = fn(layers, x, segments)
            segments_log.backward = True
            (out * g).sum().backward()
    finally:
        segments_log.close()
        if before is _MISSING:
            namespace.pop("checkpoint", None)
        else:
            namespace["checkpoint"] = before
    return {"out": to_numpy(out), "grad_x": to_numpy(x.grad), **_grads([], params),
            "peak_saved_bytes": np.array(log.peak), **segments_log.summary()}


class _Segments:
    """The `checkpoint` an exercise-2 run is graded with (torch's reentrant one), recording which
    call ran which layers: every layer run, in order, as (checkpoint call, layer), the call being
    -1 when the layer ran inside none; separately for the forward pass and for the backward
    pass's recomputation. A layer run is seen by a hook on its first module, so it is recorded
    however the layer is called."""

    def __init__(self, layers):
        self.calls, self.current, self.backward = 0, -1, False
        self.runs = {False: [], True: []}
        self.handles = [self._first(layer).register_forward_pre_hook(self._hook(i)) for i, layer in enumerate(layers)]

    @staticmethod
    def _first(layer):
        return layer[0] if isinstance(layer, nn.Sequential) and len(layer) else layer

    def _hook(self, i):
        def hook(module, args):
            self.runs[self.backward].append((self.current, i))
        return hook

    def checkpoint(self, fn, *args):
        call = self.calls
        self.calls += 1

        def segment(*inputs):
            outer, self.current = self.current, call
            try:
                return fn(*inputs)
            finally:
                self.current = outer
        return _library_checkpoint(segment, *args)

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()

    def summary(self) -> dict:
        runs = lambda phase: np.array(self.runs[phase], dtype=np.int64).reshape(-1, 2)  # noqa: E731
        return {"checkpoint_calls": np.array(self.calls), "forward_runs": runs(False), "backward_runs": runs(True)}


_MISSING = object()


def _library_checkpoint(fn, *args):
    """torch's reentrant checkpoint: like exercise 1's, a Function that saves only its inputs."""
    return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=True)


def _recompute_cases(rng: np.random.Generator) -> list[Case]:
    """(act_bytes, flops, budget): small integer sizes (units of bytes), so that a table over the
    bytes held stays small."""
    def chain(n, hi=10, frac=(0.5, 0.9)):
        act, flops = rng.integers(1, hi, n), rng.integers(0, 60, n)
        return act, flops, int(math.ceil(rng.uniform(*frac) * int(act.sum())))

    small = [Case(f"n = {n} (compared with the best of all 2^n plans)", chain(n))
             for n in (1, 3, 5, *rng.integers(7, 11, 2))]
    act, flops, _ = chain(9)
    block = np.tile([1, 4, 4, 1, 12, 1], 2)  # a Transformer-like profile: the 12 is large and cheap
    cost = np.tile([8, 16, 1, 16, 1, 4], 2)
    zero = np.where(rng.random(10) < 0.4, 0, rng.integers(1, 60, 10))
    big_act, big_flops, _ = chain(40, hi=4)
    return [
        *small,
        Case("the budget holds every output (nothing need be recomputed)", (act, flops, int(act.sum()))),
        Case("10 equal layers and the smallest budget any plan fits (4)", (np.ones(10, np.int64), cost[:10] + 1, 4)),
        Case("a large layer that is cheap to recompute (Transformer-like, n = 12)", (block, cost, 27)),
        Case("some layers cost no FLOPs", (rng.integers(1, 10, 10), zero, 30)),
        Case("n = 40 (the work must stay O(n^2 (budget + 1)))", (big_act, big_flops, int(0.35 * big_act.sum()) + 2)),
        Case("the budget is below the largest output (raise ValueError)", (act, flops, int(act.max()) - 1)),
        Case("10 equal layers and a budget of 3, below any plan's peak (raise ValueError)",
             (np.ones(10, np.int64), cost[:10], 3)),
        Case("act_bytes is empty (raise ValueError)", (np.zeros(0, np.int64), np.zeros(0, np.int64), 10)),
        Case("flops has another length (raise ValueError)", (np.array([3, 1, 4]), np.array([1, 2]), 10)),
        Case("a size is negative (raise ValueError)", (np.array([3, -1, 4]), np.array([1, 2, 3]), 10)),
    ]


def recompute_work_budget(n: int, budget: int) -> int:
    """Work a table over (kept layer, bytes held) with a loop over the next kept layer may do:
    10 n^2 (budget + 1) + 10^4 Python lines plus elements read, several times what a plain
    triple loop needs, far below what an enumeration of plans does at n = 40."""
    return 10 * n * n * (max(0, budget) + 1) + 10_000


# What min_recompute_plan may call: the builtins that do O(1) work per call, or whose per-element work
# runs through the learner's own Python (a generator, a key function), where the line count sees
# it. Anything else (sum, sorted, map, slice, a module: math.fsum, itertools.accumulate,
# functools.reduce, torch) can add up a span in one call, O(n) work that no line count sees.
PLAIN_BUILTINS = frozenset({
    "len", "range", "int", "float", "bool", "str", "min", "max", "abs", "divmod", "enumerate", "zip",
    "reversed", "list", "tuple", "dict", "set", "isinstance", "iter", "next", "any", "all", "print",
    "ValueError", "TypeError", "IndexError", "Exception", "NotImplementedError", "None", "True", "False"})


def _plain_value(obj, depth: int = 0) -> bool:
    """Data that carries no methods beyond a list's: numbers, strings, None, and containers of them."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return True
    if isinstance(obj, (list, tuple, set, frozenset)) and depth < 3 and len(obj) <= 10_000:
        return all(_plain_value(v, depth + 1) for v in obj)
    if isinstance(obj, dict) and depth < 3 and len(obj) <= 10_000:
        return all(_plain_value(k, depth + 1) and _plain_value(v, depth + 1) for k, v in obj.items())
    return False


def _code_names(code: types.CodeType):
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


_CLASS_KEYS = {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__annotations__", "__slots__",
               "__firstlineno__", "__static_attributes__"}


def plain_python_refusal(fn) -> str:
    """'' when fn and every function of its module it reaches use only plain Python (the builtins in
    PLAIN_BUILTINS, their own functions and classes, numbers and lists, no slicing, no dunder or
    private attribute); else what the first offence is. What a function reaches: the global names
    its code reads, the values its defaults and closure cells bind, and the attributes and bases
    of its module's classes it names."""
    import builtins

    from autograder.forbidden import reachable

    module = getattr(fn, "__module__", None)
    plain = [getattr(builtins, b) for b in PLAIN_BUILTINS if hasattr(builtins, b)]

    def mine(obj) -> bool:
        return isinstance(obj, (type, types.FunctionType)) and getattr(obj, "__module__", None) == module

    def fine(obj) -> bool:
        return mine(obj) or any(obj is b for b in plain) or obj is object or _plain_value(obj)

    def bound(obj):
        """The functions a class attribute wraps (a method, a static or class method, a property)."""
        if isinstance(obj, (staticmethod, classmethod)):
            return [obj.__func__]
        if isinstance(obj, property):
            return [g for g in (obj.fget, obj.fset, obj.fdel) if g is not None]
        return [obj]

    todo, seen = list(reachable(fn)), []
    while todo:
        f = todo.pop()
        if not isinstance(f, types.FunctionType) or any(f is g for g in seen):
            continue
        seen.append(f)
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(f)))
        except (OSError, TypeError, SyntaxError):
            return f"cannot read the source of {f.__name__}; define it in the notebook"
        for node in ast.walk(tree):
            if isinstance(node, ast.Slice):
                return f"{f.__name__} slices a sequence (line {node.lineno} of its definition)"
        bindings = [*(f.__defaults__ or ()), *(f.__kwdefaults__ or {}).values(),
                    *(c.cell_contents for c in f.__closure__ or () if _filled(c))]
        for name in dict.fromkeys(_code_names(f.__code__)):
            if name.startswith("_") and name not in f.__globals__:
                return f"{f.__name__} reads the attribute `{name}`"
            if name in f.__globals__:
                obj = f.__globals__[name]
            elif hasattr(builtins, name):
                obj = getattr(builtins, name)
            else:
                continue  # an attribute of a value (`plan.append`)
            if not fine(obj):
                kind = "the module " if isinstance(obj, types.ModuleType) else ""
                return f"{f.__name__} uses {kind}`{name}`"
            if isinstance(obj, type) and mine(obj):
                for base in obj.__mro__[1:]:
                    if not fine(base):
                        return f"{obj.__name__} derives from `{base.__name__}`"
                for key, value in vars(obj).items():
                    if key not in _CLASS_KEYS:
                        bindings.extend(bound(value))
        for value in bindings:
            if mine(value) and isinstance(value, types.FunctionType):
                todo.extend(reachable(value))
            elif not fine(value):
                return f"{f.__name__} binds `{getattr(value, '__name__', type(value).__name__)}`"
    return ""


def _run_recompute(fn, case: Case):
    act, flops, budget = [int(v) for v in case.args[0]], [int(v) for v in case.args[1]], int(case.args[2])
    refusal = {"refused": np.array(plain_python_refusal(fn))}
    sizes, costs = ReadCounter(act), ReadCounter(flops)  # count the elements the learner reads
    if "raise" in case.kind:
        try:
            return {"raised": np.array(f"returned {fn(sizes, costs, budget)!r}"[:200]), **refusal}
        except Exception as e:
            return {"raised": np.array(type(e).__name__), **refusal}
    try:
        result, lines = _count_lines(fn, (sizes, costs, budget), recompute_work_budget(len(act), budget))
    except Exception as e:  # an infeasible budget: the check decides whether raising was right
        return {"raised": np.array(type(e).__name__), **refusal}
    work = {"work": np.array(lines + sizes.reads + costs.reads), "lines": np.array(lines),
            "stopped": np.array(result is None), **refusal}
    if result is None:
        return work
    cost, plan = result
    return {"recomputed": np.array(int(cost), dtype=np.int64),
            "plan": np.array([int(k) for k in plan], dtype=np.int64), **work}


LEAVES_TORCH = ("NumPy is refused here: the saved bytes and the work are measured on torch tensors and Python "
                "lines, and NumPy would hide both.")

# Ways around the saved-bytes measure: other saved-tensor hooks (save_on_cpu pushes its own, and
# the innermost hooks are the ones autograd calls), and the module that holds them.
HIDES_SAVED = frozenset({"saved_tensors_hooks", "save_on_cpu", "disable_saved_tensors_hooks",
                         "_push_saved_tensors_default_hooks", "torch.autograd.graph"})

TASKS = {
    "checkpoint": Task(
        "checkpoint", _ckpt_cases, _run_checkpoint,
        forbidden=frozenset({"checkpoint", *HIDES_SAVED, *NO_NUMPY}),
        why="write the recomputation yourself, on your own torch.autograd.Function, not with "
            "torch.utils.checkpoint or saved-tensor hooks (save_on_cpu is one: it hides what autograd "
            "saves from the measure). " + LEAVES_TORCH,
    ),
    "checkpoint_sequential": Task(
        "checkpoint_sequential", _seq_cases, _run_sequential,
        # Only these: the check reads every function the learner's reaches, exercise 1's checkpoint
        # too, and exercise 1's refusals must not cost exercise 2 (it is graded with torch's checkpoint,
        # and its layers are recorded one by one, which no hook can hide).
        forbidden=frozenset({"checkpoint_sequential", "utils"}),
        why="cut the layers into segments yourself and run each through your `checkpoint`.",
    ),
    "min_recompute_plan": Task("min_recompute_plan", _recompute_cases, _run_recompute, forbidden=frozenset(NO_NUMPY),
                               why=LEAVES_TORCH),
}
