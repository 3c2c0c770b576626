"""The gradebook survives what happens to instructors: a batch killed halfway and rerun, manual
grades entered between runs, and a PostgreSQL server instead of SQLite."""
import glob
import os
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ROOT, read_grades, release, run_cli, solved, with_cell, write, wrong_submissions

SLUG = "01-merge"


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    subs = tmp_path_factory.mktemp("small") / "submissions"
    good = solved(SLUG)
    write(good, subs / "ann" / f"{SLUG}.ipynb")
    write(release(SLUG), subs / "ben" / f"{SLUG}.ipynb")
    name, cell, _, src = wrong_submissions(SLUG)[0]
    write(with_cell(good, cell, src), subs / "cat" / f"{SLUG}.ipynb")
    write(good, subs / "dan" / f"{SLUG}.ipynb")
    return subs


@pytest.fixture(scope="module")
def baseline(small_class, tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline")
    done = run_cli("grade", small_class, "--out", out, "--cell-timeout", 60)
    assert done.returncode == 0, done.stderr[-3000:]
    return read_grades(out)


def _gradebook_scores(url):
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        return {(s.id, sub.assignment.name): sub.score for s in gb.students for sub in s.submissions}


def test_a_batch_killed_halfway_completes_with_the_same_grades(small_class, baseline, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "autograder", "grade", str(small_class), "--out", str(out), "--cell-timeout", "60"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not list(out.glob("results/*/*.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the batch finished before it could be interrupted; grade a bigger class"
    os.killpg(proc.pid, signal.SIGKILL)  # the grader and everything it started, mid-batch
    proc.wait()
    assert not (out / "grades.csv").exists()
    done = run_cli("grade", small_class, "--out", out, "--cell-timeout", 60)
    assert done.returncode == 0, done.stderr[-3000:]
    again = read_grades(out)
    assert again == baseline, "the resumed batch must give exactly the uninterrupted grades"
    lines = (out / "grades.csv").read_text().splitlines()
    assert len(lines) == len(set(lines)) == len(baseline) + 1, "no duplicated rows"
    scores = _gradebook_scores(f"sqlite:///{out / 'gradebook.db'}")
    assert len(scores) == 4


def test_manual_grades_survive_a_regrade(small_class, tmp_path):
    from nbgrader.api import Gradebook

    out = tmp_path / "out"
    shutil.copytree(small_class, tmp_path / "subs")
    subs = tmp_path / "subs"
    for student in ("ben", "cat", "dan"):
        shutil.rmtree(subs / student)
    assert run_cli("grade", subs, "--out", out).returncode == 0
    url = f"sqlite:///{out / 'gradebook.db'}"
    with Gradebook(url) as gb:
        grade = gb.find_grade("test_merge", SLUG, SLUG, "ann")
        grade.manual_score = 1.5  # the instructor overrides by hand
        gb.db.commit()
    (subs / "ann" / f"{SLUG}.ipynb").write_text((subs / "ann" / f"{SLUG}.ipynb").read_text() + "\n")  # resubmitted
    assert run_cli("grade", subs, "--out", out).returncode == 0
    with Gradebook(url) as gb:
        grade = gb.find_grade("test_merge", SLUG, SLUG, "ann")
        assert grade.manual_score == 1.5 and grade.auto_score == 2.0
    assert (out / "gradebook.db.bak").exists(), "each batch backs the gradebook up first"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A real PostgreSQL server on loopback, run as the postgres user (Debian's package)."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    assert binaries, "PostgreSQL is not installed: `make test` installs it (apt-get install postgresql)"
    bin_dir = binaries[-1]
    data = Path(tempfile.mkdtemp(prefix="pg-"))  # not under pytest's 0700 folder: postgres must reach it
    shutil.chown(data, "postgres", "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    port = _free_port()
    subprocess.run([*as_pg, f"{bin_dir}/initdb", "-D", str(data / "db"), "--auth=trust", "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run([*as_pg, f"{bin_dir}/pg_ctl", "-D", str(data / "db"), "-w", "-l", str(data / "log"),
                    "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    subprocess.run([*as_pg, f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "grades"],
                   check=True, capture_output=True)
    yield f"postgresql://postgres@127.0.0.1:{port}/grades"
    subprocess.run([*as_pg, f"{bin_dir}/pg_ctl", "-D", str(data / "db"), "-m", "immediate", "stop"], capture_output=True)
    shutil.rmtree(data, ignore_errors=True)


def test_grading_into_postgresql(small_class, baseline, postgres, tmp_path):
    done = run_cli("grade", small_class, "--out", tmp_path / "out", "--db", postgres, "--workers", 2)
    assert done.returncode == 0, done.stderr[-3000:]
    assert read_grades(tmp_path / "out") == baseline
    scores = _gradebook_scores(postgres)
    expected = {}
    for (student, chapter, _), row in baseline.items():
        expected[(student, chapter)] = expected.get((student, chapter), 0) + float(row["points"])
    assert scores == expected
