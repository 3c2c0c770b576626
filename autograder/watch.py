"""Watching what a learner's function does while it runs, beyond its return value.

One place for the recorders every chapter's runs use (they run in the learner's kernel, so they
live outside autograder/reference/): `TritonLaunches` counts Triton kernel launches, `OpRecorder`
measures the torch ops run outside them, `HostPeak` the Python and NumPy memory, `count_lines` the
work done in Python (lines run in the learner's own functions; work inside C builtins is not
counted, so cost rules name the builtins they refuse). Their readings
are outputs like any other: the grader judges them in its own process.
"""
import sys
import tracemalloc
import weakref

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


class TritonLaunches:
    """Counts `kernel[grid](...)` launches (and the kernels' names) while active; `running` is
    true inside a launch, so that an op recorder can leave the kernel's own work out."""

    def __init__(self):
        self.count, self.names, self.depth = 0, set(), 0

    @property
    def running(self) -> bool:
        return self.depth > 0

    def __enter__(self) -> "TritonLaunches":
        self._original = original = triton.runtime.jit.KernelInterface.__getitem__
        watch = self

        def launching(kernel, grid):
            launcher = original(kernel, grid)
            watch.names.add(getattr(getattr(kernel, "fn", kernel), "__name__", type(kernel).__name__))

            def launch(*args, **kwargs):
                watch.count += 1
                watch.depth += 1
                try:
                    return launcher(*args, **kwargs)
                finally:
                    watch.depth -= 1
            return launch

        triton.runtime.jit.KernelInterface.__getitem__ = launching
        return self

    def __exit__(self, *exc) -> None:
        triton.runtime.jit.KernelInterface.__getitem__ = self._original


_FACTORIES = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like",
              "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like", "new_full", "scalar_tensor"}


def _storage(t: torch.Tensor):
    try:
        s = t.untyped_storage()
        return s.data_ptr(), s.nbytes()
    except (RuntimeError, NotImplementedError):
        return None, 0


class OpWatch(TorchDispatchMode):
    """The torch ops a call runs outside its Triton kernel launches: a subclass says what to record
    of each in `on_op(name, func, args, kwargs, out)`. `launches` counts the Triton launches. The
    first op under a dispatch mode imports parts of torch (tens of MB); `__enter__` runs it
    unrecorded, so no measure charges it to the learner."""

    def __init__(self):
        super().__init__()
        self._triton = TritonLaunches()
        self._warming = False

    def on_op(self, name: str, func, args, kwargs, out) -> None:
        raise NotImplementedError

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not (self._triton.running or self._warming):
            self.on_op(func.overloadpacket.__name__, func, args, kwargs or {}, out)
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
