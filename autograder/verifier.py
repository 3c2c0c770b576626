"""verify(chapter, exercise, fn): the one call a hidden test block makes.

It draws the exercise's cases (random ones from a seed chosen at grade time), runs the learner's
function on each on the grading device, and then:

- inside a grading kernel (the grader sets AUTOGRADER_RECORD_DIR) it only records every output in
  `<exercise>.npz` and returns. The references are not even importable there (the sandbox hides
  autograder/reference/); the grader compares the records with references it computes in its own
  process (`check_record`), so nothing the learner's process does can change the score;
- anywhere else (an instructor running the source notebook, the tests) it compares the outputs
  with the references itself and raises an AssertionError that names the failing case.
"""
import os
import secrets
from pathlib import Path

import numpy as np

from autograder import chapters, forbidden
from autograder.exercise import Exercise, Outputs, Task

SEED_VAR, RECORD_VAR = "AUTOGRADER_SEED", "AUTOGRADER_RECORD_DIR"


def _run(ex: Task, fn, case) -> Outputs:
    try:
        return ex.run(fn, case)
    except Exception as e:  # the learner's exception is an output like any other
        return {"error": np.array(f"{type(e).__name__}: {e}"[:500])}


def _failures(ex: Exercise, cases, outputs) -> str | None:
    """None when every case passed; else how many failed, and the first failing case of each kind of
    failure (up to three kinds), so that a bug that fails everywhere is not blamed on one case."""
    failed = []
    for case, got in zip(cases, outputs):
        try:
            ex.check(case, got, ex.reference(case))
        except AssertionError as e:
            failed.append((case.kind, str(e)))
    if not failed:
        return None
    firsts: dict[str, tuple[str, str]] = {}
    for kind, message in failed:
        firsts.setdefault(message.split(":", 1)[0], (kind, message))
    shown = [f"when {kind}: {message[:400]}" for kind, message in list(firsts.values())[:3]]
    return f"{ex.name} fails in {len(failed)} of {len(cases)} cases; first: " + "; also ".join(shown)


def verify(chapter: str, exercise: str, fn) -> None:
    task = chapters.task(chapter, exercise)
    forbidden.check(fn, task.forbidden, task.why)
    seed = int(os.environ.get(SEED_VAR) or secrets.randbits(32))
    cases = task.cases(np.random.default_rng(seed))
    outputs = [_run(task, fn, case) for case in cases]
    if os.environ.get(RECORD_VAR):  # grading: the grader's own process decides
        record(Path(os.environ[RECORD_VAR]) / f"{exercise}.npz", outputs)
        return
    failure = _failures(chapters.exercise(chapter, exercise), cases, outputs)
    if failure:
        raise AssertionError(failure)


def record(path: Path, outputs: list[Outputs]) -> None:
    flat = {f"{i}.{key}": np.asarray(v) for i, out in enumerate(outputs) for key, v in out.items()}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **flat)
    os.replace(tmp, path)


def load_record(path: Path) -> list[Outputs]:
    outputs: dict[int, Outputs] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            i, name = key.split(".", 1)
            outputs.setdefault(int(i), {})[name] = data[key]
    return [outputs.get(i, {}) for i in range(max(outputs, default=-1) + 1)]


def check_record(chapter: str, exercise: str, seed: int, path: Path) -> str | None:
    """The grader's own verdict on recorded outputs: None when correct, else the reason."""
    ex = chapters.exercise(chapter, exercise)
    if not path.exists():
        return "verify recorded no outputs (the graded call did not run to the end)"
    try:
        outputs = load_record(path)
    except Exception as e:
        return f"the recorded outputs cannot be read ({type(e).__name__})"
    cases = ex.cases(np.random.default_rng(seed))
    if len(outputs) != len(cases):
        return f"verify recorded {len(outputs)} outputs for {len(cases)} cases"
    return _failures(ex, cases, outputs)
