"""`python -m autograder release`: regenerate exercises/NN-slug.ipynb from solutions/NN-slug.md.

The release is what `nbgrader generate_assignment` makes of the source notebook (solutions
replaced by stubs, hidden tests removed, cells locked, checksums added), with outputs cleared.
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from autograder import chapters
from autograder.notebooks import source_notebook


def build(slug: str, out: Path) -> Path:
    """Write the release notebook of `slug` to `out` (a file path) and return it."""
    nb = source_notebook(slug)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "source", slug, f"{slug}.ipynb")
        src.parent.mkdir(parents=True)
        nbformat.write(nb, src)
        cmd = [
            sys.executable, "-m", "nbgrader", "generate_assignment", slug, "--force", "--no-db",
            f"--CourseDirectory.root={tmp}", "--log-level=ERROR",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment failed for {slug}:\n{done.stderr[-3000:]}")
        released = nbformat.read(Path(tmp, "release", slug, f"{slug}.ipynb"), as_version=4)
    for cell in released.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(released, out)
    return out


def release(slugs: list[str]) -> list[Path]:
    return [build(slug, chapters.release(slug)) for slug in slugs]
