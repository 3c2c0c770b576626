"""Grading on a Ray cluster: a real two-node cluster on this machine, inside a network namespace
of its own where only loopback exists (autograder.raygrade.LoopbackCluster), grades a class
through `--ray` exactly as `--workers 1` does, on both nodes, and loses nothing when the second
node's raylet is killed mid-batch. Everything the tests start is stopped by its own pid.

The cluster tests need root (`unshare -n`), as CI runs; elsewhere they are skipped and say why."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder import grade, raygrade, sandbox
from conftest import ROOT, run_cli, solved, with_cell, write, wrong_submissions

SLUG = "01-merge"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "nsenter", "ip", "ss")),
    reason="a loopback-only Ray cluster needs root and unshare, nsenter, ip and ss (CI has them)")


def _class(subs: Path) -> list[str]:
    """9 chapter-01 learners: right, wrong, hanging, crashing, and a file that is not a notebook."""
    good = solved(SLUG)
    wrong = {name: (cell, src) for name, cell, _, src in wrong_submissions(SLUG)}
    kinds = {
        # interrupted at the cell limit, the cells after it still run: on a Ray node too
        "hangs": with_cell(good, "merge", "def merge(nums1, m, nums2, n):\n    while True:\n        pass\n"),
        "crashes": with_cell(good, "merge_path_partition", "import os\nos._exit(3)\n"),
        **{f"right-{k}": good for k in range(3)},
        **{f"wrong-{name}": with_cell(good, *wrong[name])
           for name in ("merge_sorts", "partition_ties_from_b", "triton_ties_from_b")},
    }
    for student, nb in kinds.items():
        write(nb, subs / student / f"{SLUG}.ipynb")
    (subs / "garbled").mkdir()
    (subs / "garbled" / f"{SLUG}.ipynb").write_bytes(b"\x89 not a notebook")
    return sorted([*kinds, "garbled"])


def _grade_args(subs: Path, out: Path, *extra) -> list[str]:
    # 12 s a cell: the hanging learner costs that twice (chapter 01's slowest cell takes about 3 s)
    return [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out), "--cell-timeout", "12",
            *map(str, extra)]


def _node_ids(cluster) -> dict[str, str]:
    """{"head" | "second": Ray node id}, read from each raylet's command line (its node id and the
    custom resource that names it)."""
    found = {}
    for name in ("head", "second"):
        args = Path(f"/proc/{cluster.raylet(name)}/cmdline").read_bytes().decode().split("\0")
        assert any(f"grader_{name}" in a for a in args), f"the {name} raylet lacks its custom resource"
        found[name] = next(a.split("=", 1)[1] for a in args if a.startswith("--node_id="))
    return found


def _kernel_on(raylet: int, uids: dict[int, str]) -> tuple[int, str] | None:
    """(pid, student) of a learner's kernel that descends from `raylet`, if one runs now."""
    parent, owner = {}, {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        pid = int(status.parent.name)
        parent[pid], owner[pid] = int(fields["PPid"]), int(fields["Uid"].split()[0])
    for pid, uid in owner.items():
        if uid in uids:
            up = pid
            while up > 1 and up != raylet:
                up = parent.get(up, 0)
            if up == raylet:
                return pid, uids[uid]
    return None


def _records(out: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    except OSError:
        return []


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded twice: by `--workers 1` (while the cluster starts), and through `--ray` on
    the two-node cluster, whose second node's raylet is killed (by its pid) once that node has
    finished a submission and while a learner's kernel runs on it."""
    tmp = tmp_path_factory.mktemp("ray")
    students = _class(tmp / "subs")
    cluster = raygrade.LoopbackCluster()
    failed = []

    def start():
        try:
            cluster.start()
        except BaseException as e:  # noqa: BLE001 (reported below)
            failed.append(e)

    starting = threading.Thread(target=start)
    starting.start()
    try:
        local = subprocess.run(_grade_args(tmp / "subs", tmp / "local", "--workers", 1), capture_output=True,
                               text=True, cwd=ROOT, timeout=900)
        starting.join()
        assert not failed, f"the cluster did not start: {failed[0]}"
        assert local.returncode == 0, local.stderr[-3000:]
        nodes, second = _node_ids(cluster), cluster.raylet("second")
        release = grade._release(SLUG)
        uids = {sandbox.uid_for(grade.seed_for(s, release)): s for s in students}
        assert None not in uids, "the kernels must run as their own uids (bubblewrap, root)"
        batch = subprocess.Popen(cluster.cmd(*_grade_args(tmp / "subs", tmp / "ray", "--ray", cluster.address)),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=cluster.env)
        victim, listening, looked = None, set(), 0.0
        while victim is None and batch.poll() is None:
            if time.monotonic() - looked > 2:
                listening, looked = listening | set(cluster.listening()), time.monotonic()
            if any(r.get("node") == nodes["second"] for r in _records(tmp / "ray")):
                victim = _kernel_on(second, uids)
            time.sleep(0.1)
        if victim is not None:
            os.kill(second, signal.SIGKILL)  # the node dies with a learner's kernel running on it
        try:
            stdout, stderr = batch.communicate(timeout=900)
        finally:
            if batch.poll() is None:
                batch.kill()
        yield dict(tmp=tmp, students=students, cluster=cluster, nodes=nodes, uids=uids, victim=victim,
                   listening=listening, returncode=batch.returncode, stdout=stdout, stderr=stderr)
    finally:
        starting.join()
        cluster.stop()
        assert not cluster.pids(), "a process of the cluster outlived stop()"


@needs_root
def test_ray_grades_like_workers_1_on_both_nodes(graded):
    g = graded
    assert g["returncode"] == 0, g["stderr"][-3000:]
    assert "graded on Ray cluster at 127.0.0.1" in g["stdout"] and "2 nodes" in g["stdout"]
    local, ray = ((g["tmp"] / out / "grades.csv").read_text() for out in ("local", "ray"))
    assert ray == local, "grades through --ray must equal --workers 1 row for row"
    statuses = {r["status"] for r in csv.DictReader((g["tmp"] / "ray" / "grades.csv").open())}
    assert {"graded", "timeout", "crashed", "not_gradable"} <= statuses, statuses
    assert {r["node"] for r in _records(g["tmp"] / "ray")} == set(g["nodes"].values()), "tasks must run on both nodes"
    assert g["cluster"].run("ip", "-o", "link").stdout.split(":")[1].strip() == "lo", "only loopback in the namespace"
    assert g["listening"] and g["listening"] <= {"127.0.0.1", "[::ffff:127.0.0.1]"}, g["listening"]


@needs_root
def test_a_killed_node_loses_nothing(graded):
    g = graded
    assert g["victim"] is not None, "the batch ended before a kernel ran on the second node"
    assert g["returncode"] == 0, g["stderr"][-3000:]
    runs = _records(g["tmp"] / "ray")
    assert sorted(r["student_id"] for r in runs) == g["students"], "every submission graded exactly once"
    retried = next(r for r in runs if r["student_id"] == g["victim"][1])
    assert retried["node"] == g["nodes"]["head"], "the killed node's task must be retried on the other node"
    left = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if _uid(pid) in g["uids"]]
    assert not left, f"orphaned kernels of the class are still running (pids {left}; the killed one was {g['victim'][0]})"


def _uid(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def test_ray_flags_are_checked(tmp_path):
    assert raygrade.task_resources(0, None) == {"num_cpus": 1}
    assert raygrade.task_resources(8, None) == {"num_cpus": 1, "num_gpus": 1.0}
    assert raygrade.task_resources(8, 0.25) == {"num_cpus": 1, "num_gpus": 0.25}
    assert raygrade.task_resources(8, 0) == {"num_cpus": 1}
    for bad in ((0, 1.0), (8, 1.5), (8, -1)):
        with pytest.raises(ValueError):
            raygrade.task_resources(*bad)
    write(solved(SLUG), tmp_path / "subs" / "ann" / f"{SLUG}.ipynb")
    done = run_cli("grade", tmp_path / "subs", "--out", tmp_path / "out", "--ray", "auto", "--workers", 2)
    assert done.returncode == 2 and "exclude each other" in done.stderr
    done = run_cli("grade", tmp_path / "subs", "--out", tmp_path / "out", "--gpus-per-task", 0.5)
    assert done.returncode == 2 and "needs --ray" in done.stderr


def test_the_kernel_sees_only_the_gpu_ray_gave_its_task(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert grade.kernel_env(tmp_path, 0)["CUDA_VISIBLE_DEVICES"] == "3"
