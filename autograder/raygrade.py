"""`python -m autograder grade SUBMISSIONS --out OUT --ray ADDRESS`: the same batch on a Ray cluster.

`RayPool` is an executor for `grade.run_batch`: each (submission, chapter) becomes a Ray task that
carries the submission's bytes and the chapter's release through Ray's object store (no file
system is shared between nodes), grades it with `grade.grade_submission` in the sandboxed kernel of
whichever node picked it up, and returns the rows and timings. The driver stays the one writer of
OUT/results/, grades.csv, the feedback and the gradebook, exactly as with `--workers`.

- GPU-aware: on a cluster with GPUs a task asks for `num_gpus=1` (or `--gpus-per-task`, e.g. 0.25
  to share one GPU among four small chapters' kernels); Ray then sets CUDA_VISIBLE_DEVICES in the
  worker, and the kernel inherits it, so each kernel sees only its own GPU. Without GPUs a task
  asks for one CPU.
- Faults: a task whose worker or node dies is retried elsewhere (MAX_RETRIES times, only for
  such system failures); a submission that crashes or hangs its kernel is graded `crashed` or
  `timeout` inside the task, which then succeeds, so it is never retried. Results are saved as
  they arrive, so a rerun of a killed driver resumes from OUT/results/.

`LoopbackCluster` starts a real two-node Ray cluster on this machine inside a network namespace of
its own (loopback only), for the tests and `make bench-grade`.
"""
import json
import shutil
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path

from autograder import grade

MAX_RETRIES = 3  # per task, for a worker or node that dies under it (never for a learner's crash)


def task_resources(cluster_gpus: float, gpus_per_task: float | None) -> dict:
    """What one grading task asks Ray for: a GPU (or the given share of one) when the cluster
    has GPUs, else one CPU. `gpus_per_task=0` grades on CPUs even on a GPU cluster."""
    if gpus_per_task is None:
        gpus_per_task = 1.0 if cluster_gpus > 0 else 0.0
    if gpus_per_task < 0 or (gpus_per_task > 1 and gpus_per_task != int(gpus_per_task)):
        raise ValueError(f"--gpus-per-task must be a fraction in (0, 1] or a whole number, not {gpus_per_task:g}")
    if gpus_per_task > 0 and cluster_gpus <= 0:
        raise ValueError("--gpus-per-task asks for GPUs, but the Ray cluster has none")
    return {"num_cpus": 1, "num_gpus": gpus_per_task} if gpus_per_task > 0 else {"num_cpus": 1}


def _grade_on_node(student: str, slug: str, data: bytes, release: grade.Release, opts: grade.Options):
    """A Ray task: grade one submission on this node; return (rows, timing)."""
    import ray

    mine = grade._release(slug)
    if mine.sha256 != release.sha256:
        # the kernel's case generators and the grader's references come from this node's checkout
        raise RuntimeError(f"node {socket.gethostname()} holds another version of {slug} than the driver: "
                           "give every node the same course checkout")
    # Ray starts its processes with SIGINT blocked, and a blocked signal stays blocked in every
    # process they start: the kernel could not be interrupted, and a cell past its limit would
    # have its kernel killed (losing the cells after it) where a local run interrupts it
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        with tempfile.TemporaryDirectory(prefix="ray-submission-") as tmp:
            path = Path(tmp) / f"{slug}.ipynb"
            path.write_bytes(data)
            rows, timing = grade._timed(student, path, slug, opts, release)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return rows, {**timing, "node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname()}


class RayPool:
    """An executor for `grade.run_batch` on the Ray cluster at `address` (`auto`: the cluster this
    machine belongs to; `local`: a throw-away cluster on this machine)."""

    def __init__(self, address: str, gpus_per_task: float | None = None):
        self.address, self.gpus_per_task = address, gpus_per_task
        self.releases: dict[str, object] = {}

    def __enter__(self):
        import ray

        self.ray = ray
        kwargs = dict(log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
        if self.address == "local":
            ray.init(include_dashboard=False, **kwargs)
        else:
            ray.init(address=self.address, **kwargs)
        gpus = ray.cluster_resources().get("GPU", 0.0)
        self.resources = task_resources(gpus, self.gpus_per_task)
        self.task = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(_grade_on_node).options(
            **self.resources)
        self.where = self.describe()
        return self

    def __exit__(self, *exc):
        self.ray.shutdown()

    @property
    def capacity(self) -> int:
        """Tasks in flight: twice the slots of the nodes alive now (so a joining node, or one an
        autoscaler starts for the queue, gets work), at least 32."""
        alive = self.ray.cluster_resources()
        if self.resources.get("num_gpus"):
            slots = alive.get("GPU", 0.0) / self.resources["num_gpus"]
        else:
            slots = alive.get("CPU", 0.0)
        return max(32, int(2 * slots))

    def describe(self) -> str:
        nodes = [n for n in self.ray.nodes() if n["Alive"]]
        cpus, gpus = (sum(n["Resources"].get(k, 0) for n in nodes) for k in ("CPU", "GPU"))
        per_task = f"{self.resources['num_gpus']:g} GPU" if "num_gpus" in self.resources else "1 CPU"
        return f"Ray cluster at {self.address}: {len(nodes)} nodes, {cpus:g} CPUs, {gpus:g} GPUs; {per_task} per task"

    def submit(self, student: str, path: Path, slug: str, opts: grade.Options) -> Future:
        if slug not in self.releases:  # one copy of each chapter's release in the object store
            self.releases[slug] = self.ray.put(grade._release(slug))
        data = self.ray.put(path.read_bytes())
        return self.task.remote(student, slug, data, self.releases[slug], opts).future()


# ---------------------------------------------------------------- a cluster on loopback


def _netns(pid: int | str) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


class LoopbackCluster:
    """A head and a second Ray node on this machine, inside a network namespace of their own where
    only loopback exists: Ray binds to 127.0.0.1 and nothing else (outside a namespace Ray binds to
    the machine's interface address even when told 127.0.0.1). Needs root (for `unshare -n`).

    Every process of the cluster is in that namespace, which is how `stop` finds them: it ends
    them by pid (never `ray stop`, which would end every Ray process on the machine). Run commands
    in the namespace with `cmd(...)`; the cluster's address is `address`. Each node has a custom
    resource (`grader_head`, `grader_second`) naming it."""

    PORT = 6379  # the namespace has its own ports: no clash with anything outside it

    def __init__(self, cpus: tuple[int, int] = (1, 1)):
        # a short path: Ray's sockets live under it, and a socket's path is at most 107 bytes
        self.root, self.cpus = Path(tempfile.mkdtemp(prefix="raycluster-", dir="/tmp")), cpus
        self.address = f"127.0.0.1:{self.PORT}"
        self.holder = None
        self.temp = {"head": self.root / "head", "second": self.root / "second"}
        # a dead node is noticed in seconds, not the default half minute
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_health_check_period_ms": "1000",
                    "RAY_health_check_timeout_ms": "1000", "RAY_health_check_failure_threshold": "3",
                    "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}

    def cmd(self, *args) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-n", "--", *map(str, args)]

    def run(self, *args, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("env", self.env)
        return subprocess.run(self.cmd(*args), capture_output=True, text=True, **kwargs)

    def start(self) -> "LoopbackCluster":
        outside = _netns("self")
        self.holder = subprocess.Popen(["unshare", "-n", "--", "sleep", "infinity"])
        deadline = time.monotonic() + 10
        while _netns(self.holder.pid) == outside:
            if self.holder.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("unshare -n failed (it needs root)")
            time.sleep(0.01)
        self.ns = _netns(self.holder.pid)
        try:
            self._check(self.run("ip", "link", "set", "lo", "up"))
            ray = Path(sys.executable).parent / "ray"
            common = ["--disable-usage-stats", "--include-dashboard", "false"]
            self._check(self.run(ray, "start", "--head", "--port", self.PORT, "--node-ip-address", "127.0.0.1",
                                 "--num-cpus", self.cpus[0], "--temp-dir", self.temp["head"],
                                 "--resources", json.dumps({"grader_head": 1}), *common, timeout=180))
            self._check(self.run(ray, "start", "--address", self.address, "--node-ip-address", "127.0.0.1",
                                 "--num-cpus", self.cpus[1], "--temp-dir", self.temp["second"],
                                 "--resources", json.dumps({"grader_second": 1}), *common[:1], timeout=180))
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def _check(done: subprocess.CompletedProcess) -> None:
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(done.args[4:7])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    def pids(self) -> list[int]:
        """Every process in the cluster's namespace but the one holding it."""
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if proc.name != str(self.holder.pid) and os.readlink(proc / "ns/net") == self.ns:
                    found.append(int(proc.name))
            except OSError:
                pass
        return found

    def raylet(self, node: str) -> int:
        """The pid of `node`'s raylet ("head" or "second")."""
        for pid in self.pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline[0].endswith(b"/raylet") and any(str(self.temp[node]).encode() + b"/" in a for a in cmdline):
                return pid
        raise LookupError(f"no raylet of the {node} node")

    def listening(self) -> list[str]:
        """The local addresses of every TCP socket listening in the namespace."""
        done = self.run("ss", "-Hltn")
        return sorted({line.split()[3].rsplit(":", 1)[0] for line in done.stdout.splitlines() if line.strip()})

    def stop(self, patience: float = 5.0) -> None:
        """End every process in the namespace by pid (TERM, then KILL), then the holder."""
        if self.holder is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            deadline = time.monotonic() + patience
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
        self.holder.kill()
        self.holder.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
