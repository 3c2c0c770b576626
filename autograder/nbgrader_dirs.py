"""A grading run as nbgrader lays out a course, so that its formgrader and its feedback work on it.

OUT is an nbgrader course directory once a run ends:

- `OUT/submitted/<student_id>/<slug>/<slug>.ipynb` (+ `timestamp.txt`): the learner's file as handed in;
- `OUT/autograded/<student_id>/<slug>/<slug>.ipynb`: the notebook the kernel ran (the release's cells
  with the learner's solutions, the hidden blocks, the gradebook's cell ids), each graded cell with
  its outputs and, where it lost points, the grader's reason as an error output: what the
  formgrader's Manual Grading view opens;
- `OUT/feedback/<student_id>/<slug>/<slug>.html`: `nbgrader generate_feedback`'s page for it
  (scores from the gradebook, hidden tests removed), beside the grader's own
  `OUT/feedback/<student_id>/<slug>.html`;
- `OUT/export.csv`: one row per learner, one column per chapter's total (autograded plus hand-graded
  points), for Canvas's or Moodle's grade import.

A submission that cannot be graded at all (`not_gradable`) gets none of these folders and no
gradebook submission: nbgrader shows it as missing, not as 0.

Written answers (nbgrader's manually graded cells) are scored by hand in the formgrader; each run
reads those scores back from the gradebook (`with_manual_scores`), so that grades.csv,
index.html, the feedback pages and export.csv all count them.
"""
import copy
import csv
import datetime
import shutil
import warnings
from collections import defaultdict
from pathlib import Path

import nbformat

from autograder import notebooks
from autograder.grade import Release, Row

MANUAL_PENDING = "needs_manual_grade"


def gradable(rows: list[Row]) -> bool:
    """Did the submission get graded at all (anything but not_gradable)?"""
    return any(r.status != "not_gradable" for r in rows)


def _folder(out: Path, kind: str, student: str, slug: str) -> Path:
    return out / kind / student / slug


def _timestamp(path: Path) -> str:
    when = datetime.datetime.fromtimestamp(path.stat().st_mtime, tz=datetime.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f %Z")


def write_submitted(out: Path, student: str, slug: str, path: Path, stamp: str | None = None) -> Path:
    """OUT/submitted/<student>/<slug>/<slug>.ipynb and its timestamp.txt (nbgrader's collect layout)."""
    folder = _folder(out, "submitted", student, slug)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{slug}.ipynb"
    if not (target.exists() and target.resolve() == path.resolve()):
        shutil.copyfile(path, target)
    if not (folder / "timestamp.txt").exists() or stamp:
        (folder / "timestamp.txt").write_text((stamp or _timestamp(path)) + "\n")
    return target


def _reason_output(row: Row) -> dict:
    return nbformat.v4.new_output("error", ename=f"{row.status}: {row.points:g} of {row.max_points:g} points",
                                  evalue=row.reason, traceback=[f"{row.status}: {row.reason}"])


def _scrubbed(output: dict) -> dict:
    """A kernel error whose traceback shows the hidden block keeps its one-line message only."""
    if output.get("output_type") == "error" and any("verify(" in t or "HIDDEN TESTS" in t for t in output.get("traceback", [])):
        return {**output, "traceback": [f"{output.get('ename', '')}: {output.get('evalue', '')}"]}
    return output


def autograded_notebook(path: Path, rows: list[Row], release: Release) -> nbformat.NotebookNode:
    """What the kernel ran for this submission, with each graded cell's outputs and reason."""
    submission = notebooks.read_submission(path)
    nb, _ = notebooks.assemble(submission, release.source, release.release)
    nb.metadata[notebooks.CHAPTER_KEY] = {"chapter": release.slug}
    by_id = {r.grade_id: r for r in rows}
    count = 0
    for cell in nb.cells:
        cell["id"] = notebooks.grade_id(cell) or cell.get("id") or f"learner-{count}"
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        row = by_id.get(notebooks.grade_id(cell))
        if row is None:
            continue
        cell.outputs = [nbformat.from_dict(_scrubbed(o)) for o in row.outputs]
        if row.points < row.max_points and row.reason and not any(  # unless the kernel's own error says it all
                o.get("output_type") == "error" and f"{o.get('ename', '')}: {o.get('evalue', '')}".strip() == row.reason
                for o in row.outputs):
            cell.outputs.append(_reason_output(row))  # the grader's own verdict, decided outside the kernel
    nbformat.validate(nb)
    return nb


def write_autograded(out: Path, student: str, slug: str, path: Path, rows: list[Row], release: Release) -> Path:
    target = _folder(out, "autograded", student, slug) / f"{slug}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(autograded_notebook(path, rows, release), target)
    stamp = _folder(out, "submitted", student, slug) / "timestamp.txt"
    if stamp.exists():
        shutil.copyfile(stamp, target.parent / "timestamp.txt")
    return target


def forget(out: Path, student: str, slug: str) -> None:
    """A submission that is not gradable (any more) has no nbgrader folders."""
    for kind in ("submitted", "autograded"):
        shutil.rmtree(_folder(out, kind, student, slug), ignore_errors=True)
    shutil.rmtree(out / "feedback" / student / slug, ignore_errors=True)


def write_course(out: Path, rows: list[Row], releases: dict[str, Release], found: list,
                 timestamps: dict | None = None, db_url: str | None = None) -> int:
    """submitted/ and autograded/ for every graded submission in `found`; returns how many. The
    gradebook's submission gets the submitted timestamp: the formgrader counts a submission as
    autograded only when the two agree."""
    by_key = defaultdict(list)
    for r in rows:
        by_key[(r.student_id, r.chapter)].append(r)
    written, stamps = 0, {}
    for student, slug, path in found:
        mine = by_key.get((student, slug), [])
        if slug not in releases or not mine:
            continue
        if not gradable(mine):
            forget(out, student, slug)
            continue
        write_submitted(out, student, slug, path, (timestamps or {}).get((student, slug)))
        write_autograded(out, student, slug, path, mine, releases[slug])
        stamps[(student, slug)] = (_folder(out, "submitted", student, slug) / "timestamp.txt").read_text().strip()
        written += 1
    if db_url and stamps:
        from nbgrader.api import Gradebook, MissingEntry
        from nbgrader.utils import parse_utc

        with Gradebook(db_url) as gb:
            for (student, slug), text in stamps.items():
                try:
                    gb.find_submission(slug, student).timestamp = parse_utc(text)
                except (MissingEntry, ValueError):
                    continue
            gb.db.commit()
    return written


# ---------------------------------------------------------------------------------------------
# hand-graded scores, read back from the gradebook


def with_manual_scores(rows: list[Row], releases: dict[str, Release], db_url: str) -> list[Row]:
    """rows plus one row per written answer of every graded submission (its hand-given score, or 0
    with status needs_manual_grade until someone gives one); an autograded cell whose score was
    overridden by hand in the formgrader counts the hand-given score."""
    from nbgrader.api import Gradebook, MissingEntry

    by_key = defaultdict(list)
    for r in rows:
        by_key[(r.student_id, r.chapter)].append(r)
    out = []
    with Gradebook(db_url) as gb:
        for (student, slug), mine in by_key.items():
            if slug not in releases or not gradable(mine):
                out += mine
                continue

            def grade(gid):
                try:
                    return gb.find_grade(gid, slug, slug, student)
                except MissingEntry:
                    return None

            for r in mine:
                g = grade(r.grade_id)
                if g is not None and g.manual_score is not None and g.manual_score != r.points:
                    r = copy.copy(r)
                    r.reason = "; ".join(filter(None, [r.reason, f"score set by hand in the formgrader "
                                                      f"(the autograder gave {r.points:g})"]))
                    r.points = float(g.manual_score)
                out.append(r)
            for gid, points in notebooks.written(releases[slug].source):
                g = grade(gid)
                comment = ""
                try:
                    comment = gb.find_comment(gid, slug, slug, student).manual_comment or ""
                except MissingEntry:
                    pass
                if g is not None and g.manual_score is not None:
                    row = Row(student, slug, gid, float(g.manual_score), points, "graded", "graded by hand")
                else:
                    row = Row(student, slug, gid, 0.0, points, MANUAL_PENDING,
                              "a written answer, graded by hand in the formgrader: not graded yet")
                if comment:
                    row.reason += f"; your grader's comment: {comment}"
                out.append(row)
    return out


# ---------------------------------------------------------------------------------------------
# nbgrader's feedback and the LMS export


def write_nbgrader_feedback(out: Path, slugs: list[str], db_url: str, workers: int = 1) -> list[Path]:
    """`nbgrader generate_feedback` for each chapter, on OUT as the course directory: an HTML page
    per autograded notebook, scores from the gradebook, hidden tests removed (ClearHiddenTests).
    Rendering is most of a large batch's output time (syntax highlighting and HTML parsing, about
    half a second a notebook), so with `workers` > 1 the chapters render in that many processes;
    each writes only its own chapter's pages and only reads the gradebook."""
    todo = [slug for slug in slugs if any((out / "autograded").glob(f"*/{slug}/{slug}.ipynb"))]
    if workers > 1 and len(todo) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            list(pool.map(_chapter_feedback, [out] * len(todo), todo, [db_url] * len(todo)))
    else:
        for slug in todo:
            _chapter_feedback(out, slug, db_url)
    return [p for slug in todo for p in sorted((out / "feedback").glob(f"*/{slug}/{slug}.html"))]


def _chapter_feedback(out: Path, slug: str, db_url: str) -> None:
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades
    from traitlets.config import Config

    c = Config()
    c.CourseDirectory.root = str(out.resolve())
    c.CourseDirectory.db_url = db_url
    c.CourseDirectory.assignment_id = slug
    c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
    c.GenerateFeedback.force = True
    c.GenerateFeedback.permissions = 644
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coursedir = CourseDirectory(config=c)
        converter = GenerateFeedback(coursedir=coursedir, config=c)
        converter.log.setLevel("ERROR")
        converter.start()


EXPORT_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def write_export(rows: list[Row], releases: dict[str, Release], db_url: str, path: Path,
                 lms_ids: dict | None = None) -> Path:
    """OUT/export.csv: one row per learner, one column per chapter, the chapter's total points
    (autograded and hand-graded); a chapter not handed in, or not gradable, is left empty (missing,
    not 0). Columns as Canvas's gradebook import reads them (Student, ID, SIS User ID, SIS Login ID,
    Section, then one column per assignment); Moodle's CSV import maps "SIS Login ID" to a user
    field and each chapter column to a grade item."""
    from nbgrader.api import Gradebook

    students, names, ids = list(dict.fromkeys(r.student_id for r in rows)), {}, dict(lms_ids or {})
    with Gradebook(db_url) as gb:
        for s in gb.students:
            name = " ".join(filter(None, [s.first_name, s.last_name]))
            if name:
                names[s.id] = name
            if s.lms_user_id and s.id not in ids:
                ids[s.id] = s.lms_user_id
    totals = defaultdict(float)
    graded = set()
    for r in rows:
        if r.chapter in releases and r.status != "not_gradable":
            totals[(r.student_id, r.chapter)] += r.points
            graded.add((r.student_id, r.chapter))
    slugs = list(releases)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*EXPORT_FIXED, *slugs])
        for s in students:
            w.writerow([names.get(s, s), ids.get(s, ""), "", s, "",
                        *(f"{totals[(s, slug)]:g}" if (s, slug) in graded else "" for slug in slugs)])
    return path
