"""What a learner runs before pressing Validate: the solved notebook's visible checks pass on the
CPU within seconds per cell, and the untouched release fails with NotImplementedError."""
import os
import tempfile

import pytest

from autograder import chapters, notebooks
from autograder.execute import execute
from conftest import release, solved

CELL_LIMIT = 60  # seconds; visible checks are meant to take a few


def _run(nb):
    cells = [c for c in nb.cells if c.cell_type == "code"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
        runs = execute([c.source for c in cells], cwd=tmp, env=env, cell_timeout=CELL_LIMIT, notebook_timeout=600)
    return {notebooks.grade_id(c): r for c, r in zip(cells, runs)}


@pytest.mark.parametrize("slug", chapters.slugs())
def test_solved_notebook_passes_its_visible_checks(slug):
    for gid, run in _run(solved(slug)).items():
        assert run.status == "ok", f"{slug} cell {gid}: {run.status} {run.ename}: {run.evalue[:300]}"


@pytest.mark.parametrize("slug", chapters.slugs())
def test_untouched_release_fails_visibly(slug):
    runs = _run(release(slug))
    for gid, _ in notebooks.exercises(notebooks.source_notebook(slug)):
        assert runs[gid].ename == "NotImplementedError", f"{slug} {gid} should fail with NotImplementedError"


def test_nbgrader_validate_passes_the_solution_and_names_failing_cells(tmp_path):
    """What the Validate button runs, with the course's nbgrader_config.py."""
    import subprocess
    import sys
    from pathlib import Path

    from conftest import ROOT, write

    nbgrader = [str(Path(sys.executable).parent / "nbgrader"), "validate"]
    good = write(solved("01-merge"), tmp_path / "good" / "01-merge.ipynb")
    done = subprocess.run([*nbgrader, str(good)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "Success! Your notebook passes all the tests." in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    bad = write(release("01-merge"), tmp_path / "bad" / "01-merge.ipynb")
    done = subprocess.run([*nbgrader, str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "NotImplementedError" in done.stdout and "triton_merge" in done.stdout, done.stdout[-2000:]
