"""The one place that knows a chapter's slug, its files and its reference module.

Chapter order comes from `_toc.yml` (the only place that sets it); a chapter `NN-slug` has
`book/NN-slug.md`, `solutions/NN-slug.md`, `exercises/NN-slug.ipynb` and
`autograder/reference/<slug with underscores>.py`.
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
    """The chapter's reference module, autograder.reference.<name>."""
    return importlib.import_module(f"autograder.reference.{module_name(check(slug))}")


def exercise(slug: str, name: str):
    exercises = reference(slug).EXERCISES
    if name not in exercises:
        raise ValueError(f"chapter {slug} has no exercise {name!r}; it has: {', '.join(exercises)}")
    return exercises[name]


def book(slug: str) -> Path:
    return ROOT / "book" / f"{slug}.md"


def source(slug: str) -> Path:
    return ROOT / "solutions" / f"{slug}.md"


def release(slug: str) -> Path:
    return ROOT / "exercises" / f"{slug}.ipynb"


def data(slug: str) -> Path:
    return ROOT / "book" / "data" / f"{slug}.json"
