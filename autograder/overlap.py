"""How much of an exercise's solution a chapter page prints: `python -m autograder.overlap [SLUG]`.

For each solution cell of `solutions/NN-slug.md`, the code between `### BEGIN SOLUTION` and
`### END SOLUTION` (comments and docstrings dropped) is cut into tokens, and its share of tokens
that also appear on the built page `_build/html/NN-slug.html` (every `<pre>` block: code cells,
their outputs, and code listings in the prose) in runs of at least RUN consecutive tokens is
measured. The chapter contract (DESIGN.md) allows at most LIMIT; tests/test_overlap.py holds every
chapter to it.
"""
import ast
import html
import io
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

from autograder import chapters, notebooks

RUN = 12  # a copied run must be at least this many tokens long to count
LIMIT = 0.25  # the largest share of an exercise's solution tokens a page may print
HTML = chapters.ROOT / "_build" / "html"

_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\S")
_SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
_PRE = re.compile(r"<pre\b[^>]*>(.*?)</pre>", re.S)


def tokens(text: str) -> list[str]:
    """Identifiers, numbers and single punctuation characters, in order."""
    return _TOKEN.findall(text)


def strip_comments(code: str) -> str:
    """The code without comments and docstrings (left as is when it does not parse)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstrings.add((first.lineno, first.col_offset))
    kept = []
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT or (tok.type == tokenize.STRING and tok.start in docstrings):
            continue
        kept.append(tok.string)
    return " ".join(kept)


def solutions(slug: str) -> dict[str, str]:
    """grade_id -> the code of its solution block, for every exercise of the chapter."""
    out = {}
    for cell in notebooks.source_notebook(slug).cells:
        if notebooks.is_solution(cell) and cell.cell_type == "code":  # not a written answer
            blocks = _SOLUTION.findall(cell.source)
            out[notebooks.grade_id(cell)] = "\n".join(blocks)
    return out


def page_tokens(page: str) -> list[list[str]]:
    """The tokens of every <pre> block of a built HTML page, one list per block."""
    return [tokens(html.unescape(re.sub(r"<[^>]+>", "", block))) for block in _PRE.findall(page)]


def shared_share(solution: list[str], blocks: list[list[str]], run: int = RUN) -> float:
    """Share of `solution`'s tokens covered by runs of >= `run` tokens found in one of `blocks`."""
    if not solution:
        return 0.0
    grams = {tuple(b[i:i + run]) for b in blocks for i in range(len(b) - run + 1)}
    covered = [False] * len(solution)
    for i in range(len(solution) - run + 1):
        if tuple(solution[i:i + run]) in grams:
            covered[i:i + run] = [True] * run
    return sum(covered) / len(solution)


@dataclass(frozen=True)
class Row:
    slug: str
    exercise: str
    tokens: int
    share: float


def measure(slug: str, html_dir: Path = HTML) -> list[Row]:
    page = html_dir / f"{slug}.html"
    if not page.exists():
        raise FileNotFoundError(f"{page} does not exist: build the book first (make book)")
    blocks = page_tokens(page.read_text())
    rows = []
    for name, code in solutions(slug).items():
        sol = tokens(strip_comments(code))
        rows.append(Row(slug, name, len(sol), shared_share(sol, blocks)))
    return rows


TEXT = {".html", ".md", ".ipynb", ".py", ".txt", ".json", ".js", ".yml", ".yaml", ".toml", ".cfg", ".ini", ".csv", ""}


def file_tokens(path: Path) -> list[list[str]]:
    """The tokens of a served file, in blocks: an HTML page's text with its tags dropped (a
    highlighted listing is split by <span> tags), a notebook's cell sources and text outputs one
    block each, any other text file whole. Binary files (images, fonts) have none."""
    if path.suffix.lower() not in TEXT:
        return []
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError):
        return []
    if path.suffix == ".html":
        return [tokens(html.unescape(re.sub(r"<[^>]+>", " ", b))) for b in _PRE.findall(text)] + [
            tokens(html.unescape(re.sub(r"<[^>]+>", "", text)))]
    if path.suffix == ".ipynb":
        import json

        try:
            nb = json.loads(text)
        except ValueError:
            return [tokens(text)]
        blocks = []
        for cell in nb.get("cells", []):
            blocks.append(tokens("".join(cell.get("source", ""))))
            for out in cell.get("outputs", []):
                blocks.append(tokens("".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))))
        return blocks
    return [tokens(text)]


@dataclass(frozen=True)
class TreeRow:
    slug: str
    exercise: str
    tokens: int
    share: float  # the largest share found in one file
    where: str  # that file, relative to the tree


VENDORED = ("_static/es5/", "_static/scripts/", "_static/vendor/", "_static/locales/")  # npm/theme bundles, as shipped


def measure_tree(root: Path, slugs=None) -> list[TreeRow]:
    """For every exercise, the largest share of its solution's tokens that one file under `root`
    holds in runs of RUN or more: the overlap rule applied to everything a site or a learner's
    tree serves (pages, their sources, downloads, notebooks, code; not the theme's and MathJax's
    bundled scripts, which are the packages' own files)."""
    files = [p for p in sorted(root.rglob("*")) if p.is_file()
             and not str(p.relative_to(root)).startswith(VENDORED)]
    grams: dict[tuple, set[str]] = {}
    for path in files:
        rel = str(path.relative_to(root))
        for block in file_tokens(path):
            for i in range(len(block) - RUN + 1):
                grams.setdefault(tuple(block[i:i + RUN]), set()).add(rel)
    rows = []
    for slug in slugs or chapters.slugs():
        for name, code in solutions(slug).items():
            sol = tokens(strip_comments(code))
            covered: dict[str, list[bool]] = {}
            for i in range(len(sol) - RUN + 1):
                for rel in grams.get(tuple(sol[i:i + RUN]), ()):
                    covered.setdefault(rel, [False] * len(sol))[i:i + RUN] = [True] * RUN
            best = max(covered.items(), key=lambda kv: sum(kv[1]), default=("-", []))
            share = sum(best[1]) / len(sol) if sol else 0.0
            rows.append(TreeRow(slug, name, len(sol), share, best[0] if share else "-"))
    return rows


def tree_table(rows: list[TreeRow]) -> str:
    lines = [f"{'chapter':<20} {'exercise':<28} {'tokens':>6} {'served':>7}  file"]
    for r in rows:
        flag = "  over the limit" if r.share > LIMIT else ""
        lines.append(f"{r.slug:<20} {r.exercise:<28} {r.tokens:>6} {r.share:>7.0%}  {r.where}{flag}")
    return "\n".join(lines)


def table(rows: list[Row]) -> str:
    lines = [f"{'chapter':<20} {'exercise':<28} {'tokens':>6} {'on page':>8}"]
    for r in rows:
        flag = "  over the limit" if r.share > LIMIT else ""
        lines.append(f"{r.slug:<20} {r.exercise:<28} {r.tokens:>6} {r.share:>8.0%}{flag}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--tree"]:  # python -m autograder.overlap --tree DIR: every file under DIR
        rows = measure_tree(Path(argv[1]))
        print(tree_table(rows))
        return 1 if any(r.share > LIMIT for r in rows) else 0
    slugs = [chapters.check(s) for s in argv] or chapters.slugs()
    rows = [r for slug in slugs for r in measure(slug)]
    print(table(rows))
    return 1 if any(r.share > LIMIT for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
