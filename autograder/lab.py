"""`make lab`: JupyterLab for a learner, or for an instructor on a grading run.

A learner's lab opens a working copy of the exercises (my-exercises/, untracked: copied once from
exercises/, and never overwritten, so `make release` or `git pull` cannot touch a learner's work)
with nbgrader's Validate button and none of its instructor tools (no Create Assignment sidebar, no
Formgrader, no Assignment or Course List, which only say "Error fetching courses!" without an
exchange). Both are switched off in a Jupyter config folder of the learner's own, not in the
environment. An instructor's lab (`make lab OUT=grading`) opens the grading run's folder as the
formgrader's course, with every nbgrader tool.
"""
import json
import os
import shutil
import sys
from pathlib import Path

from autograder import chapters

WORKING_COPY = chapters.ROOT / "my-exercises"
LEARNER_CONFIG = chapters.ROOT / ".cache" / "jupyter-learner"
INSTRUCTOR_ONLY_LAB = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:assignment-list",
                       "@jupyter/nbgrader:course-list", "@jupyter/nbgrader:create-assignment"]
INSTRUCTOR_ONLY_SERVER = ["nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.assignment_list",
                          "nbgrader.server_extensions.course_list"]


def working_copy(folder: Path = WORKING_COPY) -> list[Path]:
    """Copy each chapter's exercise notebook into the learner's folder unless it is already there;
    returns the notebooks copied now."""
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for slug in chapters.slugs():
        target = folder / chapters.release(slug).name
        if not target.exists():
            shutil.copy(chapters.release(slug), target)
            copied.append(target)
    return copied


def learner_config(folder: Path = LEARNER_CONFIG) -> Path:
    """A Jupyter config folder that leaves a learner Validate only."""
    (folder / "labconfig").mkdir(parents=True, exist_ok=True)
    (folder / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {name: True for name in INSTRUCTOR_ONLY_LAB}}, indent=1) + "\n")
    (folder / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {name: False for name in INSTRUCTOR_ONLY_SERVER}}}, indent=1) + "\n")
    return folder


def main(out: str | None, folder: str | None, port: int, token: str, extra: list[str]) -> int:
    env = dict(os.environ)
    args = [str(Path(sys.executable).parent / "jupyter"), "lab", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    base = f"http://127.0.0.1:{port}"
    if out:  # the instructor, on a grading run: the formgrader's course is OUT
        from autograder import report

        root = Path(out).resolve()
        report.write_formgrader_sources(root)
        args += [f"--ServerApp.root_dir={root}", f"--CourseDirectory.root={root}"]
        print(f"JupyterLab on {root}/: open {base}/lab?token={token}")
        print(f"the formgrader: {base}/formgrader?token={token}", flush=True)
    else:
        root = Path(folder).resolve() if folder else WORKING_COPY
        copied = working_copy(root)
        env["JUPYTER_CONFIG_DIR"] = str(learner_config())
        args += [f"--ServerApp.root_dir={root}", f"--CourseDirectory.root={root}"]
        if copied:
            print(f"copied {len(copied)} exercise notebook(s) into {root}/ (your working copy; never overwritten)")
        print(f"JupyterLab on {root}/: open {base}/lab?token={token}", flush=True)
    if os.getuid() == 0:
        args.append("--allow-root")
    os.chdir(chapters.ROOT)  # where Validate and the formgrader find nbgrader_config.py
    os.execve(args[0], args + extra, env)
    return 0  # not reached
