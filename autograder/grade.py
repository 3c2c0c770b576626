"""`python -m autograder grade SUBMISSIONS --out OUT`: grade a class, one submission at a time.

SUBMISSIONS/<student_id>/<slug>.ipynb -> OUT/grades.csv, OUT/feedback/<student_id>/<slug>.html,
OUT/report.png, OUT/runs.jsonl and the nbgrader gradebook. A submission can cost only its own
points: whatever it does, it gets a status and the batch goes on.

Statuses, per graded cell: graded (the cell ran; points if it passed in the kernel *and* the
grader's own comparison of the recorded outputs agrees), timeout, crashed, not_gradable.
"""
import ast
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder import chapters, notebooks
from autograder.execute import execute
from autograder.verifier import RECORD_VAR, SEED_VAR, check_record
from autograder import forbidden


@dataclass
class Row:
    student_id: str
    chapter: str
    grade_id: str
    points: float
    max_points: float
    status: str
    reason: str
    stdout: str = ""
    visible: str = ""  # the test cell without its hidden block, for feedback


@dataclass
class Release:
    """What one chapter's grading needs, loaded once per run."""

    slug: str
    source: nbformat.NotebookNode
    release: nbformat.NotebookNode
    sha256: str

    @classmethod
    def load(cls, slug: str) -> "Release":
        digest = hashlib.sha256(chapters.source(slug).read_bytes() + chapters.release(slug).read_bytes())
        return cls(slug, notebooks.source_notebook(slug), nbformat.read(chapters.release(slug), as_version=4),
                   digest.hexdigest())


def seed_for(student_id: str, release: Release) -> int:
    """Random cases differ per learner and per release, and a regrade draws the same ones."""
    return int(hashlib.sha256(f"{student_id}/{release.slug}/{release.sha256}".encode()).hexdigest()[:8], 16)


def _rows(student_id: str, release: Release, status: str, reason: str) -> list[Row]:
    return [Row(student_id, release.slug, gid, 0.0, pts, status, reason)
            for gid, pts in notebooks.exercises(release.source)]


def _learner_code(nb, source) -> str:
    """All code the learner wrote: solution cells and cells of their own."""
    instructor = {notebooks.grade_id(c) for c in source.cells if not notebooks.is_solution(c)}
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code" and notebooks.grade_id(c) not in instructor)


def _imports_grader(code: str) -> bool:
    try:
        return bool(forbidden.uses(code, {"autograder"}))
    except SyntaxError:
        return False


def _static_refusal(slug: str, test_id: str, nb) -> str | None:
    """The grader's own reading of the learner's solution cell for forbidden names."""
    name = test_id.removeprefix("test_")
    ex = chapters.exercise(slug, name)
    cell = next((c for c in nb.cells if notebooks.grade_id(c) == name), None)
    if cell is None or not ex.forbidden:
        return None
    try:
        found = forbidden.uses(cell.source, set(ex.forbidden))
    except SyntaxError:
        return None  # it cannot run either; the kernel's error says why
    return f"{name} uses `{found[0][0]}`, which this exercise forbids: {ex.why}" if found else None


def grade_submission(student_id: str, path: Path, release: Release, *, cell_timeout: float,
                     notebook_timeout: float) -> list[Row]:
    try:
        submission = notebooks.read_submission(path)
    except ValueError as e:
        return _rows(student_id, release, "not_gradable", str(e))
    nb, notes = notebooks.assemble(submission, release.source, release.release)
    seed = seed_for(student_id, release)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    work = Path(tempfile.mkdtemp(prefix="grade-"))
    try:
        records = work / "records"
        records.mkdir()
        env = dict(os.environ, **{
            SEED_VAR: str(seed), RECORD_VAR: str(records), "MPLBACKEND": "Agg",
            "TRITON_CACHE_DIR": str(work / "triton"), "TORCHINDUCTOR_CACHE_DIR": str(work / "inductor"),
        })
        runs = execute([c.source for c in code_cells], cwd=str(work), env=env,
                       cell_timeout=cell_timeout, notebook_timeout=notebook_timeout)
        by_id = {notebooks.grade_id(c): r for c, r in zip(code_cells, runs)}
        first_bad = next(((notebooks.grade_id(c) or "a cell of your own", r) for c, r in zip(code_cells, runs)
                          if r.status in ("timeout", "crashed")), None)
        cheat = _imports_grader(_learner_code(nb, release.source))
        rows = []
        for test_id, points in notebooks.exercises(release.source):
            run = by_id[test_id]
            row = Row(student_id, release.slug, test_id, 0.0, points, "graded", "",
                      stdout=run.stdout, visible=notebooks.HIDDEN.sub("", next(
                          c.source for c in release.source.cells if notebooks.grade_id(c) == test_id)).strip())
            if run.status == "ok":
                verdict = ("your code imports the grader (autograder), which submissions may not do" if cheat
                           else _static_refusal(release.slug, test_id, nb)
                           or check_record(release.slug, test_id.removeprefix("test_"), seed,
                                           records / f"{test_id.removeprefix('test_')}.npz"))
                row.points, row.reason = (points, "") if verdict is None else (0.0, verdict)
            elif run.status == "error":
                row.reason = f"{run.ename}: {run.evalue}".strip()
            elif run.status == "timeout":
                row.status, row.reason = "timeout", f"the cell ran past its limit of {cell_timeout:g} s"
                if run.evalue:
                    row.reason += f" ({run.evalue})"
            elif run.status == "crashed":
                row.status, row.reason = "crashed", "the kernel died while running this cell"
            else:  # not run: something before it timed out or crashed
                cause_id, cause = first_bad if first_bad else ("?", None)
                row.status = cause.status if cause else "crashed"
                row.reason = f"not run: the kernel was {'killed' if row.status == 'timeout' else 'lost'} in {cause_id}"
            mine = [note for gid, note in notes if gid in (test_id, test_id.removeprefix("test_"))]
            if mine:
                row.reason = "; ".join(filter(None, [row.reason, *mine]))
            rows.append(row)
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def find_submissions(root: Path, only: list[str] | None) -> list[tuple[str, str, Path]]:
    """(student_id, slug, path) for every SUBMISSIONS/<student_id>/<file>.ipynb, sorted."""
    found = []
    for student in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for nb in sorted(student.glob("*.ipynb")):
            if only is None or nb.stem in only:
                found.append((student.name, nb.stem, nb))
    return found


def sha256_file(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""
