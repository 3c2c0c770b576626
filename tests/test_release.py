"""exercises/ is exactly what the release step makes of solutions/, and gives nothing away."""
import json

import pytest

from autograder import chapters, notebooks
from autograder.release import build


@pytest.mark.parametrize("slug", chapters.slugs())
def test_release_is_not_stale(slug, tmp_path):
    fresh = build(slug, tmp_path / f"{slug}.ipynb")
    committed = chapters.release(slug)
    assert json.loads(fresh.read_text()) == json.loads(committed.read_text()), (
        f"exercises/{slug}.ipynb differs from what solutions/{slug}.md releases to; "
        "run `make release` (never edit exercises/ by hand)"
    )


@pytest.mark.parametrize("slug", chapters.slugs())
def test_release_hides_solutions_and_hidden_tests(slug):
    text = chapters.release(slug).read_text()
    nb = json.loads(text)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert "verify(" not in text and "autograder.reference" not in text
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), "releases ship with no outputs"
    source = notebooks.source_notebook(slug)
    for cell in source.cells:
        if notebooks.is_solution(cell):
            stub = next(c for c in nb["cells"] if c["metadata"]["nbgrader"]["grade_id"] == notebooks.grade_id(cell))
            if notebooks.is_manual(cell):  # a written answer: the model answer and rubric stay in the source
                assert "".join(stub["source"]).strip() == "YOUR ANSWER HERE" and stub["cell_type"] == "markdown"
            else:
                assert "raise NotImplementedError()" in "".join(stub["source"])


@pytest.mark.parametrize("slug", chapters.slugs())
def test_each_chapter_has_a_written_question_graded_by_hand(slug):
    """One manually graded answer cell (nbgrader: solution and grade, points, no tests) whose model
    answer and rubric are in the source's hidden solution; the release names its chapter."""
    source = notebooks.source_notebook(slug)
    written = notebooks.written(source)
    assert len(written) == 1 and written[0][1] > 0, f"{slug}: written questions {written}"
    cell = next(c for c in source.cells if notebooks.grade_id(c) == written[0][0])
    assert cell.cell_type == "markdown" and "Rubric" in cell.source and "Model answer" in cell.source
    assert written[0][0] not in dict(notebooks.exercises(source)), "a written answer is not autograded"
    release = json.loads(chapters.release(slug).read_text())
    assert notebooks.chapter_of(release) == slug, "the release's metadata names its chapter (LMS downloads)"
    assert "Rubric" not in chapters.release(slug).read_text()


def test_source_contract_is_enforced(tmp_path, monkeypatch):
    """A test cell without its verify call is refused with a message that names it."""
    slug = "01-merge"
    bad = chapters.source(slug).read_text().replace(f'verify("{slug}", "merge", merge)', "pass")
    path = tmp_path / f"{slug}.md"
    path.write_text(bad)
    monkeypatch.setattr(chapters, "source", lambda s: path)
    with pytest.raises(notebooks.SourceError, match="test_merge.*verify"):
        notebooks.source_notebook(slug)


def test_every_chapter_has_a_cell_limit_recorded_with_its_release():
    """Grading's default seconds per cell come from the release (make release measures them)."""
    from autograder.release import FLOOR, cell_limit

    limits = json.loads(chapters.cell_limits().read_text())
    for slug in chapters.slugs():
        assert slug in limits, f"exercises/cell-limits.json has no limit for {slug}: run `make release`"
        assert cell_limit(slug) == limits[slug]["cell_timeout"] >= FLOOR
        assert limits[slug]["cell_timeout"] >= 10 * limits[slug]["slowest_cell_seconds"], "a generous multiple"
