"""The instructor's loop in nbgrader's terms, on a class of two for chapter 01 graded three ways
(one batch per layout): the plain SUBMISSIONS folder, an nbgrader course directory as
`nbgrader collect` leaves it (--course), and a Canvas bulk download (.zip) whose file names do not
name the chapter. The three give the same grades; each OUT is an nbgrader course (submitted/,
autograded/, nbgrader's feedback) with export.csv; a file that is not a notebook is missing in the
gradebook, not 0; hand-given scores survive a regrade and count in every total."""
import csv
import json
import zipfile

import nbformat
import pytest

from autograder import notebooks
from conftest import read_grades, run_cli, solved, with_cell, write

SLUG = "01-merge"
WRONG_MERGE = "def merge(nums1, m, nums2, n):\n    pass  # forgot to merge\n"
ANSWER = "Each worker owns a range of output positions; the co-rank makes its inputs exactly those outputs."


def _learners() -> dict[str, nbformat.NotebookNode]:
    good = solved(SLUG)
    written = next(notebooks.grade_id(c) for c in good.cells if notebooks.is_manual(c))
    return {"ann": with_cell(good, written, ANSWER),
            "ben": with_cell(with_cell(good, "merge", WRONG_MERGE), written, "I am not sure.")}


@pytest.fixture(scope="module")
def three_ways(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    learners = _learners()
    plain, course, lms = root / "plain", root / "course", root / "canvas.zip"
    for student, nb in learners.items():
        write(nb, plain / student / f"{SLUG}.ipynb")
        # nbgrader collect: submitted/<student>/<assignment>/<notebook>.ipynb and timestamp.txt
        write(nb, course / "submitted" / student / SLUG / f"{SLUG}.ipynb")
        (course / "submitted" / student / SLUG / "timestamp.txt").write_text("2031-05-04 10:00:00.000000 UTC\n")
    (plain / "dee").mkdir()
    (plain / "dee" / f"{SLUG}.ipynb").write_text("my answers are in the email")
    with zipfile.ZipFile(lms, "w") as z:  # Canvas: <student>_<user id>_<attachment id>_<file name>
        z.writestr(f"ann_1001_5001_{'03-transformer'}.ipynb", nbformat.writes(learners["ann"]))  # a misleading name
        z.writestr("ben_LATE_1002_5002_my-work.ipynb", nbformat.writes(learners["ben"]))
        z.writestr("dee_1004_5004_answers.txt", "my answers are in the email")
    outs = {}
    for name, args in {"plain": [plain], "course": ["--course", course], "lms": [lms]}.items():
        out = root / f"out-{name}"
        done = run_cli("grade", *args, "--out", out, "--workers", 2, timeout=900)
        assert done.returncode == 0, f"{name}: the grader failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        outs[name] = out
    return outs


def _db(out):
    return f"sqlite:///{out / 'gradebook.db'}"


def _export(out) -> dict[str, dict]:
    with (out / "export.csv").open() as f:
        return {r["SIS Login ID"]: r for r in csv.DictReader(f)}


def test_the_three_layouts_give_the_same_grades(three_ways):
    grades = {name: read_grades(out) for name, out in three_ways.items()}
    learners = {k: v for k, v in grades["plain"].items() if k[0] in ("ann", "ben")}
    assert {s for s, _, _ in learners} == {"ann", "ben"} and len(learners) == 2 * 4, sorted(learners)
    for name in ("course", "lms"):
        mine = {k: v for k, v in grades[name].items() if k[0] in ("ann", "ben")}
        assert mine == learners, f"{name} grades differ from the plain layout's"
    assert float(learners[("ben", SLUG, "test_merge")]["points"]) == 0
    assert learners[("ann", SLUG, "written_merge_path")]["status"] == "needs_manual_grade"


def test_each_out_is_an_nbgrader_course(three_ways):
    hidden = "verify("
    for name, out in three_ways.items():
        for student in ("ann", "ben"):
            submitted = out / "submitted" / student / SLUG / f"{SLUG}.ipynb"
            assert submitted.exists() and (submitted.parent / "timestamp.txt").exists(), f"{name}: {submitted}"
            nb = nbformat.read(out / "autograded" / student / SLUG / f"{SLUG}.ipynb", as_version=4)
            nbformat.validate(nb)
            graded = {notebooks.grade_id(c): c for c in nb.cells if notebooks.meta(c).get("grade")}
            assert set(graded) == {"test_merge", "test_merge_path_partition", "test_triton_merge", "written_merge_path"}
            assert all(c.id == notebooks.grade_id(c) for c in graded.values()), "cell ids are the gradebook's"
            feedback = (out / "feedback" / student / SLUG / f"{SLUG}.html").read_text()
            assert hidden not in feedback and "HIDDEN TESTS" not in feedback, f"{name}: feedback shows hidden tests"
            assert "Rubric" not in feedback, f"{name}: the model answer reached a learner's feedback"
        ben = nbformat.read(out / "autograded" / "ben" / SLUG / f"{SLUG}.ipynb", as_version=4)
        cell = next(c for c in ben.cells if notebooks.grade_id(c) == "test_merge")
        shown = json.dumps(cell.outputs)
        assert "got [1, 2, 3, 0, 0, 0]" in shown, f"{name}: ben's test_merge shows no failure reason: {shown[:500]}"
    stamp = three_ways["course"] / "submitted" / "ann" / SLUG / "timestamp.txt"
    assert stamp.read_text().startswith("2031-05-04"), "nbgrader's collect timestamp is kept"


def test_not_gradable_is_missing_not_zero(three_ways):
    from nbgrader.api import Gradebook

    for name in ("plain", "lms"):
        out = three_ways[name]
        rows = [r for k, r in read_grades(out).items() if k[0] == "dee"]
        assert rows and all(r["status"] == "not_gradable" for r in rows), f"{name}: {rows}"
        with Gradebook(_db(out)) as gb:
            known = {s.id: [x.assignment.name for x in s.submissions] for s in gb.students}
        assert known.get("dee", []) == [], f"{name}: dee has a gradebook submission {known['dee']}"
        assert not (out / "autograded" / "dee").exists()
        assert _export(out).get("dee", {}).get(SLUG, "") == "", f"{name}: dee's export should be empty, not 0"
    lms = read_grades(three_ways["lms"])
    assert "not a notebook" in next(r for k, r in lms.items() if k[0] == "dee")["reason"]
    assert _export(three_ways["lms"])["ann"]["ID"] == "1001", "Canvas's user id, from the file name, for the import"


def test_hand_given_scores_survive_a_regrade_and_count_everywhere(three_ways, tmp_path):
    from nbgrader.api import Gradebook

    out = three_ways["course"]
    with Gradebook(_db(out)) as gb:  # what the formgrader's Manual Grading does
        gb.find_grade("written_merge_path", SLUG, SLUG, "ann").manual_score = 1.5
        gb.find_grade("written_merge_path", SLUG, SLUG, "ben").manual_score = 0.5
        gb.db.commit()
    done = run_cli("grade", "--course", out.parent / "course", "--out", out, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 of 2 submissions unchanged" in done.stderr
    grades = read_grades(out)
    assert grades[("ann", SLUG, "written_merge_path")]["points"] == "1.5"
    assert grades[("ann", SLUG, "written_merge_path")]["status"] == "graded"
    with Gradebook(_db(out)) as gb:
        assert gb.find_grade("written_merge_path", SLUG, SLUG, "ann").manual_score == 1.5, "a regrade kept it"
        scores = {s: gb.find_submission(SLUG, s).score for s in ("ann", "ben")}
    export = _export(out)
    for student in ("ann", "ben"):
        total = sum(float(r["points"]) for (s, c, _), r in grades.items() if (s, c) == (student, SLUG))
        assert float(export[student][SLUG]) == pytest.approx(total) == pytest.approx(scores[student]), student
    assert float(export["ann"][SLUG]) == 10 + 1.5 and float(export["ben"][SLUG]) == 8 + 0.5
    index = (out / "index.html").read_text()
    assert "11.5 / 12" in index, "index.html's total counts the hand-given score"
    assert "1.5 / 2" in (out / "feedback" / "ann" / f"{SLUG}.html").read_text()


def test_an_unreadable_layout_stops_before_writing(tmp_path):
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "notes.txt").write_text("hello")
    for args in ([odd], ["--course", odd], [tmp_path / "missing.zip"]):
        done = run_cli("grade", *args, "--out", tmp_path / "out", timeout=120)
        assert done.returncode == 2 and not (tmp_path / "out").exists(), done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "expected SUBMISSIONS/<student_id>/<slug>.ipynb" in lines[0], done.stderr
    (tmp_path / "bad.zip").write_text("not a zip")
    done = run_cli("grade", tmp_path / "bad.zip", "--out", tmp_path / "out", timeout=120)
    assert done.returncode == 2 and "not a readable .zip" in done.stderr and not (tmp_path / "out").exists()
