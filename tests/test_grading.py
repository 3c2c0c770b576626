"""Grading a class through the CLI, as an instructor would: the solution scores full marks, the
untouched release scores 0 with status graded, each wrong submission loses exactly the points of
the exercise it breaks, a learner's own helper cells are kept, and the outputs of a run are all
there. Submissions that attack the grader are in tests/hostile/ (test_hostile.py)."""
import shutil

import nbformat
import pytest

from autograder import chapters, notebooks
from conftest import read_grades, release, run_cli, solved, with_cell, write, wrong_submissions

SLUG = "01-merge"

RAISES = "def merge_path_partition(a, b, diag):\n    raise RuntimeError('not today')\n"


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


def _chapter01_extras() -> dict[str, object]:
    """student_id -> chapter 01 notebook: a learner's helper cell, and an exercise that raises."""
    good = solved(SLUG)
    helper = with_cell(good, "merge", "def merge(nums1, m, nums2, n):\n    merge_from_back(nums1, m, nums2, n)\n")
    k = next(i for i, c in enumerate(helper.cells) if notebooks.grade_id(c) == "merge")
    body = next(c.source for c in good.cells if notebooks.grade_id(c) == "merge").replace("def merge(", "def merge_from_back(")
    helper.cells.insert(k, nbformat.v4.new_code_cell(body))
    return {"helper-cell": helper, "raises": with_cell(good, "merge_path_partition", RAISES)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    subs, out = root / "submissions", root / "out"
    everyone = {**_chapters_class(), **{(student, SLUG): nb for student, nb in _chapter01_extras().items()}}
    for (student, slug), nb in everyone.items():
        write(nb, subs / student / f"{slug}.ipynb")
    done = run_cli("grade", subs, "--out", out, "--workers", 2)  # each chapter's recorded cell limit
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


def test_a_learners_helper_cell_is_kept(graded, points):
    _, _, grades, _ = graded
    for gid, pts in points[SLUG].items():
        assert float(_row(grades, "helper-cell", gid)["points"]) == pts, "cells of the learner's own must run too"


def test_an_exception_costs_its_exercise_and_says_why(graded, points):
    _, _, grades, _ = graded
    row = _row(grades, "raises", "test_merge_path_partition")
    assert (float(row["points"]), row["status"]) == (0.0, "graded")
    assert "RuntimeError: not today" in row["reason"]
    assert float(_row(grades, "raises", "test_merge")["points"]) == points[SLUG]["test_merge"]


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
        for student in ("solution", "untouched", "raises"):
            assert gb.find_submission(SLUG, student).score == pytest.approx(
                sum(float(r["points"]) for (s, c, _), r in grades.items() if s == student and c == SLUG))


def test_regrading_gives_the_same_grades(graded, tmp_path):
    subs, _, grades, _ = graded
    again = tmp_path / "subs"
    for student in ("solution", "wrong-partition_ties_from_b", "raises"):  # chapter 01's notebooks
        (again / student).mkdir(parents=True)
        shutil.copy(subs / student / f"{SLUG}.ipynb", again / student / f"{SLUG}.ipynb")
    done = run_cli("grade", again, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr[-3000:]
    again_grades = read_grades(tmp_path / "out")
    assert again_grades
    for key, row in again_grades.items():
        assert row == grades[key]
    rerun = run_cli("grade", again, "--out", tmp_path / "out")
    n = len(list(again.glob("*/*.ipynb")))
    assert f"{n} of {n} submissions unchanged since the last run, reused" in rerun.stderr, (
        f"a rerun that reuses saved results must say so:\n{rerun.stderr[-2000:]}")
    assert read_grades(tmp_path / "out") == again_grades


def test_bad_paths_fail_fast_and_write_nothing(tmp_path):
    done = run_cli("grade", tmp_path / "missing", "--out", tmp_path / "out")
    assert done.returncode == 2 and "does not exist" in done.stderr and not (tmp_path / "out").exists()
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    done = run_cli("grade", tmp_path / "subs", "--out", tmp_path / "out", "--chapter", "99-nope")
    assert done.returncode == 2 and "unknown chapter" in done.stderr and not (tmp_path / "out").exists()
