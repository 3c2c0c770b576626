"""What a chapter declares for each exercise, in two halves that live in two modules.

A `Task` (autograder/cases/<module>.py) is what runs inside the learner's kernel: a case
generator, a way to run the learner's function on a case and record its outputs, and the names
the exercise refuses. An `Exercise` (autograder/reference/<module>.py) is the task plus what only
the grader's own process holds: the reference that says what the run should give, and the
check. The sandbox mounts autograder/cases/ but not autograder/reference/, so a learner's code
can draw the cases but never call a reference. Outputs are dicts of NumPy arrays, so that they
can be recorded in a non-executable `.npz` and compared again outside the learner's process.
"""
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from autograder.tolerance import compare

Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class Case:
    kind: str  # what the case exercises, named in failure messages: "m == 0"
    args: tuple  # inputs, built on the CPU from the grading seed


def require(got: Outputs, want: Outputs) -> None:
    """Where a check starts: the learner's function must not have raised, and must have produced
    every output the reference did."""
    if "error" in got and "error" not in want:
        raise AssertionError(f"raises {got['error']}")
    for key in want:
        if key not in got:
            raise AssertionError(f"produced no {key!r}")


def check_outputs(case: Case, got: Outputs, want: Outputs, exact: bool = False) -> None:
    """Default check: same keys, each compared with the dtype-keyed tolerance (or bit for bit)."""
    require(got, want)
    for key, w in want.items():
        compare(got[key], w, key, exact=exact)


@dataclass(frozen=True)
class Task:
    """The half of an exercise that runs in the learner's kernel (imports no reference)."""

    name: str
    cases: Callable[[np.random.Generator], list[Case]]
    run: Callable[[Callable, Case], Outputs]  # call the learner's function on a case
    forbidden: frozenset = field(default_factory=frozenset)  # names refused in the learner's code
    why: str = ""  # why they are refused, shown with the refusal

    def graded(self, reference: Callable[[Case], Outputs],
               check: Callable[[Case, Outputs, Outputs], None] = check_outputs) -> "Exercise":
        """The whole exercise: this task with the grader's reference and check."""
        return Exercise(self.name, self.cases, self.run, reference, check, self.forbidden, self.why)


@dataclass(frozen=True)
class Exercise:
    name: str
    cases: Callable[[np.random.Generator], list[Case]]
    run: Callable[[Callable, Case], Outputs]  # call the learner's function on a case
    reference: Callable[[Case], Outputs]  # what run() must give, from the plain spec
    check: Callable[[Case, Outputs, Outputs], None] = check_outputs
    forbidden: frozenset = field(default_factory=frozenset)  # names refused in the learner's code
    why: str = ""  # why they are refused, shown with the refusal


def to_numpy(x: Any) -> np.ndarray:
    """Tensor, list or scalar -> NumPy array on the CPU (never an object array)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"output of type {type(x).__name__} is not an array of numbers")
    return arr


def raised(call) -> np.ndarray:
    """What an error case records: the name of the exception call() raises, or what it returned."""
    try:
        result = call()
    except Exception as e:
        return np.array(type(e).__name__)
    return np.array(f"returned {type(result).__name__}")


def dtype_name(t) -> np.ndarray:
    """A learner's output's dtype as a string ("float32"), for a check that names it."""
    return np.array(str(getattr(t, "dtype", type(t).__name__)).replace("torch.", ""))


# Names refused where a rule is measured on torch ops alone (memory, work): a trip through NumPy
# would hide from it what the rule bounds.
NO_NUMPY = frozenset({"numpy", "np", ".numpy", ".tolist", "from_numpy", "asarray", "__array__"})
