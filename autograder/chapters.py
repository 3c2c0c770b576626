"""The one place that knows a chapter's slug, its files and its reference module.

Chapter order comes from `_toc.yml` (the only place that sets it); a chapter `NN-slug` has
`book/NN-slug.md`, `solutions/NN-slug.md`, `exercises/NN-slug.ipynb` and
`autograder/cases/<module>.py` (what runs in the learner's kernel) and
`autograder/reference/<module>.py` (what only the grader runs), module = the slug's name with
underscores.
"""
import importlib
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SLUG = re.compile(r"^\d\d-[a-z0-9-]+$")


def slugs() -> list[str]:
    """Chapter slugs in book order, read from _toc.yml."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [entry["file"] for part in toc.get("parts", [toc]) for entry in part.get("chapters", [])]
    return [Path(f).name for f in files if SLUG.match(Path(f).name)]


def check(slug: str) -> str:
    if slug not in slugs():
        raise ValueError(f"unknown chapter {slug!r}; the chapters are: {', '.join(slugs())}")
    return slug


def module_name(slug: str) -> str:
    """'04-flash-attention' -> 'flash_attention'."""
    return slug.split("-", 1)[1].replace("-", "_")


def reference(slug: str):
    """The chapter's reference module, autograder.reference.<name> (never importable in the sandbox)."""
    return importlib.import_module(f"autograder.reference.{module_name(check(slug))}")


def cases(slug: str):
    """The chapter's case module, autograder.cases.<name>: generators and runs, no references."""
    return importlib.import_module(f"autograder.cases.{module_name(check(slug))}")


def _named(table: dict, slug: str, name: str):
    if name not in table:
        raise ValueError(f"chapter {slug} has no exercise {name!r}; it has: {', '.join(table)}")
    return table[name]


def task(slug: str, name: str):
    """What verify() runs inside the learner's kernel: cases, run, forbidden names."""
    return _named(cases(slug).TASKS, slug, name)


def exercise(slug: str, name: str):
    """The whole exercise, with its reference and check: the grader's process only."""
    return _named(reference(slug).EXERCISES, slug, name)


def course_package() -> str:
    """What pip installs to get the learner's edition of the course's package outside the course's
    tree (Colab, a bare Jupyter): the repository and branch of _config.yml, the one place they are
    set (the branch is the learner's edition that `make publish` writes and CI deploys)."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    return f"git+{repo['url'].rstrip('/')}@{repo.get('branch', 'main')}"


def book(slug: str) -> Path:
    return ROOT / "book" / f"{slug}.md"


def source(slug: str) -> Path:
    return ROOT / "solutions" / f"{slug}.md"


def release(slug: str) -> Path:
    return ROOT / "exercises" / f"{slug}.ipynb"


def cell_limits() -> Path:
    """exercises/cell-limits.json: each chapter's default seconds per graded cell, set at release."""
    return ROOT / "exercises" / "cell-limits.json"


def data(slug: str) -> Path:
    return ROOT / "book" / "data" / f"{slug}.json"
