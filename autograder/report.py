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
STATUSES = ["graded", "timeout", "crashed", "not_gradable"]


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
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(rows[0].chapter)}: {html.escape(rows[0].student_id)}</title>",
        "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;padding:0 1em}"
        "pre{background:#f6f6f6;padding:.6em;overflow-x:auto}.ok{color:#1a7f37}.bad{color:#b3261e}</style>",
        f"</head><body><h1>{html.escape(rows[0].chapter)}</h1>",
        f"<p>Learner <b>{html.escape(rows[0].student_id)}</b>: <b>{total:g} / {most:g}</b> points.</p>",
    ]
    for r in rows:
        good = r.points == r.max_points
        parts.append(f"<h2 class='{'ok' if good else 'bad'}'>{html.escape(r.grade_id)}: {r.points:g} / {r.max_points:g}</h2>")
        parts.append(f"<p>Status: {html.escape(r.status)}</p>")
        if r.reason:
            parts.append(f"<p>Why: </p><pre>{html.escape(r.reason)}</pre>")
        if r.visible:
            parts.append(f"<details><summary>The visible checks of this cell</summary><pre>{html.escape(r.visible)}</pre></details>")
        if r.stdout:
            parts.append(f"<details><summary>What the cell printed</summary><pre>{html.escape(r.stdout[-5000:])}</pre></details>")
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")


def write_report(rows: list[Row], path: Path) -> None:
    """A stacked bar per graded cell: how many learners got full marks, 0 points, or no grade."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(dict.fromkeys((r.chapter, r.grade_id) for r in rows))
    kinds = {"full marks": "#1a7f37", "0 points": "#d1242f", "timeout": "#bf8700",
             "crashed": "#8250df", "not gradable": "#6e7781"}
    counts = {k: Counter() for k in keys}
    for r in rows:
        kind = r.status.replace("_", " ") if r.status != "graded" else ("full marks" if r.points == r.max_points else "0 points")
        counts[(r.chapter, r.grade_id)][kind] += 1
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(keys) + 1.5))
    labels = [f"{c} / {g}" for c, g in keys]
    left = [0] * len(keys)
    for kind, color in kinds.items():
        widths = [counts[k][kind] for k in keys]
        ax.barh(labels, widths, left=left, color=color, label=kind)
        left = [a + b for a, b in zip(left, widths)]
    ax.invert_yaxis()
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("learners")
    ax.set_title("How the class did, per exercise")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=5, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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


def write_gradebook(rows: list[Row], releases: dict[str, Release], db_url: str) -> None:
    """Record assignments, cells and auto scores in nbgrader's gradebook, in one transaction.
    Manual scores, which nbgrader keeps in a separate column, are never touched. SQLite runs in
    WAL mode with a busy timeout, so a formgrader reading it at the same time does not fail."""
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
        for student_id, chapter in dict.fromkeys((r.student_id, r.chapter) for r in rows):
            gb.update_or_create_student(student_id)
            try:
                gb.find_submission(chapter, student_id)
            except MissingEntry:
                gb.add_submission(chapter, student_id)
        for r in rows:
            gb.find_grade(r.grade_id, r.chapter, r.chapter, r.student_id).auto_score = r.points
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
