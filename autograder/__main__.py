"""python -m autograder {release, grade, bench}: the instructor's commands."""
import argparse
import os
import platform
import sys
from pathlib import Path


def _chapters(names):
    from autograder import chapters

    return [chapters.check(n) for n in names] if names else chapters.slugs()


def cmd_release(args) -> int:
    from autograder.release import release

    for path in release(_chapters(args.chapter)):
        print(f"wrote {path}")
    return 0


def cmd_grade(args) -> int:
    from tqdm import tqdm

    from autograder import grade, report, sandbox

    slugs = _chapters(args.chapter)
    collected = _collect(args)
    if collected is None:
        return 2
    root = Path(args.course or args.submissions)
    if sandbox.bwrap() is None:
        print("warning: bubblewrap (bwrap) is not installed or does not work here: learners' code runs "
              "with resource limits only, with network and a view of this machine's files", file=sys.stderr)
    executor = None
    if args.ray:
        if args.workers != 1:
            print("error: --workers and --ray exclude each other (on Ray, the cluster's CPUs or GPUs set the "
                  "parallelism)", file=sys.stderr)
            return 2
        from autograder.raygrade import RayPool

        executor = RayPool(args.ray, args.gpus_per_task)
    elif args.gpus_per_task is not None:
        print("error: --gpus-per-task needs --ray", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    opts = grade.Options(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout)
    progress = lambda total: tqdm(total=total, desc="grading", unit="notebook", file=sys.stderr)  # noqa: E731
    try:
        rows, releases = grade.run_batch(root, out, slugs, opts, workers=args.workers, progress=progress,
                                         versions=_versions(), note=lambda line: print(line, file=sys.stderr),
                                         executor=executor, found=collected.found)
    except ConnectionError as e:  # no Ray cluster at that address
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = _write_outputs(rows, releases, collected, out, args.db or f"sqlite:///{(out / 'gradebook.db').resolve()}",
                          workers=max(1, args.workers or 1))
    print(report.summary(rows))
    print(f"sandbox: {sandbox.describe()}")
    if executor is not None:
        print(f"graded on {executor.where}")
    print(f"wrote {out}/index.html (open it), {out}/grades.csv, {out}/feedback/, {out}/report.png, {out}/export.csv, "
          f"the gradebook, and {out}/autograded/ for the formgrader (make lab OUT={out})")
    return 0


def _collect(args):
    """The submissions in whichever layout they came (autograder/layouts.py), or None after one
    line saying which layouts are read."""
    from autograder import layouts

    try:
        return layouts.collect(Path(args.submissions) if args.submissions else None,
                               Path(args.course) if args.course else None)
    except layouts.LayoutError as e:
        print(f"error: {e}", file=sys.stderr)
        return None


def _write_outputs(rows, releases, collected, out: Path, db: str, workers: int = 1):
    """Everything a run leaves in OUT (grades.csv, feedback, report.png, index.html, the gradebook,
    nbgrader's submitted/, autograded/ and feedback, export.csv); returns the rows with the
    hand-graded scores in them."""
    from autograder import nbgrader_dirs, report
    from autograder.grade import Row

    rows = rows + [Row(student, "-", "-", 0.0, 0.0, "not_gradable", f"{name}: {why}")
                   for student, name, why in collected.unreadable]
    graded = [r for r in rows if r.chapter in releases]
    if graded:
        report.write_report(graded, out / "report.png")
        report.write_gradebook(graded, releases, db, lms_ids=collected.lms_ids)
        rows = nbgrader_dirs.with_manual_scores(rows, releases, db)
        nbgrader_dirs.write_course(out, rows, releases, collected.found, collected.timestamps, db)
    report.write_csv(rows, out / "grades.csv")
    for (student, slug) in dict.fromkeys((r.student_id, r.chapter) for r in rows if r.chapter in releases):
        report.write_feedback([r for r in rows if (r.student_id, r.chapter) == (student, slug)],
                              out / "feedback" / student / f"{slug}.html")
    if graded:
        nbgrader_dirs.write_nbgrader_feedback(out, list(releases), db, workers=workers)
        nbgrader_dirs.write_export(rows, releases, db, out / "export.csv", collected.lms_ids)
    report.write_index(rows, out / "index.html")
    return rows


def _versions() -> dict:
    import torch

    import autograder.device  # noqa: F401  (before triton)
    import triton

    return {"python": platform.python_version(), "torch": torch.__version__, "triton": triton.__version__}


def cmd_bench(args) -> int:
    from autograder.bench import bench

    for slug in _chapters(args.chapter):
        bench(slug)
    return 0


def cmd_gpu_check(args) -> int:
    from autograder import gpucheck

    if args.unpack:
        for path in gpucheck.unpack(Path(args.unpack)):
            print(f"wrote {path}")
        return 0
    return gpucheck.main(_chapters(args.chapter), cpu_smoke=args.cpu_smoke, out=Path(args.out) if args.out else None)


def cmd_lab(args) -> int:
    import secrets

    from autograder import lab

    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    return lab.main(args.out, args.dir, args.port, args.token or secrets.token_hex(16), extra)


def cmd_publish(args) -> int:
    from autograder import publish

    out = Path(args.out)
    paths = [publish.write_course(out / "course")] if args.course_only else publish.publish(out)
    for path in paths:
        files = [p for p in path.rglob("*") if p.is_file()]
        print(f"wrote {path}: {len(files)} files, {sum(p.stat().st_size for p in files) / 2**20:.1f} MiB")
    return 0


def cmd_progress(args) -> int:
    from autograder import progress

    return progress.main(Path(args.dir), Path(args.json) if args.json else None)


def cmd_bench_grade(args) -> int:
    from autograder.bench import bench_grade

    bench_grade(learners=args.learners, workers=args.workers, ray=not args.no_ray)
    return 0


def main(argv=None) -> int:
    # tools the grader runs (nbgrader's alembic, the kernel) come from this environment's bin/
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("release", help="regenerate exercises/ from solutions/")
    r.add_argument("--chapter", action="append", help="a chapter slug (repeatable); default: all")
    r.set_defaults(fn=cmd_release)
    g = sub.add_parser("grade", help="grade SUBMISSIONS/<student_id>/<slug>.ipynb, an nbgrader course "
                       "(--course DIR) or an LMS download (a folder or .zip)")
    g.add_argument("submissions", nargs="?", help="SUBMISSIONS/<student_id>/<slug>.ipynb, or an LMS bulk download "
                   "(a folder or .zip of <student>_<number>_<anything>.ipynb)")
    g.add_argument("--course", help="an nbgrader course directory: grade DIR/submitted/<student_id>/<slug>/*.ipynb")
    g.add_argument("--out", required=True, help="folder for grades.csv, feedback/, report.png, gradebook.db")
    g.add_argument("--chapter", action="append", help="grade only this chapter (repeatable)")
    g.add_argument("--db", help="gradebook URL (default: sqlite:///OUT/gradebook.db)")
    g.add_argument("--cell-timeout", type=float, default=None,
                   help="seconds per cell (default: each chapter's limit in exercises/cell-limits.json)")
    g.add_argument("--notebook-timeout", type=float, default=900.0, help="seconds per notebook (default 900)")
    g.add_argument("--workers", type=int, default=1, help="submissions graded in parallel (default 1)")
    g.add_argument("--ray", metavar="ADDRESS", help="grade on a Ray cluster: its address (HOST:PORT), `auto` for "
                   "the cluster this machine belongs to, `local` for a throw-away cluster here")
    g.add_argument("--gpus-per-task", type=float, default=None, help="with --ray: GPUs per submission (default 1 "
                   "on a cluster with GPUs; a fraction such as 0.25 shares a GPU; 0 grades on CPUs)")
    g.set_defaults(fn=cmd_grade)
    b = sub.add_parser("bench", help="time the chapters' references; on CUDA, record book/data/<slug>.json")
    b.add_argument("--chapter", action="append", help="a chapter slug (repeatable); default: all")
    b.set_defaults(fn=cmd_bench)
    gc = sub.add_parser("gpu-check", help="on CUDA: every chapter's hidden cases with the solutions, its kernels at "
                        "GPU sizes, and bench (recorded in book/data/); exit 1 on any failure")
    gc.add_argument("--chapter", action="append", help="a chapter slug (repeatable); default: all")
    gc.add_argument("--cpu-smoke", action="store_true", help="without CUDA: the same plan at CPU sizes, writing nothing")
    gc.add_argument("--out", help="also write the table and every record (gpu-records.json) to this folder")
    gc.add_argument("--unpack", metavar="FILE", help="write the records of a gpu-records.json into book/data/ and stop")
    gc.set_defaults(fn=cmd_gpu_check)
    lb = sub.add_parser("lab", help="JupyterLab: a learner's working copy with Validate only, or (--out) the "
                        "formgrader on a grading run")
    lb.add_argument("--out", help="a grading run's folder: open it as the formgrader's course")
    lb.add_argument("--dir", help="the learner's folder (default: my-exercises/, copied from exercises/ once)")
    lb.add_argument("--port", type=int, default=8888)
    lb.add_argument("--token", help="default: a fresh random token")
    lb.add_argument("extra", nargs=argparse.REMAINDER, help="more arguments for jupyter lab (after --)")
    lb.set_defaults(fn=cmd_lab)
    bg = sub.add_parser("bench-grade", help="grade a generated class against stock nbgrader; record bench/grading.json")
    bg.add_argument("--learners", type=int, default=40)
    bg.add_argument("--workers", type=int, default=2)
    bg.add_argument("--no-ray", action="store_true", help="skip the measurement through --ray on a two-node local cluster")
    bg.set_defaults(fn=cmd_bench_grade)
    pb = sub.add_parser("publish", help="the learner's edition: OUT/site (the book as deployed) and OUT/course "
                        "(the learner's tree: no solutions, no references)")
    pb.add_argument("--out", default="_build/learner")
    pb.add_argument("--course-only", action="store_true", help="write OUT/course only (needs no built book)")
    pb.set_defaults(fn=cmd_publish)
    pr = sub.add_parser("progress", help="a learner's standing: every exercise notebook's visible checks, one table")
    pr.add_argument("dir", nargs="?", default="my-exercises", help="the learner's notebooks (default my-exercises/)")
    pr.add_argument("--json", help="also write the table's rows to this file")
    pr.set_defaults(fn=cmd_progress)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except ValueError as e:  # unknown chapter and other bad input, said in one line
        if "unknown chapter" in str(e):
            print(f"error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
