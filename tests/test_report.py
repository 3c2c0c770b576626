"""OUT/report.png reads as a page: one panel per chapter, two columns of panels past three
chapters and three past eight, so that a class graded on every chapter is not one tall column of bars."""
import matplotlib.image

from autograder import chapters, notebooks
from autograder.report import Row, write_report


def _rows(slugs):
    return [Row(f"s{i}", slug, gid, pts * (i % 2), pts, "graded", "")
            for slug in slugs for gid, pts in notebooks.exercises(notebooks.source_notebook(slug)) for i in range(4)]


def test_every_chapter_fits_one_page(tmp_path):
    write_report(_rows(chapters.slugs()), tmp_path / "all.png")
    height, width = matplotlib.image.imread(tmp_path / "all.png").shape[:2]
    assert height <= 1.3 * width, (
        f"report.png for {len(chapters.slugs())} chapters is {width} x {height} px: lay the chapters out as panels "
        "in columns (two past three chapters, three past eight), not one column of every exercise")


def test_one_chapter_is_one_short_panel(tmp_path):
    write_report(_rows(chapters.slugs()[:1]), tmp_path / "one.png")
    height, width = matplotlib.image.imread(tmp_path / "one.png").shape[:2]
    assert height < 0.6 * width, f"report.png for one chapter is {width} x {height} px: a blank band is left"
