"""What a grading run leaves behind: grades.csv, feedback pages, report.png, the gradebook, and
the summary printed at the end."""
import csv
import html
import warnings
from collections import Counter, defaultdict
from pathlib import Path

from autograder import notebooks
from autograder.grade import Release, Row

COLUMNS = ["student_id", "chapter", "grade_id", "points", "max_points", "status", "reason"]
STATUSES = ["graded", "needs_manual_grade", "timeout", "crashed", "not_gradable"]  # best to worst


def write_csv(rows: list[Row], path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([r.student_id, r.chapter, r.grade_id, f"{r.points:g}", f"{r.max_points:g}", r.status, r.reason])


def write_feedback(rows: list[Row], path: Path) -> None:
    """One learner's page for one chapter: each graded cell's points, status and reason, and the
    visible part of its test. Hidden test source never appears (only verify's messages do)."""
    total, most = sum(r.points for r in rows), sum(r.max_points for r in rows)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(rows[0].chapter)}: {html.escape(rows[0].student_id)}</title>",
        # reasons and headings wrap (a reason is one long line); code keeps its lines and scrolls in its box
        "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;padding:0 1em}"
        "h1,h2,p{overflow-wrap:anywhere}.why{background:#f6f6f6;padding:.6em;white-space:pre-wrap;"
        "overflow-wrap:anywhere;font-family:monospace}pre{background:#f6f6f6;padding:.6em;overflow-x:auto}"
        ".ok{color:#1a7f37}.bad{color:#b3261e}</style>",
        f"</head><body><h1>{html.escape(rows[0].chapter)}</h1>",
        f"<p>Learner <b>{html.escape(rows[0].student_id)}</b>: <b>{total:g} / {most:g}</b> points.</p>",
    ]
    for r in rows:
        good = r.points == r.max_points
        parts.append(f"<h2 class='{'ok' if good else 'bad'}'>{html.escape(r.grade_id)}: {r.points:g} / {r.max_points:g}</h2>")
        parts.append(f"<p>Status: {html.escape(r.status)}</p>")
        if r.reason:
            parts.append(f"<p>Why:</p><div class='why'>{html.escape(r.reason)}</div>")
        if r.visible:
            parts.append(f"<details><summary>The visible checks of this cell</summary><pre>{html.escape(r.visible)}</pre></details>")
        if r.stdout:
            parts.append(f"<details><summary>What the cell printed</summary><pre>{html.escape(r.stdout[-5000:])}</pre></details>")
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")


OUTCOMES = {"full marks": "#1a7f37", "partial": "#4ac26b", "0 points": "#d1242f", "needs manual grade": "#0969da",
            "timeout": "#bf8700", "crashed": "#8250df", "not gradable": "#6e7781"}  # report.png's and index.html's colours


def outcome(r: Row) -> str:
    if r.status != "graded":
        return r.status.replace("_", " ")
    return "full marks" if r.points == r.max_points else "0 points" if r.points == 0 else "partial"


def write_report(rows: list[Row], path: Path) -> None:
    """One panel per chapter (two columns of panels past three chapters, three past eight), a
    stacked bar per graded cell: how many learners got full marks, 0 points, or no grade. Each
    row of panels is as tall as its longest chapter needs, and the legend (with the title) sits in one
    line above the first row, so a class graded on ten chapters reads as a page, not a 50-row column."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(dict.fromkeys((r.chapter, r.grade_id) for r in rows))
    counts = {k: Counter() for k in keys}
    for r in rows:
        counts[(r.chapter, r.grade_id)][outcome(r)] += 1
    chapters = list(dict.fromkeys(c for c, _ in keys)) or ["(no submissions)"]
    ncols = 1 if len(chapters) <= 3 else 2 if len(chapters) <= 8 else 3
    nrows = math.ceil(len(chapters) / ncols)
    cells = {c: [g for k, g in keys if k == c] for c in chapters}
    heights = [max(len(cells[c]) for c in chapters[i * ncols:(i + 1) * ncols]) or 1 for i in range(nrows)]
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.5 * ncols, 0.42 * sum(heights) + 0.9 * nrows + 0.8),
                             gridspec_kw={"height_ratios": [h + 1.2 for h in heights]}, squeeze=False,
                             layout="constrained")
    most = max([sum(c.values()) for c in counts.values()] + [1])
    for i, ax in enumerate(axes.flat):
        if i >= len(chapters):
            ax.set_visible(False)
            continue
        chapter = chapters[i]
        labels = cells[chapter]
        left = [0] * len(labels)
        for kind, color in OUTCOMES.items():
            widths = [counts[(chapter, g)][kind] for g in labels]
            ax.barh(labels, widths, left=left, color=color, label=kind, height=0.7)
            left = [a + b for a, b in zip(left, widths)]
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.set_xlim(0, most)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(chapter, loc="left", fontsize=10)
        ax.tick_params(labelsize=8)
        if i // ncols == nrows - 1 or i + ncols >= len(chapters):
            ax.set_xlabel("learners")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in OUTCOMES.values()]
    fig.legend(handles, list(OUTCOMES), loc="outside upper center", ncol=len(OUTCOMES), fontsize=8, frameon=False,
               title="How the class did, per exercise (learners per outcome)", title_fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_index(rows: list[Row], path: Path) -> None:
    """OUT/index.html: the class at a glance. Per exercise, how the scores are distributed (a bar
    and the counts, as in report.png, which it shows when present); per submission, its score,
    its status and a link to the learner's feedback page. Links are relative: the folder can be
    moved, shared or served as it is."""
    out = path.parent
    e = html.escape
    worst, order = {}, {s: i for i, s in enumerate(STATUSES)}
    for r in rows:
        key = (r.student_id, r.chapter)
        worst[key] = max(worst.get(key, "graded"), r.status, key=order.__getitem__)
    by_status = Counter(worst.values())
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>Grading summary</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        # tables fit their column: names wrap anywhere, count headers wrap, and on a phone the count
        # columns give way to the bar (whose parts carry the counts as titles)
        "table{border-collapse:collapse;width:100%;margin:1em 0}th,td{padding:.3em .4em;border-bottom:1px solid #ddd;"
        "text-align:left;overflow-wrap:anywhere}th.n{font-weight:normal;font-size:85%}td.n,th.n{text-align:right}"
        ".bar{display:flex;height:1em;min-width:4em;background:#eee}"
        ".bar span{display:block;height:100%}img{max-width:100%;height:auto}"
        "h1,h2,p{overflow-wrap:anywhere}.legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 1em}"
        "@media (max-width:40em){.count{display:none}body{margin:1em auto}}</style>",
        "</head><body><h1>Grading summary</h1>",
        f"<p id='submissions'>{len(worst)} submissions: "
        + ", ".join(f"{by_status[s]} {s.replace('_', ' ')}" for s in STATUSES) + ".</p>",
    ]
    if (out / "report.png").exists():
        parts.append("<p><img src='report.png' alt='How the class did, per exercise: learners with full marks, "
                     "0 points, or no grade (timeout, crashed, not gradable)'></p>")
    exercises = defaultdict(list)
    for r in rows:
        if r.grade_id != "-":
            exercises[(r.chapter, r.grade_id)].append(r)
    parts.append("<h2>Exercises</h2><p class='legend'>" + "".join(
        f"<span style='background:{c}'></span>{k}" for k, c in OUTCOMES.items()) + "</p>")
    parts.append("<table id='exercises'><thead><tr><th>chapter</th><th>exercise</th>"
                 "<th>max</th><th>mean</th><th>distribution</th>"
                 + "".join(f"<th class='n count'>{k}</th>" for k in OUTCOMES) + "</tr></thead><tbody>")
    for (chapter, gid), rs in exercises.items():
        counts = Counter(outcome(r) for r in rs)
        bar = "".join(f"<span title='{k}: {counts[k]}' style='width:{100 * counts[k] / len(rs):.1f}%;background:{c}'></span>"
                      for k, c in OUTCOMES.items() if counts[k])
        parts.append(
            f"<tr data-exercise='{e(chapter)}/{e(gid)}'><td>{e(chapter)}</td><td>{e(gid)}</td>"
            f"<td class='n'>{rs[0].max_points:g}</td><td class='n'>{sum(r.points for r in rs) / len(rs):.2f}</td>"
            f"<td><div class='bar'>{bar}</div></td>"
            + "".join(f"<td class='n count' data-outcome='{k}'>{counts[k]}</td>" for k in OUTCOMES) + "</tr>")
    parts.append("</tbody></table><h2>Submissions</h2>")
    parts.append("<table id='learners'><thead><tr><th>learner</th><th>chapter</th><th>points</th>"
                 "<th>status</th><th>feedback</th></tr></thead><tbody>")
    for (student, chapter), status in sorted(worst.items()):
        rs = [r for r in rows if (r.student_id, r.chapter) == (student, chapter)]
        page = Path("feedback") / student / f"{chapter}.html"
        link = (f"<a href='{e(page.as_posix())}'>feedback</a>" if (out / page).exists() else "none")
        parts.append(
            f"<tr data-learner='{e(student)}'><td>{e(student)}</td><td>{e(chapter)}</td>"
            f"<td class='n'>{sum(r.points for r in rs):g} / {sum(r.max_points for r in rs):g}</td>"
            f"<td>{e(status.replace('_', ' '))}</td><td>{link}</td></tr>")
    parts.append("</tbody></table></body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")


def write_formgrader_sources(out: Path) -> list[Path]:
    """OUT/source/<slug>/<slug>.ipynb, the source notebook of each chapter graded in OUT, which is
    where nbgrader's formgrader looks for a course's assignments (`make lab OUT=...` writes them
    and opens OUT as the course; the scores come from OUT/gradebook.db)."""
    import nbformat

    from autograder import chapters

    with (out / "grades.csv").open() as f:
        graded = {row["chapter"] for row in csv.DictReader(f)}
    written = []
    for slug in chapters.slugs():
        if slug in graded:
            path = out / "source" / slug / f"{slug}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebooks.source_notebook(slug), path)
            written.append(path)
    return written


def backup_sqlite(db_url: str) -> Path | None:
    """An online copy of an SQLite gradebook beside it (<name>.bak), taken before a batch writes."""
    import sqlite3

    if not db_url.startswith("sqlite:///"):
        return None
    path = Path(db_url.removeprefix("sqlite:///"))
    if not path.exists():
        return None
    backup = path.with_name(path.name + ".bak")
    with sqlite3.connect(path) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)
    return backup


def write_gradebook(rows: list[Row], releases: dict[str, Release], db_url: str, lms_ids: dict | None = None) -> None:
    """Record assignments, cells and auto scores in nbgrader's gradebook, in one transaction.
    Manual scores, which nbgrader keeps in a separate column, are never touched; a written answer
    (a manually graded cell) is flagged for manual grading until someone scores it. A submission
    that is not gradable gets no gradebook submission (nbgrader shows it as missing, not as 0);
    its learner is listed. `lms_ids` (student_id -> the LMS's id) fill nbgrader's lms_user_id.
    SQLite runs in WAL mode with a busy timeout, so a formgrader reading it at the same time does
    not fail."""
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.utils import compute_checksum
    from sqlalchemy import text
    from sqlalchemy.exc import SAWarning

    backup_sqlite(db_url)
    with warnings.catch_warnings(), Gradebook(db_url) as gb:
        # nbgrader 0.9.6's add_submission trips SQLAlchemy 2's autoflush warnings; the rows are written
        warnings.simplefilter("ignore", SAWarning)
        if db_url.startswith("sqlite"):
            gb.db.execute(text("PRAGMA busy_timeout = 30000"))
            gb.db.execute(text("PRAGMA journal_mode = WAL"))
        for slug, rel in releases.items():
            gb.update_or_create_assignment(slug)
            gb.update_or_create_notebook(slug, slug)
            for cell in rel.source.cells:
                gid, m = notebooks.grade_id(cell), notebooks.meta(cell)
                if m.get("grade"):
                    gb.update_or_create_grade_cell(gid, slug, slug, max_score=float(m["points"]), cell_type=cell.cell_type)
                if m.get("solution"):
                    gb.update_or_create_solution_cell(gid, slug, slug)
                if m.get("grade") or m.get("solution") or m.get("locked"):
                    gb.update_or_create_source_cell(gid, slug, slug, cell_type=cell.cell_type, locked=bool(m.get("locked")),
                                                    source=cell.source, checksum=compute_checksum(cell))
        ungradable = {(r.student_id, r.chapter) for r in rows} - {(r.student_id, r.chapter) for r in rows
                                                                   if r.status != "not_gradable"}
        for student_id, chapter in dict.fromkeys((r.student_id, r.chapter) for r in rows):
            extra = {"lms_user_id": lms_ids[student_id]} if student_id in (lms_ids or {}) else {}
            gb.update_or_create_student(student_id, **extra)
            try:
                submission = gb.find_submission(chapter, student_id)
            except MissingEntry:
                submission = None
            if (student_id, chapter) in ungradable:
                # missing, not 0: drop an earlier run's submission unless someone graded it by hand
                if submission is not None and not any(g.manual_score is not None for g in submission.grades):
                    gb.remove_submission(chapter, student_id)
                continue
            if submission is None:
                submission = gb.add_submission(chapter, student_id)
            for gid, _ in notebooks.written(releases[chapter].source):
                grade = gb.find_grade(gid, chapter, chapter, student_id)
                grade.auto_score = None
                grade.needs_manual_grade = grade.manual_score is None
        for r in rows:
            if (r.student_id, r.chapter) in ungradable:
                continue
            grade = gb.find_grade(r.grade_id, r.chapter, r.chapter, r.student_id)
            grade.auto_score = r.points
            # nbgrader's own rule (SaveAutoGrades): review only what a person already scored by hand;
            # left at its default, the formgrader lists every submission as "needs manual grading"
            grade.needs_manual_grade = grade.manual_score is not None
        gb.db.commit()


def summary(rows: list[Row]) -> str:
    """Submissions by status (the worst of their cells) and mean score per exercise."""
    worst = {}
    order = {s: i for i, s in enumerate(STATUSES)}
    for r in rows:
        key = (r.student_id, r.chapter)
        worst[key] = max(worst.get(key, "graded"), r.status, key=order.__getitem__)
    by_status = Counter(worst.values())
    lines = ["submissions: " + ", ".join(f"{by_status[s]} {s.replace('_', ' ')}" for s in STATUSES)]
    scores = defaultdict(list)
    for r in rows:
        scores[(r.chapter, r.grade_id, r.max_points)].append(r.points)
    width = max((len(f"{c} / {g}") for c, g, _ in scores), default=10)
    lines.append(f"{'exercise':<{width}}  mean / max  full marks")
    for (c, g, most), pts in scores.items():
        full = sum(p == most for p in pts)
        lines.append(f"{c + ' / ' + g:<{width}}  {sum(pts) / len(pts):4.2f} / {most:<3g}  {full}/{len(pts)}")
    return "\n".join(lines)
