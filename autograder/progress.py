"""`make progress` (`python -m autograder progress [DIR]`): where a learner stands before handing in.

Runs every exercise notebook in DIR (default `my-exercises/`), each in a fresh kernel with the
course's cell limit, and prints one table: chapter, exercise, points, and its state from the
visible checks alone: `passed`, `failed` (with the first failing assert's message),
`not attempted` (the stub still raises NotImplementedError), or `not run` (an earlier cell took
the kernel down). The grader adds hidden cases, so `passed` here is necessary, not sufficient. A
file that is not a readable exercise notebook is listed, never fatal.
"""
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder import notebooks

CELL_LIMIT = 120.0  # seconds a visible test cell may take on a laptop


@dataclass
class Line:
    notebook: str
    chapter: str
    exercise: str
    points: float
    state: str
    message: str = ""


def _state(solution, test) -> tuple[str, str]:
    for run in (solution, test):
        if run is not None and run.ename == "NotImplementedError":
            return "not attempted", ""
    if test is None or test.status == "not_run":
        return "not run", "an earlier cell stopped the notebook"
    if test.status == "ok":
        return "passed", ""
    if test.status == "timeout":
        return "failed", f"the test cell ran past {CELL_LIMIT:.0f} s"
    first = (test.evalue or test.ename or test.status).strip().splitlines()
    return "failed", f"{test.ename}: {first[0] if first else ''}"[:200]


def check_notebook(path: Path) -> list[Line]:
    from autograder.execute import execute

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # not JSON, not a notebook: say so and go on
        return [Line(path.name, "?", "-", 0, "unreadable", f"{type(e).__name__}: {str(e)[:120]}")]
    chapter = notebooks.chapter_of(nb) or path.stem
    code = [c for c in nb.cells if c.cell_type == "code"]
    tests = [c for c in code if notebooks.is_test(c)]
    if not tests:
        return [Line(path.name, chapter, "-", 0, "unreadable", "no graded test cells: is this an exercise notebook?")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    with tempfile.TemporaryDirectory() as tmp:
        runs = execute([c.source for c in code], cwd=str(path.parent if path.parent.exists() else tmp), env=env,
                       cell_timeout=CELL_LIMIT, notebook_timeout=CELL_LIMIT * len(code))
    by_id = {notebooks.grade_id(c): r for c, r in zip(code, runs)}
    lines = []
    for cell in tests:
        gid = notebooks.grade_id(cell)
        name = gid.removeprefix("test_")
        state, message = _state(by_id.get(name), by_id.get(gid))
        points = float(notebooks.meta(cell).get("points", 0))
        lines.append(Line(path.name, chapter, name, points, state, message))
    return lines


def table(lines: list[Line]) -> str:
    rows = [f"{'notebook':<28} {'chapter':<20} {'exercise':<30} {'points':>6}  state"]
    for ln in lines:
        rows.append(f"{ln.notebook:<28} {ln.chapter:<20} {ln.exercise:<30} {ln.points:>6g}  {ln.state}"
                    + (f": {ln.message}" if ln.message else ""))
    got = sum(ln.points for ln in lines if ln.state == "passed")
    total = sum(ln.points for ln in lines)
    counts = {s: sum(ln.state == s for ln in lines) for s in ("passed", "failed", "not attempted", "not run", "unreadable")}
    rows.append(f"\n{got:g} of {total:g} points pass their visible checks; "
                + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return "\n".join(rows)


def main(folder: Path, as_json: Path | None = None) -> int:
    if not folder.is_dir():
        print(f"error: {folder} is not a folder (make lab makes my-exercises/ from exercises/)", file=sys.stderr)
        return 2
    paths = sorted(folder.glob("*.ipynb"))
    if not paths:
        print(f"error: {folder} holds no .ipynb notebooks", file=sys.stderr)
        return 2
    lines = []
    for k, path in enumerate(paths, 1):
        print(f"[{k}/{len(paths)}] running {path.name} ...", file=sys.stderr, flush=True)
        lines += check_notebook(path)
    print(table(lines))
    if as_json:
        as_json.write_text(json.dumps([ln.__dict__ for ln in lines], indent=1))
    return 0
