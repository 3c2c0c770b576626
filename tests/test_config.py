"""The set-up files agree: environment.yml carries pyproject's pins, the lock satisfies them,
.ci/run calls the README's test command."""
import re
import tomllib

import yaml
from packaging.requirements import Requirement

from autograder import chapters

ROOT = chapters.ROOT


def pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {Requirement(d).name.lower(): str(Requirement(d).specifier) for d in deps}


def test_environment_yml_has_the_same_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = {Requirement(d).name.lower(): str(Requirement(d).specifier) for d in pip if not d.startswith("-")}
    assert pins == pyproject_pins(), (
        "environment.yml's pip list must carry exactly pyproject.toml's dependencies and pins; "
        f"differences: {set(pins.items()) ^ set(pyproject_pins().items())}"
    )
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert python == ["python=3.11"], "environment.yml should pin python=3.11, the version CI uses"


def test_constraints_satisfy_the_pins():
    locked = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            locked[name.lower().replace("_", "-")] = version
    for name, spec in pyproject_pins().items():
        key = name.replace("_", "-")
        assert key in locked, f"{name} is a dependency but constraints.txt does not lock it"
        assert Requirement(f"{name}{spec}").specifier.contains(locked[key], prereleases=True), (
            f"constraints.txt locks {name}=={locked[key]}, outside pyproject's {spec}"
        )


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make book" in readme, "the README must give both set-up commands"
    assert re.search(r"^\s*make test\b", (ROOT / ".ci" / "run").read_text(), re.M), ".ci/run must call `make test`"


def test_every_chapter_has_its_five_places():
    for slug in chapters.slugs():
        for path in (chapters.book(slug), chapters.source(slug), chapters.release(slug)):
            assert path.exists(), f"chapter {slug} is missing {path.relative_to(ROOT)}"
        assert (ROOT / "tests" / "submissions" / slug).is_dir(), f"chapter {slug} has no wrong submissions"
        chapters.reference(slug)  # importable, with EXERCISES
