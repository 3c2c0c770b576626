"""The one timing harness of the book's pages: what machine this is, and how long a call takes.

Chapters call these from hidden-input cells, so that every page times its code the same way and
states the machine the numbers came from. `make bench` (autograder/bench.py) is separate: it
records GPU figures for the "GPU at scale" sections.
"""
import os
import platform
import time

import numpy as np
import torch


def cpu_name() -> str:
    """The CPU model, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine(triton_too: bool = False) -> str:
    """One line naming the machine and the versions that produced a page's measurements; the
    Triton line only for chapters that run Triton kernels."""
    line = (f"CPU: {cpu_name()} ({platform.machine()}), {os.cpu_count()} logical cores; Python "
            f"{platform.python_version()}, NumPy {np.__version__}, torch {torch.__version__}")
    if triton_too:
        from autograder.device import describe
        import triton

        line += f", triton {triton.__version__}; Triton kernels run on: {describe()}"
    return line


def best_time(fn, make_args=None, reps: int = 5, budget: float = 0.15, warmup: bool = True) -> float:
    """Best of at least `reps` timed calls of fn(*make_args()) (or fn()), in seconds, going on up to
    4 * reps calls while less than `budget` seconds were spent. `make_args`, when given, rebuilds
    the arguments untimed before every call (for functions that overwrite their input)."""
    args = make_args or (lambda: ())
    if warmup:
        fn(*args())
    best, spent, done = float("inf"), 0.0, 0
    while done < reps or (spent < budget and done < 4 * reps):
        a = args()
        t0 = time.perf_counter()
        fn(*a)
        dt = time.perf_counter() - t0
        best, spent, done = min(best, dt), spent + dt, done + 1
    return best
