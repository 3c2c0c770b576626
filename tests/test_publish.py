"""The learner's edition (`make publish`): nothing published answers an exercise, the learner's tree
holds no answers and works without the references, an exercise notebook installs the course's
package where it is missing (Colab), page and notebook number exercises alike, the deploy workflow
lints, and `make progress` tells a learner where they stand."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder import chapters, notebooks, overlap, publish
from conftest import ROOT, release, solved, write

OUT = ROOT / "_build" / "learner"


@pytest.fixture(scope="module")
def published():
    """_build/learner/, from `make publish` (the book is brought up to date first: Sphinx rebuilds
    only what changed)."""
    done = subprocess.run(["make", "-s", "publish"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"`make publish` failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return OUT


@pytest.mark.parametrize("part", ["site", "course"])
def test_nothing_published_answers_an_exercise(published, part):
    """The overlap rule (at most 25% of a solution's tokens in runs of 12+) over every file served:
    pages, downloads, notebooks, code."""
    rows = overlap.measure_tree(published / part)
    print(f"\n{part}:\n" + overlap.tree_table(rows))
    over = [f"{r.slug} {r.exercise} ({r.share:.0%} in {r.where})" for r in rows if r.share > overlap.LIMIT]
    assert not over, (f"_build/learner/{part} holds more than {overlap.LIMIT:.0%} of these solutions: {', '.join(over)}. "
                      "Run reference code from an import of autograder.reference, never from a hidden cell's source")


def test_the_site_serves_no_page_sources(published):
    site = published / "site"
    assert (site / "index.html").exists() and (site / ".nojekyll").exists()
    assert not (site / "_sources").exists(), "a page's source holds its hidden cells: the site must not serve _sources/"
    for page in site.glob("[0-9][0-9]-*.html"):
        assert "_sources/" not in page.read_text(), f"{page.name} links a page source for download"
    served = {p.name for p in (site / "exercises").glob("*.ipynb")}
    assert served == {f"{slug}.ipynb" for slug in chapters.slugs()}


def test_the_learners_tree_holds_no_answers(published):
    course = published / "course"
    files = sorted(str(p.relative_to(course)) for p in course.rglob("*") if p.is_file())
    print(f"\ncourse/: {len(files)} files, {sum((course / f).stat().st_size for f in files) / 2**20:.2f} MiB")
    for banned in ("solutions", "tests", "autograder/reference", "bench", ".ci"):
        assert not (course / banned).exists(), f"the learner's tree holds {banned}/"
    assert not [f for f in files if "BEGIN SOLUTION" in (course / f).read_text(errors="replace")
                and not f.startswith("autograder/")], "a file of the learner's tree holds a solution block"
    for need in ("README.md", "Makefile", "pyproject.toml", "constraints.txt", "autograder/device.py",
                 "autograder/lab.py", "nbgrader_config.py", *(f"exercises/{s}.ipynb" for s in chapters.slugs())):
        assert need in files, f"the learner's tree lacks {need}"


def _run_cells(nb, cwd: Path, env: dict):
    from autograder.execute import execute

    cells = [c for c in nb.cells if c.cell_type == "code"]
    runs = execute([c.source for c in cells], cwd=str(cwd), env=env, cell_timeout=120, notebook_timeout=900)
    return {notebooks.grade_id(c): r for c, r in zip(cells, runs)}


def course_env(course: Path) -> dict:
    """A kernel that imports autograder from the learner's tree (no reference module), not from
    the instructor's checkout this environment was installed from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    env["PYTHONPATH"] = str(course)
    return env


def test_setup_cell_installs_the_package_where_it_is_missing(tmp_path):
    """Colab, or any Jupyter without the course: the first cell pip-installs the learner's
    edition (here from a local path, $COURSE_PACKAGE, instead of the repository's branch) and
    then picks the device. The new environment sees this one's packages (torch, triton: Colab
    has its own) but not the course's package."""
    course = publish.write_course(tmp_path / "course")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    site = next(venv.glob("lib/python*/site-packages"))
    here = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "torch").exists())
    (site / "outer.pth").write_text(f"{here}\n")  # a .pth line adds a path; the editable finder's .pth is not read
    python = venv / "bin" / "python"
    absent = subprocess.run([str(python), "-c", "import autograder"], cwd=tmp_path, capture_output=True, text=True)
    assert absent.returncode != 0, "the test environment must start without the course's package"
    cell = notebooks.setup_cell().source
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "PYTHONPATH"))},
           "COURSE_PACKAGE": str(course)}
    started = time.perf_counter()
    done = subprocess.run([str(python), "-c", cell], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    seconds = time.perf_counter() - started
    print(f"\nthe set-up cell installed the course's package from a local path in {seconds:.1f} s")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "installing the course's package from" in done.stdout and "running on" in done.stdout, done.stdout
    where = subprocess.run([str(python), "-c", "import autograder.device, autograder.cases; print(autograder.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, env=env)
    assert str(venv) in where.stdout, f"the package was not installed into the notebook's environment: {where.stdout}"
    missing = subprocess.run([str(python), "-c", "import autograder.reference"], cwd=tmp_path, capture_output=True)
    assert missing.returncode != 0, "the learner's package must not carry the references"


def test_setup_cell_names_the_learners_branch():
    cell = notebooks.setup_cell().source
    assert chapters.course_package() in cell and chapters.course_package().endswith("@learner")
    for slug in chapters.slugs():
        first = next(c for c in release(slug).cells if c.cell_type == "code")
        assert first.source == cell, f"exercises/{slug}.ipynb does not start with the set-up cell: make release"


def test_page_and_notebook_number_exercises_alike(published):
    for slug in chapters.slugs():
        page = (published / "site" / f"{slug}.html").read_text()
        on_page = [int(n) for n in re.findall(r'caption-number">Exercise (\d+)', page)]
        in_notebook = [int(n) for n in re.findall(r"^## Exercise (\d+)", chapters.source(slug).read_text(), re.M)]
        assert on_page == in_notebook == list(range(1, len(in_notebook) + 1)), (
            f"{slug}: the page numbers its exercises {on_page}, the notebook {in_notebook}: number them per chapter, alike")
        text = re.sub(r"<[^>]+>", " ", page)
        mentioned = {int(n) for n in re.findall(r"\bExercises? (\d+)", text)}
        assert mentioned <= set(in_notebook), f"{slug}'s page names Exercise {sorted(mentioned - set(in_notebook))}"


def test_the_deploy_workflow_lints(tmp_path):
    lint = Path(sys.executable).parent / "actionlint"
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows, "no workflow builds and deploys the learner's edition"
    text = "\n".join(w.read_text() for w in workflows)
    for step in ("make publish", "actions/deploy-pages", "actions/upload-pages-artifact", "learner"):
        assert step in text, f"the workflow lacks {step}"
    done = subprocess.run([str(lint), *map(str, workflows)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ matrix.nope }}\n")
    assert subprocess.run([str(lint), str(broken)], capture_output=True).returncode != 0, "actionlint must be able to fail"


def test_progress_tells_where_a_learner_stands(tmp_path):
    folder = tmp_path / "my-exercises"
    write(release("05-memory"), folder / "05-memory.ipynb")
    partial = solved("05-memory")
    broken = next(c for c in partial.cells if notebooks.grade_id(c) == "count_params")
    broken.source = "def count_params(cfg, embeddings=True):\n    return -1\n"
    write(partial, folder / "05-memory-partial.ipynb")
    (folder / "notes.ipynb").write_text("this is not a notebook")
    done = subprocess.run([sys.executable, "-m", "autograder", "progress", str(folder), "--json", str(tmp_path / "p.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)
    import json

    rows = json.loads((tmp_path / "p.json").read_text())
    state = {(r["notebook"], r["exercise"]): r["state"] for r in rows}
    names = [n for n, _ in notebooks.exercises(notebooks.source_notebook("05-memory"))]
    assert all(state[("05-memory.ipynb", n.removeprefix("test_"))] == "not attempted" for n in names)
    assert state[("05-memory-partial.ipynb", "count_params")] == "failed"
    assert state[("05-memory-partial.ipynb", "model_state_bytes")] == "passed"
    assert state[("notes.ipynb", "-")] == "unreadable"
    assert "points pass their visible checks" in done.stdout and "[3/3]" in done.stderr
    assert nbformat.read(folder / "05-memory.ipynb", as_version=4), "progress must not change a learner's notebook"
