"""`python -m autograder release`: regenerate exercises/NN-slug.ipynb from solutions/NN-slug.md.

The release is what `nbgrader generate_assignment` makes of the source notebook (solutions
replaced by stubs, hidden tests removed, cells locked, checksums added), with outputs cleared.

With it goes each chapter's default cell limit for grading, in exercises/cell-limits.json: the
seconds the slowest cell of the solved source notebook (solutions, visible and hidden tests) takes
on the releasing machine, times FACTOR, rounded up to STEP and at least FLOOR. One learner's infinite loop then
costs a batch about as long as ten correct solutions, not a flat two minutes per cell.
`--cell-timeout` overrides it for a run.
"""
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from autograder import chapters
from autograder.notebooks import source_notebook


def build(slug: str, out: Path) -> Path:
    """Write the release notebook of `slug` to `out` (a file path) and return it."""
    nb = source_notebook(slug)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "source", slug, f"{slug}.ipynb")
        src.parent.mkdir(parents=True)
        nbformat.write(nb, src)
        cmd = [
            sys.executable, "-m", "nbgrader", "generate_assignment", slug, "--force", "--no-db",
            f"--CourseDirectory.root={tmp}", "--log-level=ERROR",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment failed for {slug}:\n{done.stderr[-3000:]}")
        released = nbformat.read(Path(tmp, "release", slug, f"{slug}.ipynb"), as_version=4)
    for cell in released.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(released, out)
    return out


FACTOR, STEP, FLOOR = 10, 10, 30  # limit = max(FLOOR, FACTOR x the slowest cell, rounded up to STEP)
DEFAULT_LIMIT = 120.0  # seconds per cell for a chapter with no recorded limit


def measure_limit(slug: str) -> dict:
    """Run the source notebook (the solution, visible and hidden tests: what grading runs for a
    learner who got everything right) in a fresh kernel, time each cell, and derive the limit."""
    from autograder import verifier
    from autograder.execute import execute

    nb = source_notebook(slug)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
        env.update({verifier.RECORD_VAR: tmp, verifier.SEED_VAR: "0", "MPLBACKEND": "Agg"})
        runs = execute([c.source for c in cells], cwd=tmp, env=env, cell_timeout=600, notebook_timeout=1800)
    failed = [f"{c.metadata['nbgrader']['grade_id']}: {r.status} {r.ename}" for c, r in zip(cells, runs) if r.status != "ok"]
    if failed:
        raise RuntimeError(f"{slug}: the source notebook fails, so no cell limit can be measured: {failed}")
    seconds = {c.metadata["nbgrader"]["grade_id"]: round(r.seconds, 2) for c, r in zip(cells, runs)}
    slowest = max(seconds.values(), default=0.0)
    return {"cell_timeout": max(FLOOR, STEP * math.ceil(FACTOR * slowest / STEP)), "slowest_cell_seconds": slowest,
            "rule": f"max({FLOOR}, {FACTOR} x the slowest cell of the solved notebook, rounded up to {STEP}) s",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}


def cell_limit(slug: str) -> float:
    """The chapter's default seconds per graded cell (DEFAULT_LIMIT when none was recorded)."""
    try:
        return float(json.loads(chapters.cell_limits().read_text())[slug]["cell_timeout"])
    except (OSError, ValueError, KeyError):
        return DEFAULT_LIMIT


def record_limits(slugs: list[str]) -> Path:
    path = chapters.cell_limits()
    measured = {}
    for slug in slugs:
        measured[slug] = measure_limit(slug)
        print(f"{slug}: cell limit {measured[slug]['cell_timeout']} s (slowest cell of the solved notebook "
              f"{measured[slug]['slowest_cell_seconds']:.1f} s)")
    try:  # read only now: a release of another chapter may have written it while these were measured
        limits = json.loads(path.read_text())
    except (OSError, ValueError):
        limits = {}
    limits.update(measured)
    known = set(chapters.slugs())
    path.write_text(json.dumps({s: limits[s] for s in sorted(limits) if s in known}, indent=1) + "\n")
    return path


def release(slugs: list[str]) -> list[Path]:
    paths = [build(slug, chapters.release(slug)) for slug in slugs]
    return paths + [record_limits(slugs)]
