"""verify(chapter, exercise, fn): the one call a hidden test block makes.

Inside the learner's kernel it runs the exercise's cases (random ones from a seed chosen at grade
time) on the grading device and raises an AssertionError that names the failing case. When the
grader sets AUTOGRADER_RECORD_DIR it also records every output in `<exercise>.npz`; the grader then
compares those records with references it computes itself (`check_record`), so nothing the
learner's process does to `verify` or to torch can change the score.
"""
import os
import secrets
from pathlib import Path

import numpy as np

from autograder import chapters, forbidden
from autograder.exercise import Exercise, Outputs

SEED_VAR, RECORD_VAR = "AUTOGRADER_SEED", "AUTOGRADER_RECORD_DIR"


def _run(ex: Exercise, fn, case) -> Outputs:
    try:
        return ex.run(fn, case)
    except Exception as e:  # the learner's exception is an output like any other
        return {"error": np.array(f"{type(e).__name__}: {e}"[:500])}


def _first_failure(ex: Exercise, cases, outputs) -> str | None:
    for case, got in zip(cases, outputs):
        try:
            ex.check(case, got, ex.reference(case))
        except AssertionError as e:
            return f"{ex.name} fails when {case.kind}: {e}"
    return None


def verify(chapter: str, exercise: str, fn) -> None:
    ex = chapters.exercise(chapter, exercise)
    forbidden.check(fn, ex.forbidden, ex.why)
    seed = int(os.environ.get(SEED_VAR) or secrets.randbits(32))
    cases = ex.cases(np.random.default_rng(seed))
    outputs = [_run(ex, fn, case) for case in cases]
    if os.environ.get(RECORD_VAR):
        record(Path(os.environ[RECORD_VAR]) / f"{exercise}.npz", outputs)
    failure = _first_failure(ex, cases, outputs)
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
    return _first_failure(ex, cases, outputs)
