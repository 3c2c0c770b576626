"""`make publish`: the learner's edition, `_build/learner/`, from the instructor's repository.

- `site/`: the built book as deployed (GitHub Pages): `_build/html` without what a server need
  not serve (`_sources/`, `.buildinfo`, `.doctrees`).
- `course/`: the tree a learner clones and the launch buttons open (CI pushes it to the `learner`
  branch): the book's pages, `exercises/`, the `autograder` package without `reference/` (the set-up
  cell, `make lab` and `make progress` need it; the case generators are in it, the references are
  not), the environment files and a learner's README. No `solutions/`, no `tests/` (whose wrong
  submissions are near-solutions), no reference module.

Nothing in either answers an exercise: tests/test_publish.py measures every file of both with
autograder.overlap.
"""
import shutil
import subprocess
from pathlib import Path

from autograder import chapters

OUT = chapters.ROOT / "_build" / "learner"
HTML = chapters.ROOT / "_build" / "html"

# What of the instructor's tree goes into course/ (tracked files only), and what never does.
COURSE = ("README.md", "Makefile", "pyproject.toml", "constraints.txt", "environment.yml", "_config.yml",
          "_toc.yml", "nbgrader_config.py", "book/", "exercises/", "autograder/", ".gitignore")
NEVER = ("autograder/reference/", "solutions/", "tests/", "bench/", ".github/", ".ci/")
SITE_DROP = ("_sources", ".buildinfo", ".doctrees", "reports")

README = """# {title}: the learner's edition

The book is online; this tree is what you need to do its exercises: the chapter pages (`book/`),
the exercise notebooks (`exercises/`) and the course's package (`autograder/`: the device helper,
the lab and the progress table). It holds no solutions: the grader's references stay with your
instructor.

```bash
make lab        # JupyterLab on my-exercises/, your own copy of exercises/ (made once, never overwritten)
make progress   # where you stand: every exercise's visible checks, passed / failed / not attempted
```

No GPU is needed: without CUDA, Triton kernels run in Triton's interpreter on your CPU. On Colab,
open a notebook from `exercises/` (the book's "Launch on Colab" does it), pick a GPU runtime, and
run the first cell: it installs this package, and your kernels then compile and run on the GPU.

Fill in every `YOUR CODE HERE`, run all cells, press **Validate**, and hand in
`my-exercises/NN-slug.ipynb` itself (keep its name).
"""


def _tracked() -> list[str]:
    done = subprocess.run(["git", "ls-files", "-z"], cwd=chapters.ROOT, capture_output=True, text=True, check=True)
    return [p for p in done.stdout.split("\0") if p]


def course_files() -> list[str]:
    """The instructor's tracked files that the learner's tree holds."""
    keep = []
    for path in _tracked():
        if path.startswith(NEVER) or not (path in COURSE or path.startswith(tuple(c for c in COURSE if c.endswith("/")))):
            continue
        if (chapters.ROOT / path).is_file():
            keep.append(path)
    return keep


def write_course(out: Path) -> Path:
    """The learner's tree at out (replaced whole)."""
    import yaml

    if out.exists():
        shutil.rmtree(out)
    for rel in course_files():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(chapters.ROOT / rel, target)
    title = yaml.safe_load((chapters.ROOT / "_config.yml").read_text()).get("title", "The course")
    (out / "README.md").write_text(README.format(title=title))
    leaked = [p for p in (out / "solutions", out / "tests", out / "autograder" / "reference") if p.exists()]
    if leaked:
        raise RuntimeError(f"the learner's tree holds {leaked}")
    return out


def write_site(out: Path, html: Path = HTML) -> Path:
    """The built book at out, without the files no reader needs (a page's source among them)."""
    if not (html / "index.html").exists():
        raise FileNotFoundError(f"{html} holds no built book: run `make book` first")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(html, out, ignore=shutil.ignore_patterns(*SITE_DROP))
    (out / ".nojekyll").write_text("")  # GitHub Pages serves _static/ as it is
    return out


def publish(out: Path = OUT) -> list[Path]:
    return [write_site(out / "site"), write_course(out / "course")]
