"""One hostile submission per case: how to build it, and the grades it must get.

`build(good, ctx)` returns the notebook (or raw text) from the solved notebook `good`; `ctx` holds
paths an attacker who knows the course layout would aim at. `expect` maps graded cells to
(points, status); cells not named keep full marks with status graded. `reason` is a substring the
reason of the first named cell must contain.
"""
import copy
from dataclasses import dataclass, field
from typing import Callable

import nbformat

from autograder import notebooks

WRONG_MERGE = "def merge(nums1, m, nums2, n):\n    nums1[m:] = nums2  # just appends: wrong whenever nums2 is not all larger\n"
ALL = ("test_merge", "test_merge_path_partition", "test_triton_merge")


@dataclass
class Case:
    build: Callable
    expect: dict = field(default_factory=dict)
    reason: str = ""
    filename: str = "01-merge.ipynb"


def cell(nb, grade_id):
    return next(c for c in nb.cells if notebooks.grade_id(c) == grade_id)


def replace(nb, grade_id, source):
    nb = copy.deepcopy(nb)
    cell(nb, grade_id).source = source
    return nb


def edit(fn):
    """A builder that edits a copy of the solved notebook in place."""
    def build(good, ctx):
        nb = copy.deepcopy(good)
        fn(nb, ctx)
        return nb
    return build


def _weaken(nb, ctx):
    cell(nb, "merge").source = WRONG_MERGE
    cell(nb, "test_merge").source = "assert True  # all good\n"


def _delete(nb, ctx):
    nb.cells = [c for c in nb.cells if notebooks.grade_id(c) != "test_merge_path_partition"]


def _points(nb, ctx):
    cell(nb, "merge").source = WRONG_MERGE
    cell(nb, "test_merge").metadata.nbgrader["points"] = 0
    cell(nb, "test_merge").metadata.nbgrader["grade"] = False


def _strip(nb, ctx):
    del cell(nb, "merge").metadata["nbgrader"]


def _duplicate(nb, ctx):
    k = next(i for i, c in enumerate(nb.cells) if notebooks.grade_id(c) == "test_merge")
    copy_ = copy.deepcopy(nb.cells[k])
    copy_.id = "second-copy"
    copy_.metadata.nbgrader["points"] = 50
    nb.cells.insert(k + 1, copy_)


def _kernelspec(nb, ctx):
    nb.metadata["kernelspec"] = {"name": "bash", "display_name": "Bash", "language": "bash"}


def _fake_outputs(nb, ctx):
    cell(nb, "merge").source = WRONG_MERGE
    for c in nb.cells:
        if c.cell_type == "code":
            c.execution_count = 1
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="Success! all tests pass\n")]


def _extra_cell(source, merge=None):
    """A cell of the learner's own right after the merge solution cell (which `merge` replaces)."""
    def build(good, ctx):
        nb = replace(good, "merge", merge) if merge else copy.deepcopy(good)
        k = next(i for i, c in enumerate(nb.cells) if notebooks.grade_id(c) == "merge")
        nb.cells.insert(k + 1, nbformat.v4.new_code_cell(source.format(**ctx)))
        return nb
    return build


BREAK_MERGE_IF_IT_WORKED = "    merge = None  # reached: the sandbox let it through, and merge is lost\n"


CASES = {
    "weakens-visible-test": Case(edit(_weaken), {"test_merge": (0, "graded")}, "was edited; restored"),
    "deletes-test-cell": Case(edit(_delete), {}, ""),
    "edits-points-and-flags": Case(edit(_points), {"test_merge": (0, "graded")}, "was edited; restored"),
    "strips-solution-metadata": Case(edit(_strip), {"test_merge": (0, "graded")}, "NotImplementedError"),
    "duplicates-graded-cell": Case(edit(_duplicate), {}, ""),
    "invalid-json": Case(lambda good, ctx: '{"cells": [', {g: (0, "not_gradable") for g in ALL}, "not valid JSON"),
    "wrong-schema-version": Case(lambda good, ctx: nbformat.writes(good).replace('"nbformat": 4', '"nbformat": 9'),
                                 {g: (0, "not_gradable") for g in ALL}, "malformed"),
    "renamed-notebook": Case(lambda good, ctx: good, {"-": (0, "not_gradable")}, "not a chapter", "01-merge (1).ipynb"),
    "switches-kernelspec": Case(edit(_kernelspec), {}, ""),
    "fake-passing-outputs": Case(edit(_fake_outputs), {"test_merge": (0, "graded")}, ""),
    "loops-forever": Case(lambda good, ctx: replace(good, "merge", "def merge(nums1, m, nums2, n):\n    while True:\n        pass\n"),
                          {"test_merge": (0, "timeout")}, "past its limit"),
    "ignores-sigint": Case(lambda good, ctx: replace(good, "merge", (
        "import signal, time\n\ndef merge(nums1, m, nums2, n):\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "    while True:\n        try:\n            time.sleep(0.05)\n        except KeyboardInterrupt:\n            pass\n")),
        {g: (0, "timeout") for g in ALL}, "killed"),
    "exits": Case(lambda good, ctx: replace(good, "merge", "import os\n\ndef merge(nums1, m, nums2, n):\n    os._exit(0)\n"),
                  {g: (0, "crashed") for g in ALL}, "kernel died"),
    "segfaults": Case(lambda good, ctx: replace(good, "merge", "import ctypes\n\ndef merge(nums1, m, nums2, n):\n    ctypes.string_at(0)\n"),
                      {g: (0, "crashed") for g in ALL}, "kernel died"),
    "memory-bomb": Case(lambda good, ctx: replace(good, "merge", "def merge(nums1, m, nums2, n):\n    hoard = bytearray(64 * 2**30)\n"),
                        {"test_merge": (0, "graded")}, "MemoryError"),
    "fork-bomb": Case(lambda good, ctx: replace(good, "merge", (
        "import os\n\ndef merge(nums1, m, nums2, n):\n    while True:\n        try:\n            os.fork()\n"
        "        except OSError:\n            pass\n")), {g: (0, "timeout") for g in ALL}, "past its limit"),
    "setsid-daemon": Case(_extra_cell(
        "import subprocess\nsubprocess.Popen(['sleep', '600'], start_new_session=True)\n"), {}, ""),
    "prints-a-gigabyte": Case(lambda good, ctx: replace(good, "merge", (
        "def merge(nums1, m, nums2, n):\n    print('x' * 2**30)\n")), {g: (0, "timeout") for g in ALL}, "past its limit"),
    "disables-tracebacks": Case(_extra_cell(
        "import sys\nsys.excepthook = lambda *args: None\nget_ipython().showtraceback = lambda *args, **kwargs: None\n"
        "def merge(nums1, m, nums2, n):\n    nums1[m:] = nums2\n"), {"test_merge": (0, "graded")}, "recorded no outputs"),
    "rewrites-later-cells": Case(_extra_cell(
        "get_ipython().input_transformers_post.append(lambda lines: [l.replace('verify(', 'print(') for l in lines])\n"),
        {g: (0, "graded") for g in ALL}, "recorded no outputs"),
    "monkeypatches-checks": Case(lambda good, ctx: replace(good, "merge", (
        "import numpy as np, torch\ntorch.allclose = lambda *a, **k: True\ntorch.testing.assert_close = lambda *a, **k: None\n"
        "np.testing.assert_array_equal = lambda *a, **k: None\nnp.any = lambda *a, **k: False\nnp.array_equal = lambda *a, **k: True\n"
        + WRONG_MERGE)), {"test_merge": (0, "graded")}, ""),
    "always-equal-object": Case(lambda good, ctx: replace(good, "merge_path_partition", (
        "class Anything(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n\n"
        "def merge_path_partition(a, b, diag):\n    if not 0 <= diag <= len(a) + len(b):\n        raise ValueError(diag)\n"
        "    return Anything(0)\n")), {"test_merge_path_partition": (0, "graded")}, ""),
    "lying-tensor": Case(lambda good, ctx: replace(good, "triton_merge", cell(good, "triton_merge").source + (
        "\n\nclass Liar(torch.Tensor):\n    def __eq__(self, other):\n        return torch.ones_like(other, dtype=torch.bool)\n\n"
        "_honest = triton_merge\n\ndef triton_merge(a, b):\n    return (_honest(a, b) * 0).as_subclass(Liar)\n")),
        {"test_triton_merge": (0, "graded")}, ""),
    "reads-solutions": Case(_extra_cell(  # the learner's merge is wrong; the source's would fix it
        "import re\nsource = open({solutions!r}).read()\nexec(re.search(r'def merge\\(.*?### END SOLUTION', source, re.S).group(0))\n",
        merge=WRONG_MERGE), {"test_merge": (0, "graded")}, ""),
    "reads-gradebook": Case(_extra_cell(
        "try:\n    open({gradebook!r}, 'rb').read(100)\n" + BREAK_MERGE_IF_IT_WORKED + "except OSError:\n    pass\n"), {}, ""),
    "writes-other-learner": Case(_extra_cell(
        "try:\n    open({victim!r}, 'w').write('{{}}')\n" + BREAK_MERGE_IF_IT_WORKED + "except OSError:\n    pass\n"), {}, ""),
    "opens-network": Case(lambda good, ctx: replace(good, "merge", (
        "import socket\n" + cell(good, "merge").source.replace("def merge(", "def _merge(") +
        f"\n\ndef merge(nums1, m, nums2, n):\n    socket.create_connection(('127.0.0.1', {ctx['port']}), timeout=2).close()\n"
        "    _merge(nums1, m, nums2, n)\n")), {"test_merge": (0, "graded")}, "Connection refused"),
    "poisons-triton-cache": Case(_extra_cell(
        "import os, pathlib\nfor d in [os.environ.get('TRITON_CACHE_DIR', ''), os.path.expanduser('~/.triton/cache'), {shared_cache!r}]:\n"
        "    try:\n        p = pathlib.Path(d, 'poison'); p.mkdir(parents=True, exist_ok=True); (p / 'x.json').write_text('garbage')\n"
        "    except OSError:\n        pass\n"), {}, ""),
    "branches-on-grading": Case(lambda good, ctx: replace(good, "merge", (
        "import os\n\ndef merge(nums1, m, nums2, n):\n    if os.environ.get('NBGRADER_EXECUTION') or os.environ.get('AUTOGRADER_SEED'):\n"
        "        nums1[:] = [1, 2, 2, 3, 5, 6][:m + n]  # the visible example's answer\n        return\n"
        "    nums1[m:] = nums2\n")), {"test_merge": (0, "graded")}, ""),
    "imports-autograder": Case(lambda good, ctx: replace(good, "triton_merge", (
        "import importlib\n_ref = importlib.import_module('autograder.reference.merge')\n\n"
        "def triton_merge(a, b):\n    return _ref.merge_triton(a, b)\n")), {g: (0, "graded") for g in ALL}, "reaches into the grader"),
    # the same import with a module name the static check cannot read: the sandbox has no references
    "imports-reference-by-built-name": Case(lambda good, ctx: replace(good, "triton_merge", (
        "import importlib\n_name = bytes(b ^ 1 for b in b'`tunfs`eds/sdgdsdobd/ldsfd').decode()\n\n"
        "def triton_merge(a, b):\n    return importlib.import_module(_name).merge_triton(a, b)\n")),
        {"test_triton_merge": (0, "graded")}, "No module named"),
}
