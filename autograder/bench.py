"""`make bench`: time each chapter's references on this device.

On CUDA the figures are recorded in book/data/<slug>.json (device, versions, date) for the chapter
to plot. On a CPU they are printed and nothing is written, so a CPU number can never pass for a
GPU one. A chapter takes part by defining bench(timer, cuda) -> dict of lists in its reference.
"""
import datetime
import json
import time

import torch

from autograder import chapters
from autograder.device import CUDA, describe


def timer(fn, repeats: int = 5) -> float:
    """Median seconds of fn(); CUDA events through triton.testing.do_bench on a GPU."""
    if CUDA:
        import triton.testing

        return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median") / 1e3
    fn()  # warm up (compiles nothing on the CPU, but fills caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def bench(slug: str) -> dict | None:
    module = chapters.reference(slug)
    if not hasattr(module, "bench"):
        print(f"{slug}: no benchmark")
        return None
    figures = module.bench(timer, CUDA)
    print(f"{slug} on {describe()}:")
    for key, values in figures.items():
        shown = values if isinstance(values, str) else " ".join(f"{v:.4g}" for v in values)
        print(f"  {key:>20}: {shown}")
    if not CUDA:
        print("  (CPU: printed only; book/data is written on a CUDA device)")
        return figures
    import triton

    record = {
        "chapter": slug,
        "device": describe(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "figures": figures,
    }
    path = chapters.data(slug)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"  wrote {path}")
    return figures
