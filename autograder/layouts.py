"""The three ways a class's notebooks reach the grader, read into one list before anything is written.

- plain: `SUBMISSIONS/<student_id>/<slug>.ipynb` (the file's name is the chapter);
- an nbgrader course directory (`--course DIR`, or a SUBMISSIONS folder holding `submitted/`):
  `DIR/submitted/<student_id>/<assignment>/<notebook>.ipynb`, as `nbgrader collect` and the exchange
  leave it (the assignment is the chapter; one that is not is read from the notebook's metadata);
- an LMS bulk download, a folder or a `.zip` of files named like Canvas's
  `<student>_<number>_<anything>.ipynb` (`<student>_LATE_<number>_...` for a late one): the chapter
  is read from the notebook's metadata (`{"autograder": {"chapter": slug}}`, set at release), or
  failing that from its cells' grade ids, never from the file's name; the number is the LMS's id of
  the learner, kept for the export.

`collect()` returns a `Collected`: (student_id, chapter or file stem, path) for the grader, rows
for files that cannot be graded at all (no chapter can be told), the LMS ids, and the submitted
time where nbgrader recorded one. Anything else raises LayoutError, whose one line names the
layouts it expects.
"""
import atexit
import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder import chapters, notebooks

EXPECTED = ("expected SUBMISSIONS/<student_id>/<slug>.ipynb, an nbgrader course (--course DIR with "
            "DIR/submitted/<student_id>/<slug>/<notebook>.ipynb), or an LMS bulk download (a folder or .zip "
            "of files named <student>_<number>_<anything>.ipynb)")
LMS_NAME = re.compile(r"^(?P<student>[^_/\\]+)_(?:late_)?(?P<number>\d+)_(?P<rest>.+)$", re.I)


class LayoutError(ValueError):
    """The input is in none of the layouts the grader reads."""


@dataclass
class Collected:
    layout: str  # plain | course | lms
    found: list = field(default_factory=list)  # (student_id, stem, path)
    unreadable: list = field(default_factory=list)  # (student_id, file name, reason): no chapter can be told
    lms_ids: dict = field(default_factory=dict)  # student_id -> the LMS's number for the learner
    timestamps: dict = field(default_factory=dict)  # (student_id, stem) -> nbgrader's timestamp.txt text
    scratch: Path | None = None  # a folder the zip was unpacked into; cleanup() removes it

    def cleanup(self) -> None:
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


def _visible(p: Path) -> bool:
    return not p.name.startswith((".", "__MACOSX"))


def _cells_chapter(nb: dict) -> str | None:
    """The chapter whose solution and test cells' grade ids the notebook holds most of."""
    ids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.get("cells", []) if isinstance(c, dict)}
    best, most = None, 0
    for slug in chapters.slugs():
        try:
            mine = {notebooks.grade_id(c) for c in notebooks.source_notebook(slug).cells
                    if notebooks.is_solution(c) or notebooks.is_test(c)}
        except (OSError, ValueError):
            continue
        if len(ids & mine) > most:
            best, most = slug, len(ids & mine)
    return best


def chapter_of_file(path: Path) -> tuple[str | None, str]:
    """(slug, "") for a notebook whose metadata (or, failing that, cells) names a chapter of this
    course; (None, why) otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None, "not a readable notebook, so its chapter cannot be told (the chapter is read from the notebook)"
    if not isinstance(data, dict):
        return None, "not a notebook, so its chapter cannot be told"
    slug = notebooks.chapter_of(data)
    if slug in chapters.slugs():
        return slug, ""
    slug = _cells_chapter(data)
    if slug:
        return slug, ""
    return None, "a notebook of no chapter of this course (neither its metadata nor its cells name one)"


def _plain(root: Path) -> Collected:
    from autograder.grade import find_submissions

    return Collected("plain", found=find_submissions(root))


def _course(course: Path) -> Collected:
    submitted = course / "submitted"
    if not submitted.is_dir():
        raise LayoutError(f"{course} has no submitted/ folder; {EXPECTED}")
    got = Collected("course")
    known = set(chapters.slugs())
    for student in sorted(p for p in submitted.iterdir() if p.is_dir() and _visible(p)):
        for assignment in sorted(p for p in student.iterdir() if p.is_dir() and _visible(p)):
            books = sorted(p for p in assignment.glob("*.ipynb") if _visible(p))
            if not books:
                continue
            if assignment.name in known:  # nbgrader's assignment is the chapter; its notebook, <slug>.ipynb
                path = next((b for b in books if b.stem == assignment.name), books[0])
                slug = assignment.name
            else:
                path = books[0]
                slug, why = chapter_of_file(path)
                if slug is None:
                    got.unreadable.append((student.name, f"{assignment.name}/{path.name}", why))
                    continue
            got.found.append((student.name, slug, path))
            stamp = assignment / "timestamp.txt"
            if stamp.is_file():
                got.timestamps[(student.name, slug)] = stamp.read_text().strip()
    if not got.found and not got.unreadable:
        raise LayoutError(f"no notebooks under {submitted}; {EXPECTED}")
    return got


def _lms_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and _visible(p))


def _lms(folder: Path, zipped: Path | None = None) -> Collected:
    got = Collected("lms")
    files = _lms_files(folder)
    matched = [(p, LMS_NAME.match(p.name)) for p in files]
    if not any(m for _, m in matched):
        raise LayoutError(f"{zipped or folder}: no file is named <student>_<number>_<anything>.ipynb; {EXPECTED}")
    numbers: dict[str, set] = {}
    for _, m in matched:
        if m:
            numbers.setdefault(m["student"], set()).add(m["number"])
    latest: dict[tuple[str, str], tuple[int, Path]] = {}
    for path, m in matched:
        if not m:
            got.unreadable.append((path.stem, path.name, "not named <student>_<number>_<anything>.ipynb, so its "
                                   "learner cannot be told"))
            continue
        # two learners whose names squash to the same word stay apart by their number
        student = m["student"] if len(numbers[m["student"]]) == 1 else f"{m['student']}-{m['number']}"
        got.lms_ids[student] = m["number"]
        slug, why = chapter_of_file(path) if path.suffix == ".ipynb" else (None, "not a notebook (.ipynb)")
        if slug is None:
            got.unreadable.append((student, path.name, why))
            continue
        # a learner who uploaded twice: the LMS's later file (its larger number further on) counts
        order = int(re.sub(r"\D", "", m["rest"])[:18] or 0)
        if (student, slug) not in latest or order >= latest[(student, slug)][0]:
            latest[(student, slug)] = (order, path)
    got.found = sorted((s, slug, p) for (s, slug), (_, p) in latest.items())
    return got


def _unzip(archive: Path) -> Path:
    """The zip's files, flat (an LMS download has no folders), in a scratch folder; names are
    reduced to their last part, so nothing lands outside it."""
    scratch = Path(tempfile.mkdtemp(prefix="lms-"))
    try:
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                name = Path(info.filename.replace("\\", "/")).name
                if info.is_dir() or not name or name.startswith(".") or "__MACOSX" in info.filename:
                    continue
                with z.open(info) as src, (scratch / name).open("wb") as dst:
                    shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, OSError) as e:
        shutil.rmtree(scratch, ignore_errors=True)
        raise LayoutError(f"{archive} is not a readable .zip ({e}); {EXPECTED}") from None
    return scratch


def collect(submissions: Path | None, course: Path | None = None) -> Collected:
    """Read whichever layout the input is in; LayoutError if none."""
    if course is not None:
        if not course.is_dir():
            raise LayoutError(f"the course folder {course} does not exist; {EXPECTED}")
        return _course(course)
    if submissions is None:
        raise LayoutError(f"nothing to grade; {EXPECTED}")
    if submissions.is_file() and submissions.suffix.lower() == ".zip":
        scratch = _unzip(submissions)
        try:
            got = _lms(scratch, zipped=submissions)
        except LayoutError:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        got.scratch = scratch
        atexit.register(got.cleanup)  # the unpacked files live as long as the grading run
        return got
    if not submissions.is_dir():
        raise LayoutError(f"the submissions folder {submissions} does not exist; {EXPECTED}")
    if (submissions / "submitted").is_dir():
        return _course(submissions)
    plain = _plain(submissions)
    if plain.found:
        return plain
    if any(LMS_NAME.match(p.name) for p in _lms_files(submissions)):
        return _lms(submissions)
    raise LayoutError(f"no notebooks under {submissions}; {EXPECTED}")
