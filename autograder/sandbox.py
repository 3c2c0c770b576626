"""Where a learner's kernel runs: bubblewrap namespaces when available, resource limits always.

With `bwrap` (Debian's bubblewrap) the kernel gets no network, its own PID namespace (nothing it
starts outlives it), a read-only view of only the Python runtime, the virtual environment, the
`autograder` package without its references (autograder/reference/ is an empty folder
there: the kernel can draw cases but never call a reference) and `_toc.yml` (not solutions/,
tests/, the gradebook or other submissions), a private writable folder, and runs as an unprivileged user under rlimits. Without
bwrap, only the rlimits and the private folder apply, and the grader says so on every run.
"""
import functools
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from autograder import chapters

UID_BASE, UID_SPAN = 100_000, 50_000  # each submission's kernel runs as its own unprivileged uid
JAIL = Path(__file__).with_name("jail.py")


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 1800
    memory_bytes: int = 12 * 2**30  # address space; torch and Triton reserve a few GB at import
    processes: int = 256  # processes and threads of the kernel's user
    file_bytes: int = 256 * 2**20
    open_files: int = 1024


@functools.cache
def bwrap() -> str | None:
    """Path of a working bwrap, or None."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    try:
        ok = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"],
                            capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return path if ok else None


def describe() -> str:
    return "bubblewrap (no network, own PID namespace, read-only runtime)" if bwrap() else "none"


def _binds(work: Path) -> list[str]:
    args = []
    for top in ("/bin", "/lib", "/lib64", "/sbin"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.exists(top):
            args += ["--ro-bind", top, top]
    args += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc", "--ro-bind", "/sys", "/sys",
             "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/root", "--tmpfs", "/home"]
    package, toc = chapters.ROOT / "autograder", chapters.ROOT / "_toc.yml"
    made = {"/", "/tmp", "/root", "/home", "/usr", "/etc", "/sys", "/proc", "/dev"}
    for path, mode in [(sys.base_prefix, "--ro-bind"), (sys.prefix, "--ro-bind"),  # interpreter, venv
                       (str(package), "--ro-bind"), (str(toc), "--ro-bind"), (str(work), "--bind")]:
        for parent in reversed(Path(path).parents):  # bwrap would make missing parents 0700
            if str(parent) not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        args += [mode, path, path]
        made.add(path)
    # the references stay in the grader's process: an empty, read-only folder in their place
    hidden = str(package / "reference")
    args += ["--tmpfs", hidden, "--remount-ro", hidden]
    return args + ["--chdir", str(work)]


def uid_for(seed: int) -> int | None:
    """The uid a submission's kernel runs as (its own, so that its process limit and its stray
    processes are its alone), or None when the grader cannot switch users."""
    return UID_BASE + seed % UID_SPAN if bwrap() and os.getuid() == 0 else None


def reap(uid: int | None, everything: bool = False) -> int:
    """Kill every process of `uid` except the topmost one (the kernel), or every one; returns how
    many. Nothing a cell starts (a fork, a daemon) outlives the cell."""
    if uid is None:
        return 0
    owner, parent = {}, {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        pid = int(status.parent.name)
        owner[pid], parent[pid] = int(fields["Uid"].split()[0]), int(fields["PPid"])
    strays = [pid for pid, u in owner.items() if u == uid and (everything or owner.get(parent[pid]) == uid)]
    for pid in strays:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    return len(strays)


CGROUPS = Path("/sys/fs/cgroup")


def make_cgroups(name: str, limits: Limits) -> list[Path]:
    """A cpu and a pids cgroup (v1) of the kernel's own, where the machine lets the grader make
    them: a fork bomb then gets one learner's share of the CPU and a bounded number of tasks,
    however many processes it starts. Empty where cgroups v1 are not writable."""
    made = []
    for controller, settings in [("cpu", {"cpu.shares": "1024"}), ("pids", {"pids.max": str(limits.processes)})]:
        group = CGROUPS / controller / "autograder" / name
        try:
            group.mkdir(parents=True, exist_ok=True)
            for key, value in settings.items():
                (group / key).write_text(value)
        except OSError:
            continue
        made.append(group)
    return made


def remove_cgroups(groups: list[Path], patience: float = 10.0) -> None:
    """Kill whatever is left in the groups, then remove them (a group can only be removed once
    its last process has died, which takes a moment after SIGKILL)."""
    deadline = time.monotonic() + patience
    for group in groups:
        while group.exists():
            try:
                for pid in (group / "cgroup.procs").read_text().split():
                    os.kill(int(pid), 9)
                group.rmdir()
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)


def sweep_cgroups(min_age: float = 600.0) -> int:
    """Remove the empty kernel cgroups that a grader killed mid-batch left behind (a group still in
    use cannot be removed; one younger than `min_age` seconds may be about to be joined)."""
    removed = 0
    for group in [g for c in ("cpu", "pids") for g in (CGROUPS / c / "autograder").glob("grade-*")]:
        try:
            if time.time() - group.stat().st_mtime > min_age:
                group.rmdir()
                removed += 1
        except OSError:
            pass
    return removed


def kernel_prefix(work: Path, limits: Limits, uid: int | None = None, cgroups: list[Path] = ()) -> list[str]:
    """The command that goes before the kernel's own: sandbox (if any), then the jail."""
    jail = [sys.executable, str(JAIL), "--cpu", str(limits.cpu_seconds), "--memory", str(limits.memory_bytes),
            "--nproc", str(limits.processes), "--fsize", str(limits.file_bytes), "--nofile", str(limits.open_files),
            *(arg for group in cgroups for arg in ("--cgroup", str(group)))]
    if bwrap() is None:
        return jail + ["--"]
    if uid is not None:
        for path in [work, *work.rglob("*")]:
            os.chown(path, uid, uid)
        jail += ["--uid", str(uid)]
    return [bwrap(), "--die-with-parent", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            *_binds(work), *(arg for group in cgroups for arg in ("--bind", str(group), str(group))),
            "--", *jail, "--"]
