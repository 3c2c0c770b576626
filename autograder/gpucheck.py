"""`python -m autograder gpu-check`: the whole course proved on a GPU in one prepared call.

For every chapter of _toc.yml (or each --chapter):

1. cases: every exercise's hidden cases, the CUDA-only ones included, run with the instructor's
   solution as the learner's function (the solution cells of solutions/NN-slug.md, imported as a
   module) and checked against the references, exactly as grading checks a learner;
2. kernels: the reference module's `gpu_checks(small)` run its fast implementations (its Triton
   kernels, compiled for this GPU) at GPU sizes against its specs; every distinct Triton kernel
   launched in steps 1-3 is counted;
3. bench: `make bench`'s figures, recorded in book/data/<slug>.json (device, versions, date), and
   the chapter's targets, when it has some (`targets(figures)` in its reference module), judged;
4. one table; the exit code is 1 when anything failed, and each failure is named.

It imports only torch, triton, numpy, pyyaml and the standard library, because the lent GPU
machine has no nbgrader, jupytext or jupyter. Without CUDA it refuses (exit 2), except with
`--cpu-smoke`: the same plan at CPU sizes in Triton's interpreter with a one-shot timer, writing
nothing, so that the script itself is tested on every CI run; there every kernel that ran (the
solutions' and the references') is also compiled for sm_90 (`watch.compile_errors`), so a kernel
the GPU compiler would reject fails CI although no GPU is there.
"""
import importlib.util
import json
import re
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from autograder import chapters

SMOKE_CASES = 2  # cases per exercise in --cpu-smoke, which tests this script, not the chapters
RECORDS = "gpu-records.json"  # every chapter's bench record, in one file (a lent machine returns few files)
_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(?:---\n(.*?)\n---\n)?(.*?)^```", re.S | re.M)


def solution_code(slug: str) -> str:
    """The source notebook's code without its test cells: setup cells and solution cells, in order."""
    kept = []
    for header, body in _CELL.findall(chapters.source(slug).read_text()):
        meta = (yaml.safe_load(header) or {}).get("nbgrader", {}) if header else {}
        if meta.get("grade") and not meta.get("solution"):
            continue  # a test cell
        kept.append(body)
    return "\n\n".join(kept)


def load_solution(slug: str, folder: Path):
    """The chapter's solutions as an importable module (Triton reads a kernel's source from its file)."""
    name = f"solution_{chapters.module_name(slug)}"
    path = folder / f"{name}.py"
    path.write_text(solution_code(slug))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Result:
    slug: str
    cases: int = 0
    passed: int = 0
    kernels: set = field(default_factory=set)
    targets: list = field(default_factory=list)  # (text, met)
    failures: list = field(default_factory=list)
    seconds: float = 0.0


def _check_cases(slug: str, solution, result: Result, seed: int, limit: int | None) -> None:
    from autograder import verifier

    for name, ex in chapters.reference(slug).EXERCISES.items():
        fn = getattr(solution, name, None)
        if fn is None:
            result.failures.append(f"{name}: solutions/{slug}.md defines no {name}")
            continue
        cases = chapters.task(slug, name).cases(np.random.default_rng(seed))
        for case in cases[:limit]:
            result.cases += 1
            got = verifier._run(ex, fn, case)
            try:
                ex.check(case, got, ex.reference(case))
                result.passed += 1
            except AssertionError as e:
                result.failures.append(f"{name} fails when {case.kind}: {e}")


def _timer_once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def check_chapter(slug: str, cuda: bool, folder: Path, seed: int = 0) -> Result:
    from autograder import bench

    result, started = Result(slug), time.time()
    module = chapters.reference(slug)
    from autograder.watch import INTERPRETING, TritonLaunches, compile_errors

    with TritonLaunches() as log:
        limit = None if cuda else SMOKE_CASES
        steps = [("cases", lambda: _check_cases(slug, load_solution(slug, folder), result, seed, limit))]
        for name, check in getattr(module, "gpu_checks", lambda small: {})(not cuda).items():
            steps.append((f"kernel check {name}", check))
        figures = {}
        if hasattr(module, "bench"):
            steps.append(("bench", lambda: figures.update(
                bench.bench(slug) if cuda else module.bench(_timer_once, False))))
        for what, step in steps:
            try:
                step()
            except Exception as e:  # one failing step must not hide the others
                result.failures.append(f"{what}: {type(e).__name__}: {e}")
                traceback.print_exc()
    result.kernels = log.names
    if INTERPRETING:  # no GPU: still prove every kernel that ran (solutions and references) compiles for one
        result.failures += compile_errors(log.launches, full=True)
    if figures and hasattr(module, "targets"):
        try:
            result.targets = module.targets(figures)
        except Exception as e:
            result.failures.append(f"targets: {type(e).__name__}: {e}")
        if cuda:
            result.failures += [f"target missed: {text}" for text, met in result.targets if not met]
    result.seconds = time.time() - started
    return result


def table(results: list[Result]) -> str:
    lines = [f"{'chapter':<22} {'cases passed':>13} {'kernels':>8} {'seconds':>8}  targets"]
    for r in results:
        targets = "; ".join(f"{text} [{'met' if met else 'MISSED'}]" for text, met in r.targets) or "-"
        lines.append(f"{r.slug:<22} {f'{r.passed}/{r.cases}':>13} {len(r.kernels):>8} {r.seconds:>8.1f}  {targets}")
    return "\n".join(lines)


def main(slugs: list[str], cpu_smoke: bool = False, out: Path | None = None) -> int:
    from autograder.device import CUDA, describe

    if not CUDA and not cpu_smoke:
        print("gpu-check needs a CUDA device (this machine has none); --cpu-smoke runs the same plan at CPU "
              "sizes in Triton's interpreter", file=sys.stderr)
        return 2
    print(f"gpu-check on {describe()}: {', '.join(slugs)}", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    results = []
    try:
        for slug in slugs:
            print(f"--- {slug}", flush=True)
            results.append(check_chapter(slug, CUDA, folder))
            for failure in results[-1].failures:
                print(f"FAILED {slug}: {failure}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report = table(results)
    failures = [f"{r.slug}: {f}" for r in results for f in r.failures]
    print("\n" + report)
    print(f"\n{len(failures)} failure(s)" + "".join(f"\n  {f}" for f in failures) if failures else "\nall passed")
    if out is not None:  # what comes back from a lent machine: the table, and every record in one file
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu-check.txt").write_text(report + "\n" + "\n".join(failures) + "\n")
        records = {slug: json.loads(chapters.data(slug).read_text()) for slug in slugs
                   if CUDA and chapters.data(slug).exists()}
        (out / RECORDS).write_text(json.dumps(records, indent=1) + "\n")
    return 1 if failures else 0


def unpack(path: Path) -> list[Path]:
    """Write each chapter's record from a gpu-check's records file into book/data/<slug>.json."""
    records = json.loads(path.read_text())
    written = []
    for slug, record in records.items():
        chapters.check(slug)
        if record.get("chapter") != slug or "device" not in record:
            raise ValueError(f"{path}: the record of {slug} is not a bench record of that chapter")
        target = chapters.data(slug)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(record, indent=1) + "\n")
        written.append(target)
    return written
