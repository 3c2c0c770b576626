"""The book builds with -W (a warning fails it), every chapter executes, and the built pages carry
their outputs, figures with alt text, and MathJax served from the book itself."""
import re
import subprocess

import pytest

from autograder import chapters

ROOT = chapters.ROOT
HTML = ROOT / "_build" / "html"


@pytest.fixture(scope="module")
def built():
    done = subprocess.run(["make", "-s", "book"], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"`make book` failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.mark.parametrize("slug", chapters.slugs())
def test_chapter_page_is_executed(built, slug):
    page = (HTML / f"{slug}.html").read_text()
    assert "cell_output" in page, f"{slug}.html has no cell outputs: was the chapter executed?"
    images = re.findall(r"<img [^>]*>", page)
    assert images, f"{slug}.html has no figure"
    for img in images:
        assert re.search(r'alt="[^"]+"', img), f"a figure in {slug}.html has no alt text: {img[:120]}"
    assert "Traceback (most recent call last)" not in page or "raises-exception" in chapters.book(slug).read_text()


def test_math_is_served_locally(built):
    page = (HTML / "intro.html").read_text()
    assert "_static/es5/tex-chtml.js" in page, "MathJax must load from the book's own _static folder"
    assert (HTML / "_static" / "es5" / "tex-chtml.js").exists()
    assert "cdn.jsdelivr.net/npm/mathjax" not in page


def test_no_page_prints_the_solution_of_its_exercises(built):
    """Every exercise is the learner's to write: at most 25% of its solution's tokens (comments and
    docstrings dropped) may appear on its chapter's built page in runs of 12 or more tokens."""
    from autograder import overlap

    rows = [r for slug in chapters.slugs() for r in overlap.measure(slug)]
    print("\n" + overlap.table(rows))
    over = [f"{r.slug} {r.exercise} ({r.share:.0%})" for r in rows if r.share > overlap.LIMIT]
    assert not over, (
        f"these pages print more than {overlap.LIMIT:.0%} of an exercise's solution: {', '.join(over)}. Teach "
        "with math, pseudo-code and figures, and run the reference with its source hidden (a `remove-input` "
        "cell or an import from autograder.reference)\n" + overlap.table(rows))


def test_overlap_measure_counts_only_long_runs():
    from autograder import overlap

    sol = overlap.tokens(overlap.strip_comments('def f(x):\n    """doc"""\n    return x + 1  # note\n'))
    assert sol == ["def", "f", "(", "x", ")", ":", "return", "x", "+", "1"], sol
    words = [f"w{i}" for i in range(40)]
    assert overlap.shared_share(words, [words[5:17]]) == 12 / 40  # one run of exactly 12
    assert overlap.shared_share(words, [words[5:16]]) == 0.0  # 11 in a row is not a copy
    assert overlap.shared_share(words, [words[:20], ["x"], words[20:]]) == 1.0
