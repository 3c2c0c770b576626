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
