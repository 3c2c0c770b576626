"""Where a learner's kernel runs: bubblewrap namespaces when available, resource limits always.

With `bwrap` (Debian's bubblewrap) the kernel gets no network, its own PID namespace (nothing it
starts outlives it), a read-only view of only the Python runtime, the virtual environment, the
`autograder` package and `_toc.yml` (not solutions/, tests/, the gradebook or other
submissions), a private writable folder, and runs as an unprivileged user under rlimits. Without
bwrap, only the rlimits and the private folder apply, and the grader says so on every run.
"""
import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from autograder import chapters

NOBODY = 65534
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
    return args + ["--chdir", str(work)]


def kernel_prefix(work: Path, limits: Limits) -> list[str]:
    """The command that goes before the kernel's own: sandbox (if any), then the jail."""
    jail = [sys.executable, str(JAIL), "--cpu", str(limits.cpu_seconds), "--memory", str(limits.memory_bytes),
            "--nproc", str(limits.processes), "--fsize", str(limits.file_bytes), "--nofile", str(limits.open_files)]
    if bwrap() is None:
        return jail + ["--"]
    if os.getuid() == 0:
        os.chown(work, NOBODY, NOBODY)
        for sub in work.rglob("*"):
            os.chown(sub, NOBODY, NOBODY)
        jail += ["--uid", str(NOBODY)]
    return [bwrap(), "--die-with-parent", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            *_binds(work), "--", *jail, "--"]
