"""Notebooks: the instructor's source (from solutions/NN-slug.md), its checks, and the notebook
that grading executes, assembled from a learner's submission.

Every cell of a source notebook carries nbgrader metadata: solution cells (the learner writes
them), graded test cells, and everything else locked read-only with a generated id, so that each
instructor cell can be found again in a learner's copy by its grade_id.
"""
import copy
import json
import re
from pathlib import Path

import jupytext
import nbformat

from autograder import chapters

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS\n?", re.S)


class SourceError(ValueError):
    """The instructor's source notebook breaks the chapter contract."""


def meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_id(cell) -> str | None:
    return meta(cell).get("grade_id")


def is_solution(cell) -> bool:
    return bool(meta(cell).get("solution"))


def is_test(cell) -> bool:
    return bool(meta(cell).get("grade")) and not meta(cell).get("solution")


def is_manual(cell) -> bool:
    """A written answer graded by hand in the formgrader (nbgrader: solution and grade, no tests)."""
    return bool(meta(cell).get("grade")) and bool(meta(cell).get("solution"))


CHAPTER_KEY = "autograder"  # notebook metadata {"autograder": {"chapter": slug}}, set in source and release


def chapter_of(nb) -> str | None:
    """The chapter a notebook belongs to, from its metadata (None when it carries none)."""
    found = nb.get("metadata", {}).get(CHAPTER_KEY, {})
    return found.get("chapter") if isinstance(found, dict) else None


SETUP_ID = "setup"


def setup_cell() -> nbformat.NotebookNode:
    """The first code cell of every exercise notebook, the same in every chapter: outside the
    course's tree (Colab, a bare Jupyter) it installs the learner's edition of the course's package
    (chapters.course_package(), or $COURSE_PACKAGE) without its dependencies, which such a
    Jupyter already has (torch, triton); then autograder.device picks CUDA when there is one."""
    source = f"""# Set-up, the same in every chapter. Outside the course's own tree (on Colab, say), this
# installs the course's package first: {chapters.course_package()}
import importlib.util, os, subprocess, sys

if importlib.util.find_spec("autograder") is None:
    package = os.environ.get("COURSE_PACKAGE", "{chapters.course_package()}")
    print("installing the course's package from", package)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", package],
                   check=True)
    importlib.invalidate_caches()
import autograder.device

print("running on", autograder.device.describe())"""
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": SETUP_ID, "locked": True, "schema_version": 3,
                                 "solution": False}
    return cell


def source_notebook(slug: str) -> nbformat.NotebookNode:
    """solutions/<slug>.md as an nbgrader source notebook: checked, every cell identified, and the
    set-up cell (setup_cell) first."""
    path = chapters.source(slug)
    nb = jupytext.read(path)
    for k, cell in enumerate(nb.cells):
        if "nbgrader" not in cell.metadata:
            cell.metadata["nbgrader"] = {
                "grade": False, "grade_id": f"cell-{k:02d}", "locked": True,
                "schema_version": 3, "solution": False,
            }
        cell["id"] = grade_id(cell)  # deterministic cell ids: releases are reproducible
    first = next((k for k, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first, setup_cell())
    nb.cells[first]["id"] = SETUP_ID
    nb.metadata[CHAPTER_KEY] = {"chapter": slug}  # how a file from an LMS download names its chapter
    check_source(slug, nb, path)
    return nb


def check_source(slug: str, nb, path: Path) -> None:
    """Solution cell grade_id = the function it defines; its test cell = test_<name>, holding
    visible asserts and a hidden block that is one call verify(slug, name, name)."""
    ids = [grade_id(c) for c in nb.cells]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise SourceError(f"{path}: duplicated grade_id {sorted(dupes)}")
    for cell in nb.cells:
        name = grade_id(cell)
        if is_manual(cell):
            if not meta(cell).get("points", 0) > 0:
                raise SourceError(f"{path}: written answer {name!r} has no points")
            if "### BEGIN SOLUTION" not in cell.source:
                raise SourceError(f"{path}: written answer {name!r} needs its model answer and rubric "
                                  "in a ### BEGIN SOLUTION block")
            continue
        if is_solution(cell):
            defs = re.findall(r"^(?:def|class) (\w+)\b", cell.source, re.M)
            if name not in defs:
                raise SourceError(f"{path}: solution cell {name!r} must define a function or class named {name}")
            if f"test_{name}" not in ids:
                raise SourceError(f"{path}: solution cell {name!r} has no test cell test_{name}")
            if "### BEGIN SOLUTION" not in cell.source:
                raise SourceError(f"{path}: solution cell {name!r} has no ### BEGIN SOLUTION block")
        if is_test(cell):
            target = name.removeprefix("test_")
            hidden = HIDDEN.findall(cell.source)
            call = f'verify("{slug}", "{target}", {target})'
            if not name.startswith("test_") or target not in ids:
                raise SourceError(f"{path}: test cell {name!r} must be named test_<solution cell's grade_id>")
            if len(hidden) != 1 or call not in hidden[0]:
                raise SourceError(f"{path}: test cell {name!r} needs one hidden block calling {call}")
            if "autograder" in HIDDEN.sub("", cell.source):
                raise SourceError(f"{path}: test cell {name!r} imports autograder outside its hidden block")
            if not meta(cell).get("points", 0) > 0:
                raise SourceError(f"{path}: test cell {name!r} has no points")


SOLUTION_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*(\n|$)", re.M)


def solved_notebook(slug: str) -> nbformat.NotebookNode:
    """The release with every solution cell filled in from the source (markers dropped): what a
    learner who got everything right hands in."""
    answers = {grade_id(c): SOLUTION_MARKER.sub("", c.source) for c in source_notebook(slug).cells if is_solution(c)}
    nb = nbformat.read(chapters.release(slug), as_version=4)
    for cell in nb.cells:
        if grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return nb


def exercises(nb) -> list[tuple[str, float]]:
    """(test cell grade_id, points) in notebook order: the autograded cells."""
    return [(grade_id(c), float(meta(c)["points"])) for c in nb.cells if is_test(c)]


def written(nb) -> list[tuple[str, float]]:
    """(grade_id, points) of the cells graded by hand (written answers), in notebook order."""
    return [(grade_id(c), float(meta(c)["points"])) for c in nb.cells if is_manual(c)]


def read_submission(path: Path) -> nbformat.NotebookNode:
    """A learner's notebook, or ValueError saying in one line why it cannot be graded."""
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"the file is not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict) or "cells" not in data or not isinstance(data["cells"], list):
        raise ValueError("the file is JSON but not a notebook (no list of cells)")
    try:
        nb = nbformat.reads(raw, as_version=4)
        nbformat.validate(nb)
    except Exception as e:
        raise ValueError(f"the notebook is malformed: {str(e).splitlines()[0][:200]}") from None
    return nb


def assemble(submission, source, release) -> tuple[nbformat.NotebookNode, list[tuple[str, str]]]:
    """The notebook to execute, and (grade_id, note) on what was restored.

    The instructor's cells (tests with their hidden blocks, setup, prose) come from the source;
    solution cells from the learner (the release's stub if the learner's is missing); the
    learner's own extra cells stay where they were, after the instructor cell they followed.
    """
    known = {grade_id(c) for c in source.cells}
    stubs = {grade_id(c): c for c in release.cells if is_solution(c)}
    learner: dict[str, object] = {}
    extras: dict[str | None, list] = {}
    anchor, notes = None, []
    for cell in submission.cells:
        gid = grade_id(cell)
        if gid in known and gid not in learner:
            learner[gid] = cell
            anchor = gid
        elif gid in known:
            notes.append((gid, f"cell {gid} appears twice; the first copy was graded"))
        else:
            extras.setdefault(anchor, []).append(cell)
    out = nbformat.v4.new_notebook(metadata=copy.deepcopy(source.metadata))
    out.cells.extend(copy.deepcopy(extras.get(None, [])))
    for cell in source.cells:
        gid = grade_id(cell)
        if is_solution(cell):
            mine = learner.get(gid)
            if mine is None:
                notes.append((gid, f"solution cell {gid} is missing; the unsolved stub was graded"))
            text = (mine if mine is not None else stubs[gid]).source
        else:
            mine = learner.get(gid)
            if is_test(cell) and mine is None:
                notes.append((gid, f"test cell {gid} was deleted; restored from the release"))
            elif is_test(cell) and (HIDDEN.sub("", mine.source).strip() != HIDDEN.sub("", cell.source).strip()
                                    or meta(mine).get("points") != meta(cell).get("points")):
                notes.append((gid, f"test cell {gid} was edited; restored from the release"))
            text = cell.source
        make = nbformat.v4.new_code_cell if cell.cell_type == "code" else nbformat.v4.new_markdown_cell
        out.cells.append(make(source=text, metadata=copy.deepcopy(cell.metadata)))
        out.cells.extend(copy.deepcopy(extras.get(gid, [])))
    return out, notes
