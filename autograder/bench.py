"""`make bench`: time each chapter's references on this device.

On CUDA the figures are recorded in book/data/<slug>.json (device, versions, date) for the chapter
to plot. On a CPU they are printed and nothing is written, so a CPU number can never pass for a
GPU one. A chapter takes part by defining bench(timer, cuda) -> dict of lists in its reference.
"""
import datetime
import json
import time
from pathlib import Path

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
        shown = " ".join(f"{v:.4g}" for v in values) if isinstance(values, (list, tuple)) else values
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


# ---------------------------------------------------------------- make bench-grade


def _class(root: Path, learners: int) -> dict[str, str]:
    """A generated class for chapter 01: mostly right, some wrong, a few that time out."""
    import re

    import nbformat

    from autograder import notebooks

    slug = "01-merge"
    good = notebooks.solved_notebook(slug)
    wrong = []
    for path in sorted((chapters.ROOT / "tests" / "submissions" / slug).glob("*.py")):
        text = path.read_text()
        wrong.append((re.search(r"^# cell: (\S+)", text, re.M).group(1), text))
    loops = ("merge", "def merge(nums1, m, nums2, n):\n    while True:\n        pass\n")
    kinds = {}
    for k in range(learners):
        nb, kind = good, "right"
        if k % 10 == 9:
            (cell, source), kind = loops, "times out"
        elif k % 10 in (3, 6):
            (cell, source), kind = wrong[k % len(wrong)], "wrong"
        if kind != "right":
            nb = nbformat.from_dict(json.loads(nbformat.writes(good)))
            next(c for c in nb.cells if notebooks.grade_id(c) == cell).source = source
        path = root / f"learner-{k:02d}" / f"{slug}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
        kinds[path.parent.name] = kind
    return kinds


def bench_grade(learners: int = 40, workers: int = 2, cell_timeout: int = 20, ray: bool = True) -> dict:
    """Grade one generated class with this grader (`workers` processes), with stock
    `nbgrader autograde` (sequential) and, if `ray`, through `--ray` on a two-node Ray cluster on
    this machine (one CPU per node, the same parallelism as `--workers 2`), in one run; record
    bench/grading.json."""
    import os
    import platform
    import shutil
    import subprocess
    import sys
    import tempfile

    import nbformat
    import nbgrader

    from autograder import notebooks, sandbox

    slug = "01-merge"
    tmp = Path(tempfile.mkdtemp(prefix="bench-grade-"))
    subs = tmp / "submissions"
    kinds = _class(subs, learners)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")

    started = time.time()
    subprocess.run([sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(tmp / "out"),
                    "--workers", str(workers), "--cell-timeout", str(cell_timeout)],
                   check=True, env=env, capture_output=True, cwd=chapters.ROOT)
    ours = time.time() - started
    runs = [json.loads(line) for line in (tmp / "out" / "runs.jsonl").read_text().splitlines()]
    overhead = [r["seconds"] - r.get("cells_seconds", 0) for r in runs]

    ray_record = _bench_ray(subs, tmp / "ray-out", cell_timeout, env, ours) if ray else {"ray": "not measured"}

    course = tmp / "course"
    nbformat.write(notebooks.source_notebook(slug), _mkparent(course / "source" / slug / f"{slug}.ipynb"))
    stock = [sys.executable, "-m", "nbgrader"]
    common = [f"--CourseDirectory.root={course}", f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}"]
    subprocess.run([*stock, "generate_assignment", slug, "--force", *common], check=True, env=env,
                   capture_output=True, cwd=course)
    for student in kinds:
        shutil.copy(subs / student / f"{slug}.ipynb", _mkparent(course / "submitted" / student / slug / f"{slug}.ipynb"))
    started = time.time()
    subprocess.run([*stock, "autograde", slug, "--force", *common, f"--Execute.timeout={cell_timeout}",
                    "--Execute.interrupt_on_timeout=True"], env=env, capture_output=True, cwd=course)
    theirs = time.time() - started

    record = {
        "what": f"grading {learners} chapter-01 submissions ({sum(k == 'right' for k in kinds.values())} right, "
                f"{sum(k == 'wrong' for k in kinds.values())} wrong, {sum(k == 'times out' for k in kinds.values())} "
                f"timing out at {cell_timeout} s per cell)",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nbgrader": nbgrader.__version__, "sandbox": sandbox.describe(), "workers": workers,
        "ours_seconds": round(ours, 1), "ours_seconds_per_submission": round(ours / learners, 2),
        "stock_nbgrader_seconds": round(theirs, 1), "stock_seconds_per_submission": round(theirs / learners, 2),
        "throughput_vs_stock": round(theirs / ours, 2),
        "overhead_seconds_per_submission": {"mean": round(sum(overhead) / len(overhead), 2), "max": round(max(overhead), 2)},
        **ray_record,
    }
    path = chapters.ROOT / "bench" / "grading.json"
    _mkparent(path).write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)
    return record


def _bench_ray(subs: Path, out: Path, cell_timeout: int, env: dict, local_seconds: float) -> dict:
    """The same class through `--ray` on raygrade.LoopbackCluster (two nodes of one CPU each, in a
    loopback-only network namespace; needs root). The cluster's start is timed apart: a cluster
    is started once per term, not once per batch."""
    import os
    import subprocess
    import sys

    from autograder.raygrade import LoopbackCluster

    if os.geteuid() != 0:
        return {"ray": "not measured: a loopback-only Ray cluster needs root"}
    started = time.time()
    with LoopbackCluster() as cluster:
        up = time.time() - started
        started = time.time()
        subprocess.run(cluster.cmd(sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out),
                                   "--ray", cluster.address, "--cell-timeout", str(cell_timeout)),
                       check=True, env={**env, **cluster.env}, capture_output=True, cwd=chapters.ROOT)
        seconds = time.time() - started
    nodes = {json.loads(line)["node"] for line in (out / "runs.jsonl").read_text().splitlines()}
    return {"ray": "two Ray nodes of 1 CPU each on this machine (loopback only), the same class",
            "ray_nodes_used": len(nodes), "ray_cluster_start_seconds": round(up, 1), "ray_seconds": round(seconds, 1),
            "ray_seconds_per_submission": round(seconds / len(list(subs.glob("*/*.ipynb"))), 2),
            "ray_throughput_vs_workers": round(local_seconds / seconds, 2),
            "ray_overhead_percent": round(100 * (seconds / local_seconds - 1), 1)}


def _mkparent(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
