"""Shared helpers: learners' notebooks built from the release, and one graded class per session.

A "solved" notebook is notebooks.solved_notebook: the release with the source's solutions in it.
"""
import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import chapters, notebooks

ROOT = chapters.ROOT
# nbgrader's Gradebook runs `alembic` from this environment's bin/, which `make test` does not put
# on PATH (it calls .venv/bin/python directly)
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def release(slug: str) -> nbformat.NotebookNode:
    return nbformat.read(chapters.release(slug), as_version=4)


solved = notebooks.solved_notebook


def with_cell(nb, grade_id: str, source: str):
    nb = copy.deepcopy(nb)
    cell = next(c for c in nb.cells if notebooks.grade_id(c) == grade_id)
    cell.source = source
    return nb


def wrong_submissions(slug: str) -> list[tuple[str, str, str, str]]:
    """(name, cell, breaks, source) for every file under tests/submissions/<slug>/."""
    out = []
    for path in sorted((ROOT / "tests" / "submissions" / slug).glob("*.py")):
        text = path.read_text()
        cell = re.search(r"^# cell: (\S+)", text, re.M).group(1)
        breaks = re.search(r"^# breaks: (\S+)", text, re.M).group(1)
        out.append((path.stem, cell, breaks, text))
    return out


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def run_cli(*args, timeout=1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def read_grades(out: Path) -> dict[tuple[str, str, str], dict]:
    """(student_id, chapter, grade_id) -> row of grades.csv."""
    import csv

    with (out / "grades.csv").open() as f:
        return {(r["student_id"], r["chapter"], r["grade_id"]): r for r in csv.DictReader(f)}


@pytest.fixture(scope="session")
def points():
    """{slug: {test grade_id: points}} from the source notebooks."""
    return {slug: dict(notebooks.exercises(notebooks.source_notebook(slug))) for slug in chapters.slugs()}
