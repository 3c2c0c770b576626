"""Watching what a learner's function does while it runs, beyond its return value.

One place for the recorders every chapter's runs use (they run in the learner's kernel, so they
live outside autograder/reference/): `TritonLaunches` counts Triton kernel launches, `OpRecorder`
measures the torch ops run outside them, `HostPeak` the Python and NumPy memory, `count_lines` the
work done in Python (lines run in the learner's own functions; work inside C builtins is not
counted, so cost rules name the builtins they refuse). Their readings
are outputs like any other: the grader judges them in its own process.
"""
import dis
import inspect
import os
import sys
import tracemalloc
import types
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import autograder.device  # noqa: F401  (before triton, always: it sets TRITON_INTERPRET without CUDA)
import triton  # noqa: E402


def tensors(tree):
    """Every tensor in a nest of lists, tuples and dicts."""
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, (list, tuple)):
        for t in tree:
            yield from tensors(t)
    elif isinstance(tree, dict):
        for t in tree.values():
            yield from tensors(t)


@dataclass
class Launch:
    """One `kernel[grid](...)` call: which `@triton.jit` function ran (and the module that
    defines it: a learner's notebook is `__main__`), its grid, its constexprs and its runtime
    signature; under the interpreter also what its programs did: `loads` and `stores` (tl.load /
    tl.store calls, summed over programs), `dots` ("fp32 x fp32 tf32": operand types and
    input_precision of every tl.dot shape seen)."""

    kernel: str
    module: str
    grid: tuple
    constexprs: dict
    signature: dict
    fn: object = field(repr=False, default=None)  # the Python function, for compiling it
    loads: int = 0
    stores: int = 0
    dots: set = field(default_factory=set)
    widest: int = 0  # most lanes of one tl.load (the biggest tile read at once)

    @property
    def programs(self) -> int:
        return int(np.prod(self.grid)) if self.grid else 0


class OutOfBounds(RuntimeError):
    """An interpreted tl.load or tl.store touched an address outside every tensor argument: on a
    GPU that lane reads garbage or faults; the interpreter would silently carry on."""


def _extent(t: torch.Tensor) -> tuple[int, int]:
    """[first byte, one past the last byte) of the elements a view can reach (not its storage)."""
    if t.numel() == 0:
        return t.data_ptr(), t.data_ptr()
    lo = sum((n - 1) * s for n, s in zip(t.shape, t.stride()) if s < 0)
    hi = sum((n - 1) * s for n, s in zip(t.shape, t.stride()) if s > 0)
    size = t.element_size()
    return t.data_ptr() + lo * size, t.data_ptr() + (hi + 1) * size


def _tensor_args(bound: dict) -> dict:
    return {k: v for k, v in bound.items() if isinstance(v, torch.Tensor)}


_PRECISION = {"TF32": "tf32", "IEEE": "ieee", "TF32x3": "tf32x3", "BF16x3": "bf16x3", "BF16x6": "bf16x6"}


class TritonLaunches:
    """Records every `kernel[grid](...)` launch while active (`launches`: a list of `Launch`;
    `count`, `names`). `running` is true inside a launch, so that an op recorder can leave the
    kernel's own work out. Under Triton's interpreter (no CUDA) it also
    - refuses out-of-bounds lanes: every enabled lane of a tl.load or tl.store must fall inside a
      tensor argument's view, else `OutOfBounds` names the kernel, the argument and how far past
      its end (the interpreter itself checks nothing and reads whatever lies there);
    - counts each launch's loads and stores, and records its tl.dot precisions (the interpreter
      computes every dot exactly, whatever `input_precision` says; on a GPU float32 defaults to
      TF32)."""

    def __init__(self):
        self.launches: list[Launch] = []
        self.depth = 0
        self._current: Launch | None = None
        self._extents: list[tuple[str, int, int]] = []

    @property
    def count(self) -> int:
        return len(self.launches)

    @property
    def names(self) -> set:
        return {launch.kernel for launch in self.launches}

    @property
    def running(self) -> bool:
        return self.depth > 0

    def __enter__(self) -> "TritonLaunches":
        self._original = original = triton.runtime.jit.KernelInterface.__getitem__
        watch = self

        def launching(kernel, grid):
            launcher = original(kernel, grid)

            def launch(*args, **kwargs):
                record = _describe(kernel, grid, args, kwargs)
                if watch.depth == 0:
                    watch.launches.append(record)
                    watch._current = record
                    watch._extents = [(k, *_extent(t)) for k, t in _tensor_args(_bind(kernel, args, kwargs)).items()]
                watch.depth += 1
                try:
                    return launcher(*args, **kwargs)
                finally:
                    watch.depth -= 1
                    if watch.depth == 0:
                        watch._current = None
            return launch

        triton.runtime.jit.KernelInterface.__getitem__ = launching
        self._patched = []
        if INTERPRETING:
            self._patch_interpreter()
        return self

    def __exit__(self, *exc) -> None:
        triton.runtime.jit.KernelInterface.__getitem__ = self._original
        for obj, name, value in reversed(self._patched):
            setattr(obj, name, value)

    # ---- the interpreter's builder, patched while the watch is active
    def _patch(self, obj, name, wrapper):
        self._patched.append((obj, name, getattr(obj, name)))
        setattr(obj, name, wrapper(getattr(obj, name)))

    def _patch_interpreter(self) -> None:
        from triton.runtime.interpreter import interpreter_builder as builder

        watch = self

        def loads(original):
            def masked_load(ptrs, mask, other, *rest):
                watch._touch("loads", ptrs, mask)
                return original(ptrs, mask, other, *rest)
            return masked_load

        def stores(original):
            def masked_store(ptrs, value, mask, *rest):
                watch._touch("stores", ptrs, mask)
                return original(ptrs, value, mask, *rest)
            return masked_store

        def dots(original):
            def create_dot(a, b, d, input_precision, *rest):
                if watch._current is not None:
                    name = str(input_precision).rsplit(".", 1)[-1]
                    watch._current.dots.add(f"{a.dtype} x {b.dtype} {_PRECISION.get(name, name.lower())}")
                return original(a, b, d, input_precision, *rest)
            return create_dot

        self._patch(builder, "create_masked_load", loads)
        self._patch(builder, "create_masked_store", stores)
        self._patch(builder, "create_dot", dots)

    def _touch(self, what: str, ptrs, mask) -> None:
        launch = self._current
        if launch is None:
            return
        setattr(launch, what, getattr(launch, what) + 1)
        addr = np.asarray(ptrs.data, dtype=np.uint64)
        if what == "loads":
            launch.widest = max(launch.widest, int(addr.size))
        on = np.broadcast_to(np.asarray(mask.data, dtype=bool), addr.shape)
        addr = addr[on].astype(np.int64)
        if addr.size == 0:
            return
        size = max(1, ptrs.get_element_ty().primitive_bitwidth // 8)
        inside = np.zeros(addr.shape, dtype=bool)
        for _, lo, hi in self._extents:
            inside |= (addr >= lo) & (addr + size <= hi)
        if inside.all():
            return
        first = int(addr[~inside][0])
        below = [(lo, hi, k) for k, lo, hi in self._extents if lo <= first]
        if below:
            lo, hi, name = max(below)
            where = f"{(first - hi) // size + 1} element(s) past the end of `{name}`"
        else:
            where = "before the start of every tensor argument"
        verb = "loads from" if what == "loads" else "stores to"
        raise OutOfBounds(
            f"{launch.kernel} {verb} {int((~inside).sum())} lane(s) outside its tensors, the first {where}: "
            f"mask every lane whose offset is past the tensor's end (tl.load(..., mask=offs < n, other=...), "
            f"tl.store(..., mask=...)); on a GPU such a lane reads garbage or faults")

    # ---- what a run records
    def summary(self) -> dict:
        """The launches as NumPy arrays, for a run's outputs: `launches` (count), `kernels` (names,
        in launch order), `kernel_modules`, `grids` (launches x 3), `constexprs` ("NAME=value, ..."
        per launch), `loads_per_program` and `stores_per_program` (a launch's tl.load / tl.store
        calls divided by its programs, a mean, and the most of that over launches; under the
        interpreter only, else -1), `dot_precisions` (every kind of tl.dot seen), and per launch
        `launch_loads` (its loads per program) and `launch_widest_load` (most lanes of one tl.load);
        -1 each when compiled for a GPU."""
        ls = self.launches
        per = lambda what: max((getattr(l, what) / max(l.programs, 1) for l in ls), default=0.0)  # noqa: E731,E741
        return {
            "launches": np.array(len(ls)),
            "kernels": np.array([l.kernel for l in ls], dtype=str),  # noqa: E741
            "kernel_modules": np.array([l.module for l in ls], dtype=str),  # noqa: E741
            "grids": np.array([list(l.grid) for l in ls], dtype=np.int64).reshape(len(ls), 3),  # noqa: E741
            "constexprs": np.array([", ".join(f"{k}={v}" for k, v in l.constexprs.items()) for l in ls], dtype=str),  # noqa: E741
            "loads_per_program": np.array(per("loads") if INTERPRETING else -1.0),
            "stores_per_program": np.array(per("stores") if INTERPRETING else -1.0),
            "dot_precisions": np.array(sorted({d for l in ls for d in l.dots}), dtype=str),  # noqa: E741
            "launch_loads": np.array([l.loads / max(l.programs, 1) if INTERPRETING else -1.0 for l in ls],  # noqa: E741
                                     dtype=np.float64),
            "launch_widest_load": np.array([l.widest if INTERPRETING else -1 for l in ls], dtype=np.int64),  # noqa: E741
            "compile_errors": np.array(compile_errors(ls) if INTERPRETING else [], dtype=str),
        }


INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"


def _kernel_fn(kernel):
    return getattr(kernel, "fn", kernel)


def _bind(kernel, args, kwargs) -> dict:
    fn = _kernel_fn(kernel)
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    bound = dict(zip(params, args))
    bound.update({k: v for k, v in kwargs.items() if k in params})
    for name, p in params.items():
        if name not in bound and p.default is not inspect.Parameter.empty:
            bound[name] = p.default
    return bound


def _is_constexpr(annotation) -> bool:
    return annotation is triton.language.constexpr or "constexpr" in str(annotation)


def _describe(kernel, grid, args, kwargs) -> Launch:
    fn = _kernel_fn(kernel)
    bound = _bind(kernel, args, kwargs)
    params = inspect.signature(fn).parameters if callable(fn) else {}
    constexprs = {k: bound[k] for k, p in params.items() if _is_constexpr(p.annotation) and k in bound}
    signature = {}
    for k, p in params.items():
        if k in constexprs or k not in bound:
            continue
        try:
            signature[k] = triton.runtime.jit.mangle_type(bound[k])
        except Exception:
            signature[k] = type(bound[k]).__name__
    try:
        g = grid(bound) if callable(grid) else grid
        g = tuple(int(x) for x in (g if isinstance(g, (tuple, list)) else (g,)))
    except Exception:
        g = ()
    g = (g + (1, 1, 1))[:3] if g else (0, 0, 0)
    return Launch(getattr(fn, "__name__", type(kernel).__name__), getattr(fn, "__module__", "?") or "?",
                  g, constexprs, signature, fn)



# ---------------------------------------------------------------- compiling for a GPU, without one

GPU_TARGET = ("cuda", 90, 32)  # sm_90 (H100), warp size 32: the GPU the course's records come from
_compiled: dict = {}  # (function, signature, constexprs) -> error message or "" (kept for the process)


def _as_jit(fn, memo: dict):
    """A JITFunction for an interpreted kernel's Python function, with every @triton.jit helper it
    names swapped for a JITFunction too (under TRITON_INTERPRET they are InterpretedFunctions,
    which the compiler refuses)."""
    from triton.runtime.interpreter import InterpretedFunction

    if fn in memo:
        return memo[fn]
    scope = dict(fn.__globals__)
    copy = types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__module__, copy.__qualname__ = fn.__module__, fn.__qualname__
    copy.__annotations__, copy.__kwdefaults__ = fn.__annotations__, fn.__kwdefaults__
    memo[fn] = jit = triton.runtime.jit.JITFunction(copy)
    for name in fn.__code__.co_names:
        value = scope.get(name)
        if isinstance(value, InterpretedFunction):
            scope[name] = _as_jit(value.fn, memo)
    return jit


class _LibraryAsJit:
    """While active, triton.language's own @jit functions (tl.sum, tl.max, tl.cdiv, ...), which
    under TRITON_INTERPRET are InterpretedFunctions in their modules, are JITFunctions again, so
    that a kernel calling them can be compiled; restored on exit."""

    def __enter__(self):
        from triton.runtime.interpreter import InterpretedFunction

        self.swapped = []
        for name, module in list(sys.modules.items()):
            if module is None or not name.startswith("triton.language"):
                continue
            for attr, value in list(vars(module).items()):
                if isinstance(value, InterpretedFunction):
                    self.swapped.append((module, attr, value))
                    setattr(module, attr, triton.runtime.jit.JITFunction(value.fn))
        return self

    def __exit__(self, *exc):
        for module, attr, value in self.swapped:
            setattr(module, attr, value)


def _lower(jit, signature: dict, constexprs: dict, target) -> None:
    """Triton's compile pipeline for `target` up to TTGIR (the GPU dialect: sm_90's layouts, its
    dot lowering, the pipeliner): what triton.compile runs before LLVM and ptxas. The front end
    and these passes are where a kernel the interpreter ran gets refused (a type that changes in a
    loop, an unsupported Python construct, a shape the dot cannot take); LLVM and ptxas take most
    of the time (0.17 s to TTGIR of 3.3 s in all for chapter 04's forward tile, measured here)."""
    from triton._C.libtriton import ir
    from triton.compiler import ASTSource
    from triton.compiler.compiler import make_backend

    backend = make_backend(target)
    src = ASTSource(jit, {**signature, **{k: "constexpr" for k in constexprs}}, dict(constexprs))
    options = backend.parse_options(dict(src.parse_options()))
    context = ir.context()
    ir.load_dialects(context)
    backend.load_dialects(context)
    module = src.make_ir(target, options, backend.get_codegen_implementation(options), backend.get_module_map(), context)
    stages: dict = {}
    backend.add_stages(stages, options, src.language)
    metadata = {"target": target, **options.__dict__}
    for ext in ("ttir", "ttgir"):
        module = stages[ext](module, metadata)


def compile_for_gpu(fn, signature: dict, constexprs: dict, full: bool = False) -> str:
    """Compile a kernel's Python function for sm_90 on this machine (no GPU needed): "" when it
    compiles, else the compiler's message. The interpreter runs code the compiler rejects (a
    loop-carried variable that changes type, a Python call it cannot lower), so a kernel graded
    on a CPU is compiled too: to TTGIR while grading (about 0.1-0.5 s), to a cubin with `full`
    (`gpu-check --cpu-smoke`: seconds a kernel)."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    key = (fn, tuple(signature.items()), tuple((k, repr(v)) for k, v in constexprs.items()), full)
    if key not in _compiled:
        try:
            with _LibraryAsJit():
                jit = _as_jit(fn, {})
                target = GPUTarget(*GPU_TARGET)
                if full:
                    sig = {**signature, **{k: "constexpr" for k in constexprs}}
                    triton.compile(ASTSource(jit, sig, dict(constexprs)), target=target)
                else:
                    _lower(jit, signature, constexprs, target)
            _compiled[key] = ""
        except Exception as e:  # the compiler's own message is what the learner needs
            text = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
            _compiled[key] = f"{type(e).__name__}: " + " | ".join(text[-4:])[:600]
    return _compiled[key]


def compile_errors(launches, full: bool = False) -> list[str]:
    """One line for every launched kernel that does not compile for the GPU, each distinct
    specialization its launches used (see compile_for_gpu for `full`)."""
    out = []
    for launch in launches:
        if not isinstance(launch.fn, types.FunctionType):
            continue
        error = compile_for_gpu(launch.fn, launch.signature, launch.constexprs, full)
        line = f"{launch.kernel} does not compile for a GPU (sm_90): {error}"
        if error and line not in out:
            out.append(line)
    return out

_FACTORIES = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like",
              "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like", "new_full", "scalar_tensor"}


def _storage(t: torch.Tensor):
    try:
        s = t.untyped_storage()
        return s.data_ptr(), s.nbytes()
    except (RuntimeError, NotImplementedError):
        return None, 0


_EMPTIES = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"}


def poison(t: torch.Tensor) -> None:
    """Fill a fresh allocation with what no right answer holds: NaN for floats, the smallest value
    for integers, True for booleans. An output from torch.empty can already hold the right values
    (the allocator hands back the memory of a tensor just freed), so a kernel that never writes
    its output could pass; under this it fails every time."""
    if t.is_floating_point() or t.is_complex():
        t.fill_(float("nan"))
    elif t.dtype == torch.bool:
        t.fill_(True)
    else:
        t.fill_(torch.iinfo(t.dtype).min)


class OpWatch(TorchDispatchMode):
    """The torch ops a call runs outside its Triton kernel launches: a subclass says what to record
    of each in `on_op(name, func, args, kwargs, out)`. `triton` is the launch recorder
    (`TritonLaunches`), `launches` its count. With `poison=True` every tensor the call gets from an
    `empty*` factory is filled with NaN (see `poison`). The first op under a dispatch mode imports
    parts of torch (tens of MB); `__enter__` runs it unrecorded, so no measure charges it to the
    learner."""

    def __init__(self, poison: bool = False):
        super().__init__()
        self.triton = self._triton = TritonLaunches()
        self._warming = False
        self._poison = poison

    def on_op(self, name: str, func, args, kwargs, out) -> None:
        raise NotImplementedError

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not (self._triton.running or self._warming):
            name = func.overloadpacket.__name__
            if self._poison and name in _EMPTIES and isinstance(out, torch.Tensor):
                poison(out)
            self.on_op(name, func, args, kwargs or {}, out)
        return out

    @property
    def launches(self) -> int:
        return self._triton.count

    def __enter__(self):
        self._triton.__enter__()
        mode = super().__enter__()
        self._warming = True
        try:
            torch.zeros(0)
        finally:
            self._warming = False
        return mode

    def __exit__(self, *exc):
        self._triton.__exit__(*exc)
        return super().__exit__(*exc)


# What the host side of a Triton exercise may do: allocate, view, copy, read sizes, launch.
HOST_MAY = _EMPTIES | {"zeros", "zeros_like", "new_zeros", "ones", "ones_like", "new_ones", "full",
                       "full_like", "new_full", "scalar_tensor", "detach", "alias", "lift_fresh", "clone",
                       "copy_", "_to_copy", "contiguous", "fill_", "zero_", "_local_scalar_dense", "item",
                       "sym_size", "sym_stride", "sym_numel", "is_nonzero", "set_", "resize_", "_unsafe_view",
                       "arange", "lift_fresh_copy"}


class HostOps(OpWatch):
    """The host side of a Triton exercise: which torch ops computed anything outside the kernel
    launches (`host_ops`: names of every op that is not a view, an allocation or a copy, with the
    most elements it wrote), every fresh `empty*` poisoned, and the launches (`triton`).
    `summary()` is both, as a run's outputs."""

    def __init__(self, poison: bool = True, may: frozenset = frozenset()):
        super().__init__(poison=poison)
        self.may = HOST_MAY | set(may)
        self.ops: dict[str, int] = {}

    def on_op(self, name, func, args, kwargs, out):
        if func.is_view or name in self.may:
            return
        written = max([t.numel() for t in tensors(out)] + [0])
        self.ops[name] = max(self.ops.get(name, 0), written)

    def summary(self) -> dict:
        ops = sorted(self.ops)
        return {**self._triton.summary(), "host_ops": np.array(ops, dtype=str),
                "host_op_elements": np.array([self.ops[k] for k in ops], dtype=np.int64)}


class OpRecorder(OpWatch):
    """Records what the torch ops run under it do, outside Triton kernel launches:

    largest_op: most elements of a tensor that a computing op (not a view, not an allocation)
        reads or writes; largest_out: most elements of any op's output, allocations included;
    alloc_bytes: bytes of fresh storage the ops created; peak_bytes: most bytes of that fresh
        storage alive at once; launches: Triton kernel launches (kernel[grid](...) calls).
    """

    def __init__(self):
        super().__init__()
        self.largest_op = self.largest_out = self.alloc_bytes = self.peak_bytes = 0
        self._live = {}  # storage ptr -> (bytes, [weakrefs of tensors on it])

    def on_op(self, name, func, args, kwargs, out):
        outs = list(tensors(out))
        ins = list(tensors((args, kwargs)))
        self.largest_out = max([self.largest_out] + [t.numel() for t in outs])
        if not func.is_view and name not in _FACTORIES and name not in ("detach", "alias", "lift_fresh"):
            self.largest_op = max([self.largest_op] + [t.numel() for t in ins + outs])
        in_ptrs = {_storage(t)[0] for t in ins}
        for t in outs:
            ptr, nbytes = _storage(t)
            if ptr is None:
                continue
            if ptr in self._live:
                self._live[ptr][1].append(weakref.ref(t))
            elif ptr not in in_ptrs:
                self.alloc_bytes += nbytes
                self._live[ptr] = (nbytes, [weakref.ref(t)])
        self._live = {p: e for p, e in self._live.items() if any(r() is not None for r in e[1])}
        self.peak_bytes = max(self.peak_bytes, sum(e[0] for e in self._live.values()))

    def summary(self) -> dict:
        return {"largest_op": np.array(self.largest_op), "largest_out": np.array(self.largest_out),
                "alloc_bytes": np.array(self.alloc_bytes), "launches": np.array(self.launches)}


def peak_bytes(fn, *args, **kwargs) -> int:
    """Most bytes of fresh torch storage alive at once while fn(*args) runs (inputs not counted)."""
    with OpRecorder() as rec:
        fn(*args, **kwargs)
    return rec.peak_bytes


class HostPeak:
    """Peak bytes of Python and NumPy allocations while the block runs (tracemalloc: NumPy
    registers its buffers with it, torch's CPU allocator does not, so the two recorders together
    see every large buffer a call makes on the CPU). Tracing slows Python down several times, so
    it is on only for the cases whose check reads it (`active`)."""

    def __init__(self, active: bool = True):
        self.active, self.peak = active, 0

    def __enter__(self) -> "HostPeak":
        if not self.active:
            return self
        self.was_tracing = tracemalloc.is_tracing()
        if not self.was_tracing:
            tracemalloc.start()
        tracemalloc.reset_peak()
        self.base = tracemalloc.get_traced_memory()[0]
        self.peak = 0
        return self

    def __exit__(self, *exc) -> None:
        if not self.active:
            return
        self.peak = max(0, tracemalloc.get_traced_memory()[1] - self.base)
        if not self.was_tracing:
            tracemalloc.stop()


class WorkExceeded(Exception):
    """Raised inside the learner's code once it has run its budget of lines."""


def count_lines(fn, args, budget: int):
    """(result, lines): fn(*args), counting the lines Python runs in functions of fn's module
    (the learner's notebook), and stopping it once `budget` is passed."""
    home = getattr(fn, "__globals__", None)
    lines = [0]

    def local(frame, event, arg):
        if event == "line":
            lines[0] += 1
            if lines[0] > budget:
                raise WorkExceeded()
        return local

    def on_call(frame, event, arg):
        return local if home is None or frame.f_globals is home else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        result = fn(*args)
    except WorkExceeded:
        result = None
    finally:
        sys.settrace(previous)
    return result, lines[0]


class ReadCounter:
    """A read-only sequence that counts the elements read from it: `reads` grows by one per
    indexed element and by the length of every slice or iteration. It has no `__array__` and no
    buffer, so NumPy cannot read it behind the counter's back (`np.asarray` of it walks it
    element by element, and each of those reads is counted), and no `sort`, `index` or `count`.
    Work rules that a line count cannot see (`sum(a[i:j])` is one line and O(j - i) reads) bind
    through it: O(log n) searches, each block read once."""

    __slots__ = ("_items", "reads")

    def __init__(self, items):
        self._items, self.reads = list(items), 0

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, k):
        if isinstance(k, slice):
            part = self._items[k]
            self.reads += len(part)
            return part
        if not isinstance(k, int) and not hasattr(k, "__index__"):
            raise TypeError(f"indices must be integers or slices, not {type(k).__name__}")
        value = self._items[int(k)]
        self.reads += 1
        return value

    def __iter__(self):
        for value in self._items:
            self.reads += 1
            yield value

    def __repr__(self) -> str:
        return f"ReadCounter(len={len(self._items)}, reads={self.reads})"


# ---------------------------------------------------------------- loops inside interpreted programs

_BACKWARD = {dis.opmap[n] for n in ("JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP_ABSOLUTE") if n in dis.opmap}


class LoopBudget(Exception):
    """Raised inside a program of the learner's kernel once it has looped more than the exercise
    allows: the rest would only cost grading time."""


class KernelLoops:
    """What the learner's Python does while a Triton wrapper runs, under Triton's interpreter. For
    each program of a kernel defined in `home` (the globals of the learner's notebook):
    `iterations`, the most loop iterations of one program (backward jumps in its own and its
    helpers' frames: `for`, `while`, `tl.range`, `tl.static_range` alike), and `scans`, the fewest
    scans one program ran (tl.cumsum and tl.associative_scan; with `own_combine`, only
    tl.associative_scan calls whose combine function is defined in `home`); the interpreter
    runs a scan or reduction element by element, so the frames inside one are not traced. Outside
    the programs: `host_lines`, the lines run in `home`'s functions (the wrapper and its helpers).
    With a `budget`, a program that loops more than that is stopped (`exceeded`; LoopBudget).
    Inactive (all -1) when kernels are compiled for a GPU."""

    def __init__(self, home: dict, budget: int | None = None, own_combine: bool = False):
        self.home, self.iterations, self.scans, self.host_lines = home, 0, None, 0
        self.own_combine = own_combine
        self.budget, self.exceeded = budget, False  # past `budget` iterations a program is stopped
        self._program, self._now, self._scanned = None, 0, 0

    def __enter__(self) -> "KernelLoops":
        if not INTERPRETING:
            return self
        from triton.runtime import interpreter

        self._interpreter, self._grid_call = interpreter, interpreter.GridExecutor.__call__.__code__
        self._apply = original = interpreter.ReduceScanOpInterface.apply
        watch = self

        def apply(op, input):
            fn = getattr(getattr(op, "combine_fn", None), "fn", None)
            mine = getattr(fn, "__globals__", None) is watch.home or not watch.own_combine
            if isinstance(op, interpreter.ScanOps) and watch._program is not None and mine:
                watch._scanned += 1
            tracer = sys.gettrace()
            sys.settrace(None)  # the element-by-element scan is the interpreter's, not the kernel's loop
            try:
                return original(op, input)
            finally:
                sys.settrace(tracer)

        interpreter.ReduceScanOpInterface.apply = apply
        self._previous = sys.gettrace()
        sys.settrace(self._on_call)
        return self

    def __exit__(self, *exc) -> None:
        if not INTERPRETING:
            return
        sys.settrace(self._previous)
        self._interpreter.ReduceScanOpInterface.apply = self._apply
        self._end_program()

    def _end_program(self) -> None:
        if self._program is not None:
            self.scans = self._scanned if self.scans is None else min(self.scans, self._scanned)
            self._program = None

    def _on_call(self, frame, event, arg):
        if frame.f_globals is not self.home:
            return None
        if self._program is None:
            if frame.f_back is None or frame.f_back.f_code is not self._grid_call:
                return self._host
            self._program, self._now, self._scanned = frame, 0, 0
        frame.f_trace_opcodes, frame.f_trace_lines = True, False
        return self._kernel

    def _host(self, frame, event, arg):
        if event == "line":
            self.host_lines += 1
        return self._host

    def _kernel(self, frame, event, arg):
        if event == "opcode":
            code, i = frame.f_code.co_code, frame.f_lasti
            while code[i] == dis.EXTENDED_ARG:
                i += 2
            if code[i] in _BACKWARD:
                self._now += 1
                self.iterations = max(self.iterations, self._now)
                if self.budget is not None and self._now > self.budget:
                    self.exceeded = True
                    raise LoopBudget(f"a program ran more than {self.budget} loop iterations")
        elif event == "return" and frame is self._program:
            self._end_program()
        return self._kernel

    def summary(self) -> dict:
        on = INTERPRETING
        return {"loop_iterations": np.array(self.iterations if on else -1),
                "scans_per_program": np.array((self.scans or 0) if on else -1),
                "host_lines": np.array(self.host_lines if on else -1),
                "loop_budget": np.array(-1 if self.budget is None else self.budget),
                "loop_budget_exceeded": np.array(self.exceeded)}
