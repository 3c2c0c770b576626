"""The hostile corpus (tests/hostile/cases.py), graded in one batch beside a control learner:
each case gets exactly the grades it is owed, the control and a victim keep theirs, and nothing
a submission starts or writes survives it."""
import socket
import threading
from pathlib import Path

import nbformat
import pytest

from autograder import chapters, notebooks, sandbox
from conftest import read_grades, run_cli, solved, write
from hostile.cases import ALL, CASES

SLUG = "01-merge"


@pytest.fixture(scope="module")
def listener():
    """A TCP server on the host's loopback: a sandboxed kernel must not reach it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    threading.Thread(target=lambda: [server.accept()[0].close() for _ in iter(int, 1)], daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture(scope="module")
def batch(tmp_path_factory, listener):
    root = tmp_path_factory.mktemp("hostile")
    subs, out, shared_cache = root / "submissions", root / "out", root / "shared-triton-cache"
    shared_cache.mkdir()
    out.mkdir()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:  # an instructor's earlier gradebook
        gb.update_or_create_student("somebody")
    good = solved(SLUG)
    victim = write(good, subs / "victim" / f"{SLUG}.ipynb")
    write(good, subs / "control" / f"{SLUG}.ipynb")
    ctx = {"solutions": str(chapters.source(SLUG)), "gradebook": str(out / "gradebook.db"),
           "victim": str(victim), "port": listener, "shared_cache": str(shared_cache)}
    for name, case in CASES.items():
        made = case.build(good, ctx)
        path = subs / name / case.filename
        path.parent.mkdir(parents=True)
        path.write_text(made if isinstance(made, str) else nbformat.writes(made))
    victim_bytes = victim.read_bytes()
    groups_before = set(_kernel_cgroups())
    done = run_cli("grade", subs, "--out", out, "--cell-timeout", 12, "--workers", 2)  # chapter 01's slowest cell: ~3 s
    assert done.returncode == 0, f"the grader itself failed:\n{done.stderr[-4000:]}"
    return {"grades": read_grades(out), "victim": (victim, victim_bytes), "shared_cache": shared_cache, "out": out,
            "groups_before": groups_before}


def _kernel_cgroups() -> list[Path]:
    return [g for c in ("cpu", "pids") for g in Path(sandbox.CGROUPS, c, "autograder").glob("grade-*")]


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_case_gets_what_it_is_owed(batch, points, name):
    case, grades = CASES[name], batch["grades"]
    rows = {gid: row for (student, _, gid), row in grades.items() if student == name}
    # the written answer is graded by hand: a row waiting for it whenever the submission was graded at all
    written = dict(notebooks.written(notebooks.source_notebook(SLUG)))
    graded_at_all = any(r["status"] != "not_gradable" for gid, r in rows.items() if gid not in written)
    for gid in written:
        row = rows.pop(gid, None)
        assert (row is not None) == graded_at_all, f"{name}: written answer row {row}"
        if row is not None:
            assert (float(row["points"]), row["status"]) == (0.0, "needs_manual_grade"), f"{name}/{gid}: {row}"
    expected_ids = set(case.expect) if "-" in case.expect else set(ALL)
    assert set(rows) == expected_ids, f"{name}: graded cells {sorted(rows)}"
    for gid, row in rows.items():
        want_points, want_status = case.expect.get(gid, (points[SLUG].get(gid, 0), "graded"))
        assert (float(row["points"]), row["status"]) == (float(want_points), want_status), f"{name}/{gid}: {row}"
    if case.reason:
        first = rows[next(iter(case.expect))]
        assert case.reason in first["reason"], f"{name}: reason {first['reason']!r} should say {case.reason!r}"


@pytest.mark.parametrize("student", ["control", "victim"])
def test_bystanders_keep_full_marks(batch, points, student):
    for gid, pts in points[SLUG].items():
        row = batch["grades"][(student, SLUG, gid)]
        assert (float(row["points"]), row["status"]) == (pts, "graded"), f"{student}/{gid}: {row}"


def test_nothing_written_outside_the_run(batch):
    victim, before = batch["victim"]
    assert victim.read_bytes() == before, "a learner's file was changed by another learner"
    assert not any(batch["shared_cache"].iterdir()), "a kernel wrote into a cache outside its own run"
    assert (batch["out"] / "gradebook.db").exists()


@pytest.mark.skipif(sandbox.uid_for(0) is None, reason="needs the bubblewrap sandbox run as root")
def test_no_process_outlives_its_submission(batch):
    left = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uid = int(next(line for line in status.read_text().splitlines() if line.startswith("Uid:")).split()[1])
        except (OSError, StopIteration):
            continue
        if sandbox.UID_BASE <= uid < sandbox.UID_BASE + sandbox.UID_SPAN:
            left.append(status.parent.name)
    assert not left, f"processes of graded submissions still running: {left}"
    left_groups = set(_kernel_cgroups()) - batch["groups_before"]
    assert not left_groups, f"cgroups of graded submissions were not removed: {sorted(map(str, left_groups))}"


def test_sandbox_is_in_force_in_ci():
    """CI installs bubblewrap (.ci/run); without it the corpus would pass for the wrong reasons."""
    import os

    if os.environ.get("CI"):
        assert sandbox.bwrap(), "bubblewrap must be installed and working in CI"
