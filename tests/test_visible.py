"""What a learner runs before pressing Validate: the solved notebook's visible checks pass on the
CPU within seconds per cell, and the untouched release fails with NotImplementedError."""
import os
import re
import tempfile

import pytest

from autograder import chapters, notebooks
from autograder.execute import execute
from conftest import release, solved, wrong_submissions

CELL_LIMIT = 60  # seconds; visible checks are meant to take a few


def _run(nb, course=None):
    """grade_id -> CellRun of every code cell; with `course` (a learner's tree from make publish),
    the kernel imports autograder from there, where no reference module exists."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
        if course is not None:
            env["PYTHONPATH"] = str(course)
        runs = execute([c.source for c in cells], cwd=str(course or tmp), env=env, cell_timeout=CELL_LIMIT,
                       notebook_timeout=600)
    return {notebooks.grade_id(c): r for c, r in zip(cells, runs)}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The learner's tree (autograder/publish.py): the release as a learner gets it."""
    from autograder import publish

    return publish.write_course(tmp_path_factory.mktemp("learner") / "course")


@pytest.mark.parametrize("slug", chapters.slugs())
def test_solved_notebook_passes_its_visible_checks(slug):
    for gid, run in _run(solved(slug)).items():
        assert run.status == "ok", f"{slug} cell {gid}: {run.status} {run.ename}: {run.evalue[:300]}"


@pytest.mark.parametrize("slug", chapters.slugs())
def test_untouched_release_fails_visibly(slug, course):
    """Run from the learner's tree, as a learner runs it: the set-up cell and every cell before
    the exercises work without the references, and each test cell fails with NotImplementedError."""
    import nbformat

    runs = _run(nbformat.read(course / "exercises" / f"{slug}.ipynb", as_version=4), course)
    assert runs["setup"].status == "ok" and "running on" in runs["setup"].stdout, runs["setup"]
    assert "reference" not in runs["setup"].stdout
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


HIDDEN_ONLY = re.compile(r"^# hidden-only: (.+)$", re.M)


def visible_verdicts(slug: str) -> dict[str, tuple[bool, str]]:
    """name -> (caught, how) for every wrong submission of the chapter, from its visible checks alone.

    One kernel per chapter: the solved release runs once, then for each wrong submission its cell,
    the visible test cell it must fail, and the right cell again to restore the kernel."""
    good = solved(slug)
    cells = [c for c in good.cells if c.cell_type == "code"]
    by_id = {notebooks.grade_id(c): c.source for c in cells}
    plan = [c.source for c in cells]
    probes = []
    for name, cell, breaks, src in wrong_submissions(slug):
        probes.append((name, len(plan) + 1))
        plan += [src, by_id[breaks], by_id[cell]]
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
        runs = execute(plan, cwd=tmp, env=env, cell_timeout=CELL_LIMIT, notebook_timeout=900)
    for k, (cell, run) in enumerate(zip(cells, runs)):
        assert run.status == "ok", f"{slug}: the solved notebook fails its own cell {notebooks.grade_id(cell)}"
    return {name: (runs[i].status != "ok", f"{runs[i].status} {runs[i].ename}: {runs[i].evalue[:200]}")
            for name, i in probes}


@pytest.mark.parametrize("slug", chapters.slugs())
def test_visible_checks_catch_every_wrong_submission(slug):
    """A passing Validate means no property was left untested: every wrong submission fails the
    visible checks of the exercise it breaks, unless its file says why only the hidden breadth
    (random cases, edge sizes) can catch it (`# hidden-only: why`)."""
    marked = {name: HIDDEN_ONLY.search(src) for name, _, _, src in wrong_submissions(slug)}
    missed = []
    for name, (caught, how) in visible_verdicts(slug).items():
        if not caught and not marked[name]:
            missed.append(name)
        assert not (caught and marked[name]), (
            f"{slug}/{name} is marked hidden-only, but the visible checks catch it ({how}): drop the mark")
    assert not missed, (
        f"{slug}: the visible checks pass these wrong submissions, so Validate would pass them: {', '.join(missed)}. "
        "Add a small visible assert for the property each breaks (values, gradients, dtypes, errors, memory or "
        "cost rules, forbidden calls), or mark the file `# hidden-only: why` if only random breadth can find it")
