"""Grading a class through the CLI, as an instructor would: the solution scores full marks, the
untouched release scores 0 with status graded, each wrong submission loses exactly the points of
the exercise it breaks, and hostile or broken notebooks get a status without stopping the batch."""
import copy
import shutil

import nbformat
import pytest

from autograder import chapters, notebooks
from conftest import read_grades, release, run_cli, solved, with_cell, write, wrong_submissions

SLUG = "01-merge"
CELL_TIMEOUT = 20

LOOPS = "def merge(nums1, m, nums2, n):\n    while True:\n        pass\n"
STUBBORN = ("import time\n\ndef merge(nums1, m, nums2, n):\n    while True:\n        try:\n"
            "            time.sleep(0.05)\n        except KeyboardInterrupt:\n            pass\n")
RAISES = "def merge_path_partition(a, b, diag):\n    raise RuntimeError('not today')\n"
EXITS = "import os\n\ndef merge_path_partition(a, b, diag):\n    os._exit(1)\n"
PATCHES_NUMPY = ("import numpy as np\nnp.any = lambda *args, **kwargs: False  # make every check look clean\n\n"
                 "def merge(nums1, m, nums2, n):\n    nums1[m:] = nums2\n")
IMPORTS_GRADER = ("from autograder.reference.merge import merge_triton\n\n"
                  "def triton_merge(a, b):\n    return merge_triton(a, b)\n")


def _without(nb, grade_id):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if notebooks.grade_id(c) != grade_id]
    return nb


def _chapters_class() -> dict[tuple[str, str], object]:
    """(student_id, slug) -> notebook: for every chapter, its solution, its untouched release and
    its wrong submissions."""
    out = {}
    for slug in chapters.slugs():
        good = solved(slug)
        out[("solution", slug)] = good
        out[("untouched", slug)] = release(slug)
        for name, cell, _, src in wrong_submissions(slug):
            out[(f"wrong-{name}", slug)] = with_cell(good, cell, src)
    return out


def _hostile_class() -> dict[str, object]:
    """student_id -> chapter 01 notebook (or raw text for files that are not notebooks)."""
    good = solved(SLUG)
    wrong_merge = next(src for name, _, _, src in wrong_submissions(SLUG) if name == "merge_forgets_leftovers")
    edited = with_cell(with_cell(good, "merge", wrong_merge), "test_merge", "pass  # nothing to see here\n")
    duplicated = copy.deepcopy(good)
    k = next(i for i, c in enumerate(duplicated.cells) if notebooks.grade_id(c) == "merge")
    duplicated.cells.insert(k + 1, copy.deepcopy(duplicated.cells[k]))
    duplicated.cells[k + 1].source = wrong_merge
    duplicated.cells[k + 1].id = "a-copy-of-merge"
    helper = with_cell(good, "merge", "def merge(nums1, m, nums2, n):\n    merge_from_back(nums1, m, nums2, n)\n")
    k = next(i for i, c in enumerate(helper.cells) if notebooks.grade_id(c) == "merge")
    body = next(c.source for c in good.cells if notebooks.grade_id(c) == "merge").replace("def merge(", "def merge_from_back(")
    helper.cells.insert(k, nbformat.v4.new_code_cell(body))
    students = {
        "loops-forever": with_cell(good, "merge", LOOPS),
        "ignores-interrupts": with_cell(good, "merge", STUBBORN),
        "raises": with_cell(good, "merge_path_partition", RAISES),
        "exits": with_cell(good, "merge_path_partition", EXITS),
        "edited-test": edited,
        "deleted-test": _without(good, "test_merge_path_partition"),
        "duplicated-cell": duplicated,
        "helper-cell": helper,
        "patches-numpy": with_cell(good, "merge", PATCHES_NUMPY),
        "imports-grader": with_cell(good, "triton_merge", IMPORTS_GRADER),
        "invalid-json": '{"cells": [',
        "not-a-notebook": '["a", "list"]',
    }
    return students


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    subs, out = root / "submissions", root / "out"
    everyone = {**_chapters_class(), **{(student, SLUG): nb for student, nb in _hostile_class().items()}}
    for (student, slug), nb in everyone.items():
        path = subs / student / f"{slug}.ipynb"
        if isinstance(nb, str):
            path.parent.mkdir(parents=True)
            path.write_text(nb)
        else:
            write(nb, path)
    done = run_cli("grade", subs, "--out", out, "--cell-timeout", CELL_TIMEOUT, "--workers", 2)
    assert done.returncode == 0, f"the grader itself failed:\n{done.stderr[-4000:]}"
    return subs, out, read_grades(out), done


def _row(grades, student, grade_id, slug=SLUG):
    return grades[(student, slug, grade_id)]


@pytest.mark.parametrize("slug", chapters.slugs())
def test_solution_scores_full_marks(graded, points, slug):
    _, _, grades, _ = graded
    for gid, pts in points[slug].items():
        row = _row(grades, "solution", gid, slug)
        assert float(row["points"]) == pts and row["status"] == "graded", f"the solution lost {gid}: {row['reason']}"


@pytest.mark.parametrize("slug", chapters.slugs())
def test_untouched_release_scores_zero_and_is_graded(graded, points, slug):
    _, _, grades, _ = graded
    for gid in points[slug]:
        row = _row(grades, "untouched", gid, slug)
        assert (float(row["points"]), row["status"]) == (0.0, "graded"), row
        assert "NotImplementedError" in row["reason"]


@pytest.mark.parametrize("slug,name,breaks", [(slug, w[0], w[2]) for slug in chapters.slugs()
                                              for w in wrong_submissions(slug)])
def test_wrong_submission_loses_exactly_its_points(graded, points, slug, name, breaks):
    _, _, grades, _ = graded
    student = f"wrong-{name}"
    for gid, pts in points[slug].items():
        row = _row(grades, student, gid, slug)
        expected = 0.0 if gid == breaks else pts
        assert float(row["points"]) == expected, (
            f"{name} should {'lose' if gid == breaks else 'keep'} the points of {gid}; got {row['points']} ({row['reason']})"
        )
    assert _row(grades, student, breaks, slug)["reason"], "a lost point must come with a reason"


EXPECTED = {  # student: {grade_id: (points, status)}; omitted cells keep their full points
    "loops-forever": {"test_merge": (0, "timeout")},
    "ignores-interrupts": {"test_merge": (0, "timeout"), "test_merge_path_partition": (0, "timeout"),
                           "test_triton_merge": (0, "timeout")},
    "raises": {"test_merge_path_partition": (0, "graded")},
    "exits": {"test_merge_path_partition": (0, "crashed"), "test_triton_merge": (0, "crashed")},
    "edited-test": {"test_merge": (0, "graded")},
    "deleted-test": {},
    "duplicated-cell": {},
    "helper-cell": {},
    "patches-numpy": {"test_merge": (0, "graded")},
    "imports-grader": {"test_merge": (0, "graded"), "test_merge_path_partition": (0, "graded"),
                       "test_triton_merge": (0, "graded")},
    "invalid-json": {g: (0, "not_gradable") for g in ("test_merge", "test_merge_path_partition", "test_triton_merge")},
    "not-a-notebook": {g: (0, "not_gradable") for g in ("test_merge", "test_merge_path_partition", "test_triton_merge")},
}


@pytest.mark.parametrize("student", EXPECTED)
def test_hostile_and_broken_submissions(graded, points, student):
    _, _, grades, _ = graded
    for gid, pts in points[SLUG].items():
        want = EXPECTED[student].get(gid, (pts, "graded"))
        row = _row(grades, student, gid)
        assert (float(row["points"]), row["status"]) == (float(want[0]), want[1]), f"{student}/{gid}: {row}"


def test_reasons_say_what_happened(graded):
    _, _, grades, _ = graded
    assert "not valid JSON" in _row(grades, "invalid-json", "test_merge")["reason"]
    assert "not a notebook" in _row(grades, "not-a-notebook", "test_merge")["reason"]
    assert "was edited; restored" in _row(grades, "edited-test", "test_merge")["reason"]
    assert "killed" in _row(grades, "ignores-interrupts", "test_triton_merge")["reason"]
    assert "imports the grader" in _row(grades, "imports-grader", "test_triton_merge")["reason"]
    assert "RuntimeError: not today" in _row(grades, "raises", "test_merge_path_partition")["reason"]


def test_outputs_of_a_run(graded):
    subs, out, grades, done = graded
    students = {p.name for p in subs.iterdir()}
    assert {s for s, _, _ in grades} == students, "grades.csv must hold a row for every learner"
    assert (out / "report.png").stat().st_size > 10_000
    assert (out / "gradebook.db").exists()
    hidden = [h for slug in chapters.slugs() for h in notebooks.HIDDEN.findall(chapters.source(slug).read_text())]
    pages = list((out / "feedback").glob("*/*.html"))
    assert {p.parent.name for p in pages} == students, "every learner gets a feedback page"
    for path in pages:
        page = path.read_text()
        assert all(h.strip() not in page for h in hidden) and "verify(" not in page, "feedback leaks hidden tests"
    assert "submissions:" in done.stdout and "mean / max" in done.stdout


def test_gradebook_holds_the_scores(graded):
    from nbgrader.api import Gradebook

    _, out, grades, _ = graded
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        for student in ("solution", "untouched", "exits"):
            assert gb.find_submission(SLUG, student).score == pytest.approx(
                sum(float(r["points"]) for (s, c, _), r in grades.items() if s == student and c == SLUG))


def test_regrading_gives_the_same_grades(graded, tmp_path):
    subs, _, grades, _ = graded
    again = tmp_path / "subs"
    for student in ("solution", "wrong-partition_ties_from_b", "invalid-json"):
        shutil.copytree(subs / student, again / student)
    done = run_cli("grade", again, "--out", tmp_path / "out", "--cell-timeout", CELL_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    again_grades = read_grades(tmp_path / "out")
    assert again_grades
    for key, row in again_grades.items():
        assert row == grades[key]


def test_bad_paths_fail_fast_and_write_nothing(tmp_path):
    done = run_cli("grade", tmp_path / "missing", "--out", tmp_path / "out")
    assert done.returncode == 2 and "does not exist" in done.stderr and not (tmp_path / "out").exists()
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    done = run_cli("grade", tmp_path / "subs", "--out", tmp_path / "out", "--chapter", "99-nope")
    assert done.returncode == 2 and "unknown chapter" in done.stderr and not (tmp_path / "out").exists()
