"""Run a command under resource limits, as an unprivileged user when started as root.

Used by the grader as the last step before a learner's kernel starts:
    python autograder/jail.py --cpu S --memory B --nproc N --fsize B --nofile N [--uid U] -- CMD...
It is a standalone script (no package imports) so that it starts fast inside the sandbox.
"""
import argparse
import os
import resource
import sys


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cpu", type=int, required=True, help="CPU seconds")
    p.add_argument("--memory", type=int, required=True, help="bytes of address space")
    p.add_argument("--nproc", type=int, required=True, help="processes and threads of the user")
    p.add_argument("--fsize", type=int, required=True, help="bytes per written file")
    p.add_argument("--nofile", type=int, required=True, help="open files")
    p.add_argument("--uid", type=int, help="drop to this uid/gid (only when started as root)")
    p.add_argument("--cgroup", action="append", default=[], help="a cgroup folder to join first")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    args = p.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    for group in args.cgroup:  # before dropping privileges: joining needs root
        with open(os.path.join(group, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    for limit, value in [(resource.RLIMIT_CPU, args.cpu), (resource.RLIMIT_AS, args.memory),
                         (resource.RLIMIT_NPROC, args.nproc), (resource.RLIMIT_FSIZE, args.fsize),
                         (resource.RLIMIT_NOFILE, args.nofile), (resource.RLIMIT_CORE, 0)]:
        resource.setrlimit(limit, (value, value))
    if args.uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(args.uid)
        os.setuid(args.uid)  # RLIMIT_NPROC is not enforced for root
    # inside a PID namespace the kernel's parent is the namespace's init, which ipykernel's parent
    # poller takes for "the parent died"; the sandbox ends the kernel with its parent anyway
    os.environ.pop("JPY_PARENT_PID", None)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
