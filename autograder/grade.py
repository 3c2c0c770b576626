"""`python -m autograder grade SUBMISSIONS --out OUT`: grade a class.

SUBMISSIONS/<student_id>/<slug>.ipynb -> OUT/grades.csv, OUT/feedback/<student_id>/<slug>.html,
OUT/report.png, OUT/runs.jsonl and the nbgrader gradebook. A submission can cost only its own
points: whatever it does, it gets a status and the batch goes on.

Statuses, per graded cell: graded (the cell ran; points if it passed in the kernel *and* the
grader's own comparison of the recorded outputs agrees), timeout, crashed, not_gradable.

Each finished submission is saved at once under OUT/results/, keyed by the hashes of the
submission, the release and the grading settings; a rerun reuses what is still valid, so a batch
killed halfway completes with the grades an uninterrupted run gives.

Where the submissions are graded is the executor's business: `LocalPool` (`--workers N`, this
machine) or `autograder.raygrade.RayPool` (`--ray ADDRESS`, a Ray cluster). Either way this process
alone saves results and writes every output.
"""
import ast
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import nbformat

from autograder import chapters, forbidden, notebooks, sandbox
from autograder.execute import execute
from autograder.release import cell_limit
from autograder.verifier import RECORD_VAR, SEED_VAR, check_record


@dataclass
class Row:
    student_id: str
    chapter: str
    grade_id: str
    points: float
    max_points: float
    status: str
    reason: str
    stdout: str = ""
    visible: str = ""  # the test cell without its hidden block, for feedback
    outputs: list = field(default_factory=list)  # the test cell's outputs, for OUT/autograded/ (nbgrader_dirs)


@dataclass(frozen=True)
class Options:
    cell_timeout: float | None = None  # None: each chapter's limit recorded at release
    notebook_timeout: float = 900.0
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Release:
    """What one chapter's grading needs, loaded once per process."""

    slug: str
    source: nbformat.NotebookNode
    release: nbformat.NotebookNode
    sha256: str

    @classmethod
    def load(cls, slug: str) -> "Release":
        digest = hashlib.sha256(chapters.source(slug).read_bytes() + chapters.release(slug).read_bytes())
        return cls(slug, notebooks.source_notebook(slug), nbformat.read(chapters.release(slug), as_version=4),
                   digest.hexdigest())


_release = functools.cache(Release.load)


def seed_for(student_id: str, release: Release) -> int:
    """Random cases differ per learner and per release, and a regrade draws the same ones."""
    return int(hashlib.sha256(f"{student_id}/{release.slug}/{release.sha256}".encode()).hexdigest()[:8], 16)


def _rows(student_id: str, release: Release, status: str, reason: str) -> list[Row]:
    return [Row(student_id, release.slug, gid, 0.0, pts, status, reason)
            for gid, pts in notebooks.exercises(release.source)]


def _learner_code(nb, source) -> str:
    """All code the learner wrote: solution cells and cells of their own."""
    instructor = {notebooks.grade_id(c) for c in source.cells if not notebooks.is_solution(c)}
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code" and notebooks.grade_id(c) not in instructor)


def _reaches_into_grader(code: str) -> bool:
    """Does learner code touch the grader beyond `autograder.device` (which only picks the device)?
    Imports, attribute access and strings that name it all count; a string is how a dynamic
    import would spell it."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return "autograder" in code.replace("autograder.device", "")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.startswith("autograder") and a.name != "autograder.device"
                                                for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("autograder"):
            if not (node.module == "autograder.device" or (node.module == "autograder" and
                                                           all(a.name == "device" for a in node.names))):
                return True
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "autograder" \
                and node.attr != "device":
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and "autograder" in node.value.replace("autograder.device", ""):
            return True
    return False


def _static_refusal(slug: str, test_id: str, nb) -> str | None:
    """The grader's own reading of the learner's solution cell for forbidden names."""
    name = test_id.removeprefix("test_")
    ex = chapters.exercise(slug, name)
    cell = next((c for c in nb.cells if notebooks.grade_id(c) == name), None)
    if cell is None or not ex.forbidden:
        return None
    try:
        found = forbidden.uses(cell.source, set(ex.forbidden))
    except SyntaxError:
        return None  # it cannot run either; the kernel's error says why
    return f"{name} uses `{found[0][0]}`, which this exercise forbids: {ex.why}" if found else None


def kernel_env(work: Path, seed: int) -> dict:
    """The kernel's whole environment: nothing of the grader's but what Python needs."""
    # CUDA_VISIBLE_DEVICES: on a Ray GPU node, the GPU(s) Ray gave this task, and no other
    keep = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                       "CUDA_VISIBLE_DEVICES") if k in os.environ}
    return {
        **keep, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(work),
        SEED_VAR: str(seed), RECORD_VAR: str(work / "records"), "MPLBACKEND": "Agg",
        "TRITON_CACHE_DIR": str(work / "triton"), "TORCHINDUCTOR_CACHE_DIR": str(work / "inductor"),
        "MPLCONFIGDIR": str(work / "mpl"), "PYTHONDONTWRITEBYTECODE": "1",
    }


def grade_submission(student_id: str, path: Path, slug: str, opts: Options, timing: dict | None = None,
                     release: Release | None = None) -> list[Row]:
    """The rows of one submission. `timing`, if given, receives the seconds its cells ran;
    `release`, if given, is the chapter's release as the driver loaded it (default: this checkout's)."""
    release = release or _release(slug)
    try:
        submission = notebooks.read_submission(path)
    except ValueError as e:
        return _rows(student_id, release, "not_gradable", str(e))
    nb, notes = notebooks.assemble(submission, release.source, release.release)
    seed = seed_for(student_id, release)
    limit = opts.cell_timeout or cell_limit(slug)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    work = Path(tempfile.mkdtemp(prefix="grade-"))
    uid, cgroups = None, []
    try:
        os.chmod(work, 0o755)
        (work / "records").mkdir()
        uid = sandbox.uid_for(seed)
        cgroups = sandbox.make_cgroups(work.name, opts.limits) if uid is not None else []
        runs = execute([c.source for c in code_cells], cwd=str(work), env=kernel_env(work, seed),
                       cell_timeout=limit, notebook_timeout=opts.notebook_timeout,
                       prefix=sandbox.kernel_prefix(work, opts.limits, uid, cgroups),
                       after_cell=lambda: sandbox.reap(uid))
        if timing is not None:
            timing["cells_seconds"] = round(sum(r.seconds for r in runs), 2)
        by_id = {notebooks.grade_id(c): r for c, r in zip(code_cells, runs)}
        first_bad = next(((notebooks.grade_id(c) or "a cell of your own", r) for c, r in zip(code_cells, runs)
                          if r.status in ("timeout", "crashed")), None)
        cheat = _reaches_into_grader(_learner_code(nb, release.source))
        rows = []
        for test_id, points in notebooks.exercises(release.source):
            name = test_id.removeprefix("test_")
            run = by_id[test_id]
            row = Row(student_id, release.slug, test_id, 0.0, points, "graded", "", stdout=run.stdout,
                      outputs=kept_outputs(run.outputs),
                      visible=notebooks.HIDDEN.sub("", next(
                          c.source for c in release.source.cells if notebooks.grade_id(c) == test_id)).strip())
            if run.status == "ok":
                verdict = ("your code reaches into the grader (autograder), which submissions may not do" if cheat
                           else _static_refusal(release.slug, test_id, nb)
                           or check_record(release.slug, name, seed, work / "records" / f"{name}.npz"))
                row.points, row.reason = (points, "") if verdict is None else (0.0, verdict)
            elif run.status == "error" and run.ename == "NotImplementedError":
                row.reason = "not attempted (NotImplementedError)"
            elif run.status == "error":
                row.reason = f"{run.ename}: {run.evalue}".strip()
            elif run.status == "timeout":
                row.status, row.reason = "timeout", f"the cell ran past its limit of {limit:g} s"
                if run.evalue:
                    row.reason += f" ({run.evalue})"
            elif run.status == "crashed":
                row.status, row.reason = "crashed", "the kernel died while running this cell"
            else:  # not run: something before it timed out or crashed
                cause_id, cause = first_bad if first_bad else ("?", None)
                row.status = cause.status if cause else "crashed"
                row.reason = f"not run: the kernel was {'killed' if row.status == 'timeout' else 'lost'} in {cause_id}"
            mine = [note for gid, note in notes if gid in (test_id, name)]
            if mine:
                row.reason = "; ".join(filter(None, [row.reason, *mine]))
            rows.append(row)
        return rows
    finally:
        sandbox.reap(uid, everything=True)  # the kernel is gone; anything of its uid is a stray
        sandbox.remove_cgroups(cgroups)
        shutil.rmtree(work, ignore_errors=True)


def kept_outputs(outputs: list, limit: int = 20_000) -> list:
    """A graded cell's outputs as the autograded notebook keeps them: text only, each cut to `limit`
    characters (images and widgets are not worth their bytes in OUT/results/)."""
    kept = []
    for out in outputs:
        if out.get("output_type") == "stream":
            kept.append({"output_type": "stream", "name": out.get("name", "stdout"), "text": out.get("text", "")[-limit:]})
        elif out.get("output_type") == "error":
            kept.append({"output_type": "error", "ename": out.get("ename", ""), "evalue": out.get("evalue", "")[:limit],
                         "traceback": [t[:limit] for t in out.get("traceback", [])][-20:]})
        elif out.get("output_type") in ("execute_result", "display_data") and "text/plain" in out.get("data", {}):
            kept.append({"output_type": "display_data", "metadata": {},
                         "data": {"text/plain": str(out["data"]["text/plain"])[:limit]}})
    return kept


# ---------------------------------------------------------------- a batch


def find_submissions(root: Path) -> list[tuple[str, str, Path]]:
    """(student_id, file stem, path) for every SUBMISSIONS/<student_id>/<file>.ipynb, sorted."""
    found = []
    for student in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for nb in sorted(student.glob("*.ipynb")):
            found.append((student.name, nb.stem, nb))
    return found


def sha256_file(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _result_path(out: Path, student: str, slug: str) -> Path:
    return out / "results" / student / f"{slug}.json"


def _load_result(path: Path, key: dict) -> list[Row] | None:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return [Row(**r) for r in saved["rows"]] if saved.get("key") == key else None


def _save_result(path: Path, key: dict, rows: list[Row], run: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "rows": [asdict(r) for r in rows], "run": run}))
    os.replace(tmp, path)


def _timed(student: str, path: Path, slug: str, opts: Options, release: Release | None = None) -> tuple[list[Row], dict]:
    started, timing = time.time(), {}
    rows = grade_submission(student, path, slug, opts, timing, release)
    return rows, {"seconds": round(time.time() - started, 2), **timing}


class LocalPool:
    """`--workers N` on this machine: N processes, or this process alone when N is 1.

    An executor for run_batch: `submit(student, path, slug, opts)` returns a Future of
    `(rows, timing)`, and `capacity` says how many submissions may be in flight at once (so that a
    batch killed halfway has saved everything it finished)."""

    def __init__(self, workers: int = 1):
        self.workers = max(1, workers)
        self.capacity = 1 if self.workers == 1 else 2 * self.workers
        self.pool = None

    def __enter__(self):
        self.pool = ProcessPoolExecutor(max_workers=self.workers) if self.workers > 1 else None
        return self

    def __exit__(self, *exc):
        if self.pool:
            self.pool.shutdown(cancel_futures=True)

    def submit(self, student: str, path: Path, slug: str, opts: Options) -> Future:
        if self.pool:
            return self.pool.submit(_timed, student, path, slug, opts)
        future = Future()
        future.set_result(_timed(student, path, slug, opts))
        return future


def run_batch(root: Path, out: Path, slugs: list[str], opts: Options, workers: int = 1,
              progress=None, versions: dict | None = None, note=None, executor=None, found=None) -> tuple[list[Row], dict[str, Release]]:
    """Grade every submission of `slugs` under root; reuse valid saved results; return all rows.
    `note`, if given, is told in one line how many submissions were reused unchanged. `executor`
    (default: LocalPool(workers)) runs the gradings; whatever it is, results are saved here."""
    found = find_submissions(root) if found is None else found  # found: (student, stem, path), any layout
    sandbox.sweep_cgroups()
    known = set(chapters.slugs())
    releases = {slug: _release(slug) for slug in slugs if any(stem == slug for _, stem, _ in found)}
    rows_by_key: dict[tuple[str, str], list[Row]] = {}
    todo = []
    for student, stem, path in found:
        if stem not in known:
            rows_by_key[(student, stem)] = [Row(student, stem, "-", 0.0, 0.0, "not_gradable",
                                                f"{path.name} is not a chapter of this course; name it <slug>.ipynb")]
            continue
        if stem not in releases:
            continue  # a chapter not asked for in this run
        key = {"submission": sha256_file(path), "release": releases[stem].sha256, "options": opts.key(),
               "cell_limit": opts.cell_timeout or cell_limit(stem)}
        saved = _load_result(_result_path(out, student, stem), key)
        if saved is not None:
            rows_by_key[(student, stem)] = saved
        else:
            todo.append((student, stem, path, key))
    reused = sum(1 for student, stem, _ in found if (student, stem) in rows_by_key and stem in releases)
    if note and reused:
        note(f"{reused} of {reused + len(todo)} submissions unchanged since the last run, reused from "
             f"{out / 'results'}; {len(todo)} to grade")
    bar = progress(total=len(todo)) if progress else None
    runs_log = (out / "runs.jsonl").open("a")

    def finish(student, stem, path, key, rows, timing):
        run = {"student_id": student, "chapter": stem, "submission_sha256": key["submission"],
               "release_sha256": key["release"], **timing,
               "points": sum(r.points for r in rows), "sandbox": sandbox.describe(), **(versions or {})}
        _save_result(_result_path(out, student, stem), key, rows, run)
        runs_log.write(json.dumps(run) + "\n")
        runs_log.flush()
        rows_by_key[(student, stem)] = rows
        if bar:
            bar.update(1)

    try:
        with executor or LocalPool(workers) as pool:
            queue, pending = iter(todo), {}

            def top_up():
                while len(pending) < pool.capacity:
                    job = next(queue, None)
                    if job is None:
                        return
                    student, stem, path, key = job
                    # the cell limit travels with the task: every node grades with the driver's
                    pending[pool.submit(student, path, stem, replace(opts, cell_timeout=key["cell_limit"]))] = job

            top_up()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    finish(*pending.pop(future), *future.result())
                top_up()
    finally:
        runs_log.close()
        if bar:
            bar.close()
    rows = [r for student, stem, _ in found if (student, stem) in rows_by_key for r in rows_by_key[(student, stem)]]
    if sandbox.bwrap() is None:
        for r in rows:
            r.reason = "; ".join(filter(None, [r.reason, "graded without a sandbox (bubblewrap not found)"]))
    return rows, releases
