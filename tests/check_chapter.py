"""One chapter's grading contract, checked in a minute or two instead of the whole suite's batch:

    .venv/bin/python tests/check_chapter.py 04-flash-attention [--no-visible] [--only NAME ...]

Grades the solution, the untouched release and every wrong submission under
tests/submissions/<slug>/ in one batch through the CLI (what tests/test_grading.py does for all
chapters), then runs the visible checks against each wrong submission in one kernel (what
tests/test_visible.py does). Prints one line per submission and exits non-zero when any of them
breaks the contract: the solution loses a point, the release scores one, a wrong submission loses
other points than those of the exercise it names, or Validate would pass it.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from autograder import chapters, notebooks  # noqa: E402
from conftest import read_grades, release, run_cli, solved, with_cell, write, wrong_submissions  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("slug")
    ap.add_argument("--no-visible", action="store_true", help="skip the visible checks")
    ap.add_argument("--only", nargs="*", help="only these wrong submissions (file stems)")
    args = ap.parse_args()
    slug = chapters.check(args.slug)
    points = dict(notebooks.exercises(notebooks.source_notebook(slug)))
    wrong = [w for w in wrong_submissions(slug) if not args.only or w[0] in args.only]
    good = solved(slug)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        subs, out = Path(tmp, "subs"), Path(tmp, "out")
        write(good, subs / "solution" / f"{slug}.ipynb")
        write(release(slug), subs / "untouched" / f"{slug}.ipynb")
        for name, cell, _, src in wrong:
            write(with_cell(good, cell, src), subs / f"wrong-{name}" / f"{slug}.ipynb")
        done = run_cli("grade", subs, "--out", out, "--workers", 2, "--chapter", slug)
        if done.returncode:
            print(done.stderr[-4000:])
            return 2
        grades = read_grades(out)
        runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines() if line.strip()]
    print(f"grading: {len(runs)} notebooks, {sum(r['seconds'] for r in runs):.1f} s of notebook time "
          f"(the chapter's share of the suite's batch), slowest {max(r['seconds'] for r in runs):.1f} s")
    expect = {"solution": dict(points), "untouched": {g: 0.0 for g in points}}
    expect.update({f"wrong-{n}": {g: (0.0 if g == b else p) for g, p in points.items()} for n, _, b, _ in wrong})
    for student, want in expect.items():
        got = {g: float(grades[(student, slug, g)]["points"]) for g in want}
        ok = got == want
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {student}")
        for g in want:
            if got[g] != want[g] or (not ok and got[g] == 0):
                print(f"       {g}: {got[g]} of {points[g]} (want {want[g]}): {grades[(student, slug, g)]['reason'][:300]}")
    if not args.no_visible and wrong:
        from test_visible import HIDDEN_ONLY, visible_verdicts

        marked = {n: bool(HIDDEN_ONLY.search(s)) for n, _, _, s in wrong}
        for name, (caught, how) in visible_verdicts(slug).items():
            if args.only and name not in args.only:
                continue
            ok = caught != marked[name]
            bad += not ok
            print(f"{'ok  ' if ok else 'FAIL'} visible {name}: {'caught' if caught else 'passes Validate'} ({how[:160]})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
