"""The book and the exercises as people use them, in a real browser: headless Chromium (Debian's
`chromium` package) driven by playwright.

- The book (`_build/html`, brought up to date by `make book`), served from loopback and opened from
  disk, with every request that leaves the machine refused: each page of _toc.yml loads with no
  console error and no failed request; MathJax typesets every formula; images load and carry
  alt text; internal links and anchors resolve; chapter pages show their executed outputs, offer
  their exercise notebook for download and launch it from the repository set in _config.yml; at
  390 px nothing scrolls sideways (`make screenshots` runs that test and keeps the pictures).
- The learner: `make lab` on a copy of exercises/: Run All on 01-merge shows NotImplementedError,
  Validate passes a solved copy and names the failing cell of a copy with one wrong answer.
- The instructor: `python -m autograder grade` writes OUT/index.html, whose bars, statuses and
  feedback links work; `make lab OUT=...` shows the formgrader with chapter 01, its exercises and
  their points.

Without Chromium these tests skip on a workstation and fail in CI (where CI is set).
"""
import contextlib
import functools
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import nbformat
import pytest
import yaml

from autograder import chapters, notebooks
from conftest import read_grades, release, run_cli, solved, with_cell, write

ROOT = chapters.ROOT
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# no background connections (this network refuses them, and a reader's page must not need them);
# playwright gives each launch a fresh --user-data-dir of its own
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
LOAD_BUDGET_S = 15.0  # one page from loopback, MathJax done; it takes about a second
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
CHAPTER = "01-merge"  # the chapter the learner's and the instructor's paths walk through
WRONG_MERGE = '''def merge(nums1: list[int], m: int, nums2: list[int], n: int) -> None:
    pass  # forgot to merge: nums1 keeps its padding
'''


# ---------------------------------------------------------------------------------------------
# what the book is made of


def toc_pages() -> list[str]:
    """Every page _toc.yml lists, root first, in book order (paths relative to book/)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                yield str(Path(entry["file"]).with_suffix(""))
            for key in ("chapters", "sections", "parts"):
                yield from walk(entry.get(key))

    return [str(Path(toc["root"]).with_suffix("")), *walk(toc.get("parts") or toc.get("chapters"))]


def chapter_pages() -> list[str]:
    return [p for p in toc_pages() if chapters.SLUG.match(Path(p).name)]


def book_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


@pytest.fixture(scope="module")
def book() -> Path:
    """_build/html, brought up to date by `make book` (Sphinx rebuilds only what changed: a few
    seconds after test_book.py's build in a whole run)."""
    done = subprocess.run(["make", "-s", "book"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"`make book` failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return HTML


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(book) -> str:
    """The built book on a static server on loopback, as a reader's host would serve it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(book)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------------------------------------
# the browser


def _missing(why: str):
    msg = (f"{why}. The browser tests drive Debian's Chromium with playwright: `make sysdeps` (as root) or "
           "`sudo apt-get install chromium`, and `make test` installs playwright from constraints.txt; "
           "CHROMIUM=/path/to/chromium names another build.")
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@dataclass
class Visit:
    """What one page load cost and what went wrong in it."""
    url: str
    seconds: float = 0.0
    console: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    failed: list[str] = field(default_factory=list)  # requests that failed or answered >= 400


def _is_local(url: str, origin: str) -> bool:
    return url.startswith((origin, "data:", "blob:", "about:"))


@contextlib.contextmanager
def offline_context(browser, origin: str, **options):
    """A browser context in which every request that is not for `origin` is refused and noted."""
    ctx = browser.new_context(**options)
    outside: list[str] = []

    def route(r):
        if _is_local(r.request.url, origin):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    ctx.outside = outside
    try:
        yield ctx
    finally:
        ctx.close()


def watch(page, origin: str) -> Visit:
    v = Visit(page.url)
    page.on("console", lambda m: v.console.append(f"{m.text} ({m.location.get('url', '')})") if m.type == "error" else None)
    page.on("pageerror", lambda e: v.console.append(f"uncaught {e}"))
    page.on("requestfailed", lambda r: v.failed.append(f"{r.url}: {r.failure}") if _is_local(r.url, origin) else None)
    page.on("response", lambda r: v.failed.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None)
    return v


def load(page, url: str, visit: Visit) -> None:
    """Open url and wait until MathJax has typeset the page; time it."""
    visit.url = url
    start = time.perf_counter()
    page.goto(url, wait_until="load")
    page.evaluate("""async () => {
        if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
        await document.fonts.ready;
    }""")
    visit.seconds = time.perf_counter() - start


MATH = r"""() => {
  const skip = 'pre, code, kbd, samp, script, style, textarea, mjx-container, .highlight';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {acceptNode: n =>
      n.parentElement && n.parentElement.closest(skip) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
  const raw = [];
  const tex = /\\\(|\\\[|\$\$|\$[^$\s](?:[^$]*[^$\s\\])?\$/;  // \( \[ $$ or $...$
  while (walker.nextNode()) {
    const t = walker.currentNode.textContent;
    if (tex.test(t)) raw.push(t.trim().slice(0, 100));
  }
  const math = [...document.querySelectorAll('.math')];
  return {
    math: math.length,
    typeset: document.querySelectorAll('mjx-container').length,
    untypeset: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.trim().slice(0, 80)),
    errors: [...document.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error') || e.textContent),
    raw,
  };
}"""

IMAGES = """() => [...document.images].map(i => ({
  src: i.getAttribute('src'), loaded: i.complete && i.naturalWidth > 0, alt: (i.getAttribute('alt') || '').trim()}))"""

OVERFLOW = r"""() => {
  const width = document.documentElement.clientWidth;
  const scroll = Math.max(document.documentElement.scrollWidth, document.body.scrollWidth);
  const culprits = [];
  if (scroll > width) {
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.right <= width + 1 || getComputedStyle(el).position === 'fixed') continue;
      let a = el.parentElement, contained = false;
      for (; a && a !== document.body; a = a.parentElement) {
        if (getComputedStyle(a).overflowX !== 'visible' || a.getBoundingClientRect().right > width + 1) {
          contained = true; break;
        }
      }
      if (contained) continue;  // only the outermost element that sticks out
      const id = el.id ? '#' + el.id : '';
      const cls = typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\s+/).join('.') : '';
      culprits.push(`<${el.tagName.toLowerCase()}${id}${cls}> ends at ${Math.round(r.right)} px: `
                    + (el.textContent || '').trim().slice(0, 60));
    }
  }
  return {width, scroll, culprits: culprits.slice(0, 8)};
}"""


def problems_of(visit: Visit, outside: list[str]) -> list[str]:
    out = [f"console error: {c}" for c in visit.console]
    out += [f"failed request: {f}" for f in visit.failed]
    out += [f"needs the network (the site must be self-contained): {u}" for u in outside]
    return out


def render_problems(page, name: str) -> list[str]:
    """Math, images and executed outputs, as the reader sees them."""
    out = []
    m = page.evaluate(MATH)
    out += [f"formula not typeset by MathJax: {t!r}" for t in m["untypeset"][:5]]
    out += [f"MathJax error in a formula: {e!r}" for e in m["errors"][:5]]
    out += [f"raw TeX left in the text (a $...$ MyST did not parse as math?): {t!r}" for t in m["raw"][:5]]
    if m["math"] and not m["typeset"]:
        out.append(f"{m['math']} formulas and no MathJax output: is _static/es5/tex-chtml.js served?")
    for img in page.evaluate(IMAGES):
        if not img["loaded"]:
            out.append(f"image did not load: {img['src']}")
        if not img["alt"]:
            out.append(f"image without alt text (say what the figure shows): {img['src']}")
    if chapters.SLUG.match(Path(name).name):
        outputs = page.locator(".cell_output").count()
        if not outputs:
            out.append("no code outputs on a chapter page: was the chapter executed (execute_notebooks: force)?")
    return out


_targets: dict[str, tuple[int, set[str]]] = {}


def _target(url: str) -> tuple[int, set[str]]:
    """HTTP status of url and the ids/names its HTML defines (cached)."""
    if url not in _targets:
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = r.read().decode("utf-8", "replace") if url.endswith((".html", "/")) else ""
                status = r.status
        except urllib.error.HTTPError as e:
            status, body = e.code, ""
        ids = set(re.findall(r'\b(?:id|name)="([^"]+)"', body))
        _targets[url] = (status, ids)
    return _targets[url]


def link_problems(page, site: str) -> list[str]:
    out = []
    hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
    for href in sorted(set(hrefs)):
        if not href.startswith(site):
            continue
        doc, frag = urldefrag(href)
        status, ids = _target(doc)
        if status != 200:
            out.append(f"link to {href[len(site):]} answers HTTP {status}")
        elif frag and urlparse(doc).path.endswith(".html") and unquote(frag) not in ids:
            out.append(f"link to {href[len(site):]}: no element with id {unquote(frag)!r} on that page")
    return out


LOAD_TIMES: dict[str, float] = {}


@pytest.mark.parametrize("name", [*toc_pages(), "search", "genindex"])
def test_page_renders_offline_when_served(browser, site, name):
    with offline_context(browser, site, viewport=DESKTOP) as ctx:
        page = ctx.new_page()
        visit = watch(page, site)
        load(page, f"{site}/{name}.html", visit)
        problems = problems_of(visit, ctx.outside) + render_problems(page, name) + link_problems(page, site)
    LOAD_TIMES[name] = visit.seconds
    record = SHOTS.parent / "browser-load-times.json"
    old = json.loads(record.read_text()) if record.exists() else {}
    record.write_text(json.dumps({**old, name: round(visit.seconds, 3)}, indent=1))
    assert not problems, f"{name}.html, served from loopback with no network:\n  " + "\n  ".join(problems)
    assert visit.seconds < LOAD_BUDGET_S, (
        f"{name}.html took {visit.seconds:.1f} s to load and typeset from loopback (budget {LOAD_BUDGET_S} s): "
        "look for huge images or outputs on the page")


@pytest.mark.parametrize("name", toc_pages())
def test_page_renders_offline_from_disk(browser, book, name):
    """`make book` says: open _build/html/index.html. That has to work too."""
    with offline_context(browser, "file://", viewport=DESKTOP) as ctx:
        page = ctx.new_page()
        visit = watch(page, "file://")
        load(page, (book / f"{name}.html").as_uri(), visit)
        problems = problems_of(visit, ctx.outside) + render_problems(page, name)
    assert not problems, f"{name}.html, opened from disk with no network:\n  " + "\n  ".join(problems)


def test_built_site_names_no_outside_resource(book):
    """Nothing in any built page (the ones no test opens too) loads a script, style, font or image
    from a CDN."""
    found = []
    resource = re.compile(r"<(?:script|img|iframe|source|audio|video|embed)\b[^>]*\bsrc=[\"']((?:https?:)?//[^\"']+)", re.I)
    for path in sorted(book.rglob("*.html")):
        text = path.read_text(errors="replace")
        found += [f"{path.relative_to(book)}: {u}" for u in resource.findall(text)]
        for tag in re.findall(r"<link\b[^>]*>", text, re.I):
            rel = re.search(r"\brel=[\"']([^\"']+)", tag)
            href = re.search(r"\bhref=[\"']((?:https?:)?//[^\"']+)", tag)
            if href and rel and re.search(r"stylesheet|preload|icon|modulepreload|manifest", rel.group(1)):
                found.append(f"{path.relative_to(book)}: {href.group(1)}")
    for path in sorted(book.rglob("*.css")):
        found += [f"{path.relative_to(book)}: {u}" for u in
                  re.findall(r"(?:url\(|@import\s+)[\"']?((?:https?:)?//[^\"')\s]+)", path.read_text(errors="replace"))]
    assert not found, "the built site loads these from outside (vendor them into the book):\n  " + "\n  ".join(found[:20])


# ---------------------------------------------------------------------------------------------
# chapter pages: the exercise notebook, to download or to launch


def test_repository_url_is_set_in_one_place():
    url = (book_config().get("repository") or {}).get("url")
    assert url, "_config.yml must set repository: url: (the launch buttons are built from it)"
    elsewhere = []
    for pattern in ("Makefile", "README.md", "pyproject.toml", "environment.yml", "book/**/*.md",
                    "book/_ext/**/*.py", "autograder/**/*.py", "solutions/*.md", "tests/*.py"):
        elsewhere += [str(p.relative_to(ROOT)) for p in ROOT.glob(pattern) if url in p.read_text(errors="replace")]
    assert not elsewhere, f"the repository URL {url} is set in _config.yml; read it from there, not in {elsewhere}"


@pytest.mark.parametrize("name", chapter_pages())
def test_chapter_offers_its_exercise_notebook(browser, site, name):
    slug = Path(name).name
    config = book_config()
    repo = config["repository"]["url"].rstrip("/")
    org_repo = urlparse(repo).path.strip("/")
    branch = config["repository"].get("branch", "main")
    services = {k: v.rstrip("/") for k, v in (config.get("launch_buttons") or {}).items()
                if k in ("binderhub_url", "jupyterhub_url", "colab_url") and v}
    assert services, "_config.yml's launch_buttons must set binderhub_url or jupyterhub_url"
    with offline_context(browser, site, viewport=DESKTOP, accept_downloads=True) as ctx:
        page = ctx.new_page()
        load(page, f"{site}/{name}.html", watch(page, site))
        box = page.locator(".exercise-notebook")
        assert box.count() == 1, f"{name}.html has no exercise-notebook box (book/_ext/exercise_links.py adds it)"
        download = box.locator("a", has_text="Download")
        href = download.get_attribute("href")
        assert page.evaluate("h => new URL(h, location.href).href", href) == f"{site}/exercises/{slug}.ipynb", (
            f"the download link of {name}.html points at {href}, not at exercises/{slug}.ipynb")
        with page.expect_download() as got:
            download.click()
        saved = Path(got.value.path()).read_bytes()
        assert saved == chapters.release(slug).read_bytes(), (
            f"the site serves a different exercises/{slug}.ipynb than the repository's: rebuild the book")
        nbformat.validate(nbformat.reads(saved.decode(), as_version=4))
        menu = page.locator("a.btn-download-exercises-button")
        assert menu.count() == 1 and menu.get_attribute("href") == href, (
            f"{name}.html's download menu does not offer the exercise notebook")
        launch = {a.inner_text().strip(): a.get_attribute("href") for a in box.locator("a").all()}
        rocket = [a.get_attribute("href") for a in page.locator(".dropdown-launch-buttons a").all()]
    for key, service in services.items():
        name_ = {"binderhub_url": "Binder", "jupyterhub_url": "JupyterHub", "colab_url": "Colab"}[key]
        url = launch.get(f"Launch on {name_}")
        assert url, f"{name}.html offers no 'Launch on {name_}' for its exercises though _config.yml sets {key}"
        assert url.startswith(service) and f"exercises/{slug}.ipynb" in url and branch in url, (
            f"'Launch on {name_}' goes to {url}: expected {service}, branch {branch}, exercises/{slug}.ipynb")
        assert org_repo in unquote(url), f"'Launch on {name_}' goes to {url}, not to the repository {repo}"
        assert any(h.startswith(service) and org_repo in unquote(h) for h in rocket), (
            f"the page's launch menu has no {name_} button for {repo}: {rocket}")
        assert all(branch in h for h in rocket if h.startswith(service)), (
            f"the launch menu opens another branch than the learner's edition ({branch}): {rocket}")
    assert branch != "main", "launch buttons must open the learner's edition (make publish), not the instructor's main"
    assert not [h for h in rocket if "colab" in h and not h.endswith(".ipynb")], (
        f"a Colab button opens a page's .md, which Colab cannot read: {rocket}")


# ---------------------------------------------------------------------------------------------
# screenshots: `make screenshots`


@pytest.mark.parametrize("name", toc_pages())
def test_screenshots_fit_a_phone(browser, site, name):
    """_build/screenshots/<page>-desktop.png (1280 px) and -phone.png (390 px), whole pages; at
    390 px the body must not scroll sideways (wide tables, code and equations scroll in their own
    box)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    stem = name.replace("/", "_")
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        with offline_context(browser, site, viewport=viewport) as ctx:
            page = ctx.new_page()
            load(page, f"{site}/{name}.html", watch(page, site))
            page.screenshot(path=str(SHOTS / f"{stem}-{label}.png"), full_page=True)
            if label == "phone":
                o = page.evaluate(OVERFLOW)
    assert o["scroll"] <= o["width"], (
        f"{name}.html scrolls sideways on a {PHONE['width']} px phone (content {o['scroll']} px wide; see "
        f"_build/screenshots/{stem}-phone.png). What sticks out:\n  " + "\n  ".join(o["culprits"]))


# ---------------------------------------------------------------------------------------------
# JupyterLab: `make lab`


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STOP_PATIENCE = 120  # seconds JupyterLab gets to shut down after SIGTERM


class Lab:
    """`make lab` on loopback with a token, in its own process group; stop() ends all of it."""

    def __init__(self, tmp: Path, **make_vars):
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "lab.log"
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
               "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces")}
        args = ["make", "-s", "lab", f"LAB_PORT={self.port}", f"LAB_TOKEN={self.token}", "LAB_ARGS=--no-browser",
                *(f"{k}={v}" for k, v in make_vars.items())]
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.stopped = None
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def _wait_ready(self, timeout=180):
        printed = f"open http://127.0.0.1:{self.port}/lab?token={self.token}"
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"`make lab` exited with {self.proc.returncode}:\n{self.tail()}"
            if printed in self.log.read_text(errors="replace"):
                try:
                    with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5) as r:
                        if r.status == 200:
                            return
                except OSError:
                    pass
            time.sleep(0.5)
        pytest.fail(f"`make lab` did not print {printed!r} and answer within {timeout} s:\n{self.tail()}")

    def stop(self) -> list[str]:
        """SIGTERM to make's process group (JupyterLab then shuts its kernels down); returns what
        was still running STOP_PATIENCE s later, which is then killed. A loaded 2-core machine can
        take well over 30 s to shut JupyterLab and its kernels down."""
        if self.stopped is not None:
            return self.stopped
        import psutil

        try:
            procs = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=STOP_PATIENCE)
        self.stopped = []
        for p in alive:
            with contextlib.suppress(psutil.Error):
                self.stopped.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
                p.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        return self.stopped

    def open(self, page, path: str, workspace: str):
        """Open a file in JupyterLab, in a workspace of its own (a new name: nothing else is open)."""
        page.goto(f"{self.url}/lab/workspaces/{workspace}/tree/{path}?token={self.token}")
        page.locator(".lm-TabBar-tab.lm-mod-current", has_text=Path(path).name).first.wait_for(timeout=120_000)
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").wait_for(timeout=60_000)


def _kernel_idle(page, timeout=180_000):
    """The status bar says "Python 3 (ipykernel) | Idle": the kernel has started and answers."""
    page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$")).first.wait_for(timeout=timeout)


def _validate(page) -> str:
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.get_by_role("button", name="Validate").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=600_000)  # Validate runs the whole notebook on the server
    text = dialog.inner_text()
    dialog.get_by_role("button", name="Ok").click()
    dialog.wait_for(state="detached")
    return text


def _first_line(source: str) -> str:
    return next(line for line in source.splitlines() if line.strip())


def test_learner_runs_then_validates_in_jupyterlab(browser, tmp_path):
    work = tmp_path / "exercises"
    write(release(CHAPTER), work / f"{CHAPTER}.ipynb")
    nb = solved(CHAPTER)
    write(nb, work / f"{CHAPTER}-solved.ipynb")
    write(with_cell(nb, "merge", WRONG_MERGE), work / f"{CHAPTER}-wrong.ipynb")
    tests = {notebooks.grade_id(c): c.source for c in nb.cells if notebooks.is_test(c)}
    lab = Lab(tmp_path, LAB_DIR=work)
    try:
        with offline_context(browser, lab.url, viewport=DESKTOP) as ctx:
            page = ctx.new_page()
            lab.open(page, f"{CHAPTER}.ipynb", "untouched")
            _kernel_idle(page)
            # a learner's lab has Validate and none of nbgrader's instructor tools
            disabled = page.evaluate("() => JSON.parse(document.getElementById('jupyter-config-data').textContent)"
                                     ".disabledExtensions || []")
            for name in ("formgrader", "assignment-list", "course-list", "create-assignment"):
                assert f"@jupyter/nbgrader:{name}" in disabled, f"the learner's lab should not load nbgrader's {name}"
            assert page.get_by_text("Create Assignment", exact=True).count() == 0, "Create Assignment shows"
            assert page.get_by_role("button", name="Validate").count() >= 1, "the Validate button is missing"
            with urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=10):
                pass
            try:
                urllib.request.urlopen(f"{lab.url}/formgrader?token={lab.token}", timeout=10)
                raise AssertionError("the learner's lab serves the formgrader")
            except urllib.error.HTTPError as e:
                assert e.code == 404, f"/formgrader answered {e.code} in the learner's lab"
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            failing = page.locator(".jp-CodeCell", has=page.locator(".jp-OutputArea-output", has_text="NotImplementedError"))
            failing.first.wait_for(timeout=180_000)
            assert page.locator(".jp-OutputArea-output", has_text="running on").count(), (
                "the first cell (device choice) printed nothing: did Run All run it?")
            failing.first.scroll_into_view_if_needed()  # JupyterLab renders only the cells in view
            stopped_at = failing.first.text_content()
            assert _first_line(tests["test_merge"]) in stopped_at, (
                "Run All on the untouched release should stop at test_merge with NotImplementedError; it stopped at:\n"
                + stopped_at[:600])

            lab.open(page, f"{CHAPTER}-solved.ipynb", "solved")
            text = _validate(page)
            assert "Success! Your notebook passes all the tests." in text, f"Validate on a solved notebook:\n{text[:3000]}"

            lab.open(page, f"{CHAPTER}-wrong.ipynb", "wrong")
            text = _validate(page)
            assert text.count("The following cell failed") == 1, (
                f"Validate on a notebook with one wrong answer (merge) should name one failing cell:\n{text[:3000]}")
            assert _first_line(tests["test_merge"]) in text and "got [1, 2, 3, 0, 0, 0]" in text, (
                f"Validate should show test_merge's source and its assert message:\n{text[:3000]}")
            others = [g for g in tests if g != "test_merge" and _first_line(tests[g]) in text]
            assert not others, f"Validate named cells that pass: {others}"
        assert lab.stop() == [], f"JupyterLab left processes running after SIGTERM: {lab.stopped}"
    finally:
        lab.stop()


# ---------------------------------------------------------------------------------------------
# the instructor: OUT/index.html and the formgrader


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A class of three for chapter 01: alice solved it, bob got merge wrong, carol handed in a
    file that is not a notebook."""
    root = tmp_path_factory.mktemp("class")
    subs, out = root / "submissions", root / "out"
    nb = solved(CHAPTER)
    write(nb, subs / "alice" / f"{CHAPTER}.ipynb")
    write(with_cell(nb, "merge", WRONG_MERGE), subs / "bob" / f"{CHAPTER}.ipynb")
    (subs / "carol").mkdir(parents=True)
    (subs / "carol" / f"{CHAPTER}.ipynb").write_text("my answers are in the email")
    done = run_cli("grade", subs, "--out", out, "--chapter", CHAPTER, "--workers", "2", timeout=900)
    assert done.returncode == 0, f"grading failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return out, read_grades(out)


def _points():
    return dict(notebooks.exercises(notebooks.source_notebook(CHAPTER)))


def _written():
    """The chapter's written answers, graded by hand: {grade_id: points}."""
    return dict(notebooks.written(notebooks.source_notebook(CHAPTER)))


def test_grading_summary_page(browser, graded):
    out, grades = graded
    points = _points()
    with offline_context(browser, "file://", viewport=DESKTOP) as ctx:
        page = ctx.new_page()
        visit = watch(page, "file://")
        load(page, (out / "index.html").as_uri(), visit)
        problems = problems_of(visit, ctx.outside)
        images = page.evaluate(IMAGES)
        assert any(i["src"] == "report.png" for i in images), "OUT/index.html should show report.png"
        problems += [f"image not loaded or without alt: {i['src']}" for i in images if not (i["loaded"] and i["alt"])]
        assert not problems, "OUT/index.html:\n  " + "\n  ".join(problems)

        for gid, most in points.items():
            row = page.locator(f"#exercises tr[data-exercise='{CHAPTER}/{gid}']")
            assert row.count() == 1, f"OUT/index.html has no row for exercise {CHAPTER}/{gid}"
            assert float(row.locator("td").nth(2).inner_text()) == most, f"{gid}: max points should be {most:g}"
            mine = [r for (s, c, g), r in grades.items() if (c, g) == (CHAPTER, gid)]
            full = sum(r["status"] == "graded" and float(r["points"]) == most for r in mine)
            zero = sum(r["status"] == "graded" and float(r["points"]) == 0 for r in mine)
            ungradable = sum(r["status"] == "not_gradable" for r in mine)
            shown = {k: int(row.locator(f"td[data-outcome='{k}']").inner_text()) for k in ("full marks", "0 points", "not gradable")}
            assert shown == {"full marks": full, "0 points": zero, "not gradable": ungradable}, (
                f"{gid}: index.html shows {shown}, grades.csv says full {full}, zero {zero}, not gradable {ungradable}")
            assert row.locator(".bar span").count() == sum(v > 0 for v in shown.values()), f"{gid}: the bar's parts"
        merge = page.locator(f"#exercises tr[data-exercise='{CHAPTER}/test_merge'] td[data-outcome]")
        assert [int(t) for t in merge.all_inner_texts()] == [1, 0, 1, 0, 0, 0, 1], "alice full, bob 0, carol not gradable"

        total, most = sum(points.values()), sum(points.values()) + sum(_written().values())
        # the written answer waits for a hand-given score; a file that is not a notebook has none
        expected = {"alice": ("needs manual grade", f"{total:g} / {most:g}"),
                    "bob": ("needs manual grade", f"{total - points['test_merge']:g} / {most:g}"),
                    "carol": ("not gradable", f"0 / {total:g}")}
        for learner, (status, score) in expected.items():
            row = page.locator(f"#learners tr[data-learner='{learner}']")
            cells = row.locator("td").all_inner_texts()
            assert cells[2:4] == [score, status], f"{learner}: index.html shows {cells}, expected {score}, {status}"
            link = row.get_by_role("link", name="feedback")
            link.click()
            page.wait_for_load_state("load")
            assert page.url.endswith(f"feedback/{learner}/{CHAPTER}.html"), f"{learner}'s feedback link went to {page.url}"
            assert learner in page.inner_text("body") and page.locator("h1").inner_text() == CHAPTER
            page.go_back()
        assert not visit.console and not visit.failed, f"following the feedback links: {visit.console + visit.failed}"


def test_formgrader_lists_the_chapter_with_its_exercises_and_points(browser, graded, tmp_path):
    out, grades = graded
    points = _points()
    total = sum(points.values()) + sum(_written().values())
    per_learner = {}
    for (s, c, g), r in grades.items():
        if r["status"] != "not_gradable":  # carol's file is no notebook: missing in the gradebook, not 0
            per_learner[s] = per_learner.get(s, 0.0) + float(r["points"])
    assert set(per_learner) == {"alice", "bob"}
    lab = Lab(tmp_path, OUT=out)
    try:
        assert f"{lab.url}/formgrader?token={lab.token}" in lab.log.read_text(), "make lab OUT=... prints the formgrader's URL"
        with offline_context(browser, lab.url, viewport=DESKTOP) as ctx:
            page = ctx.new_page()
            page.goto(f"{lab.url}/formgrader?token={lab.token}")
            row = page.locator("table tbody tr", has_text=CHAPTER)
            row.first.wait_for(timeout=60_000)
            assert row.count() == 1, f"Manage Assignments lists {CHAPTER} {row.count()} times"

            page.goto(f"{lab.url}/formgrader/gradebook")
            row = page.locator("table tbody tr", has_text=CHAPTER)
            row.first.wait_for(timeout=60_000)
            avg, most = map(float, re.search(r"([\d.]+) / ([\d.]+)", row.inner_text()).groups())
            mean = sum(per_learner.values()) / len(per_learner)
            assert (avg, most) == (pytest.approx(mean, abs=0.01), total), (
                f"Manual Grading shows {row.inner_text()!r}: expected mean {mean:g} of {total:g} points")

            page.goto(f"{lab.url}/formgrader/manage_submissions/{CHAPTER}")
            for learner in ("alice", "bob"):
                row = page.locator("table tbody tr", has_text=learner)
                row.first.wait_for(timeout=60_000)
                text = row.inner_text()
                assert f"{per_learner[learner]:g} / {total:g}" in text, f"{learner}'s submission: {text!r}"
                assert "needs manual grading" in text, (
                    f"{learner}'s written answer waits for a hand-given score, but is not flagged: {text!r}")
            carol = page.locator("table tbody tr", has_text="carol")
            assert carol.count() == 0 or "/" not in carol.inner_text(), f"carol has a score: {carol.inner_text()!r}"

            # the exercises and their points, as nbgrader's Create Assignment panel shows them
            lab.open(page, f"source/{CHAPTER}/{CHAPTER}.ipynb", "formgrader")
            page.get_by_text("Create Assignment", exact=True).click()
            page.locator(".nbgrader-TotalPointsInput").wait_for(timeout=60_000)
            shown = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.nbgrader-CellWidget')]
                .filter(w => w.querySelector('.nbgrader-CellType select')?.value === 'tests')
                .map(w => [w.querySelector('.nbgrader-CellId input').value,
                           Number(w.querySelector('.nbgrader-CellPoints input').value)]))""")
            assert shown == points, f"the formgrader's {CHAPTER} shows exercises {shown}, the source has {points}"
            assert float(page.locator(".nbgrader-TotalPointsInput").input_value()) == total, "tests and written answer"
        assert lab.stop() == [], f"JupyterLab left processes running after SIGTERM: {lab.stopped}"
    finally:
        lab.stop()


SCROLLS_INSIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.tagName !== 'PRE' && e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
  .map(e => `<${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}> ${e.scrollWidth} px in ${e.clientWidth} px`)"""


def test_grading_pages_fit_a_desktop_and_a_phone(browser, graded, tmp_path):
    """index.html and a feedback page whose reason is one 2,500-character line neither scroll
    sideways nor hide a table's columns behind a sideways scroll, at 1280 px and at 390 px."""
    from autograder import report
    from autograder.grade import Row

    out, _ = graded
    reason = "merge fails in 7 of 7 cases; first: when m == 0: " + "nums1: 3 of 5 elements differ, " * 80
    long = tmp_path / "feedback" / "a-learner-with-a-rather-long-identifier-0123456789" / f"{CHAPTER}.html"
    report.write_feedback([Row(long.parent.name, CHAPTER, "test_merge_path_partition_with_a_long_name", 0.0, 2.0,
                               "graded", reason, visible="assert merge([1], 1, [], 0) is None")], long)
    for path in (out / "index.html", long):
        for viewport in (DESKTOP, PHONE):
            with offline_context(browser, "file://", viewport=viewport) as ctx:
                page = ctx.new_page()
                load(page, path.as_uri(), watch(page, "file://"))
                o, inside = page.evaluate(OVERFLOW), page.evaluate(SCROLLS_INSIDE)
            where = f"{path.name} at {viewport['width']} px"
            assert o["scroll"] <= o["width"], f"{where} scrolls sideways:\n  " + "\n  ".join(o["culprits"])
            assert not inside, f"{where}: these boxes need a sideways scroll: {inside}"


def test_formgrader_opens_an_autograded_notebook_and_grades_the_written_answer_by_hand(browser, graded, tmp_path):
    """Manual Grading: bob's autograded notebook opens with the grader's reason in test_merge's
    output; a score given by hand to the written answer changes his total, survives a regrade,
    and counts in grades.csv and export.csv. (Runs last: it leaves a hand-given score in OUT.)"""
    import csv

    out, grades = graded
    points, written = _points(), _written()
    (gid, most_written), = written.items()
    most = sum(points.values()) + most_written
    before = sum(float(r["points"]) for (s, c, g), r in grades.items() if s == "bob")
    reason = grades[("bob", CHAPTER, "test_merge")]["reason"]
    assert "got [1, 2, 3, 0, 0, 0]" in reason
    shot = SHOTS / "formgrader-autograded-notebook.png"
    SHOTS.mkdir(parents=True, exist_ok=True)
    lab = Lab(tmp_path, OUT=out)
    try:
        with offline_context(browser, lab.url, viewport=DESKTOP) as ctx:
            page = ctx.new_page()
            page.goto(f"{lab.url}/formgrader/gradebook?token={lab.token}")  # "Manual Grading"
            page.locator("table tbody tr a", has_text=CHAPTER).first.click()
            page.locator("table tbody tr a", has_text=CHAPTER).first.click()  # the chapter's one notebook
            bob = page.locator("table tbody tr", has=page.locator("a.name-shown", has_text="bob"))
            bob.wait_for(timeout=60_000)
            assert f"{before:g} / {most:g}" in bob.inner_text(), f"bob's row: {bob.inner_text()!r}"
            bob.locator("a.name-hidden").click()  # names are hidden by default: "Submission #n"

            score = page.locator(f"input.score#{gid}")
            score.wait_for(timeout=60_000)
            graded_cell = page.locator(".cell", has=page.locator("input.score#test_merge")).first
            assert "got [1, 2, 3, 0, 0, 0]" in graded_cell.inner_text(), (
                f"the failing reason is not in test_merge's cell: {graded_cell.inner_text()[:1500]!r}")
            assert "verify(" in page.inner_text("body"), "the instructor's view shows the hidden block"
            graded_cell.screenshot(path=str(shot))  # its score box, its visible checks and the reason below them

            score.fill("1.5")
            score.press("Tab")  # the formgrader saves on change
            page.locator(".nbgrader_cell", has=score).locator(".score-saved").wait_for(state="visible", timeout=30_000)

            page.go_back()
            page.reload()
            bob = page.locator("table tbody tr", has=page.locator("a.name-shown", has_text="bob"))
            bob.wait_for(timeout=60_000)
            assert f"{before + 1.5:g} / {most:g}" in bob.inner_text(), f"bob's total after 1.5 by hand: {bob.inner_text()!r}"

            done = run_cli("grade", out.parent / "submissions", "--out", out, "--chapter", CHAPTER, timeout=600)
            assert done.returncode == 0, done.stderr[-3000:]
            page.reload()
            bob = page.locator("table tbody tr", has=page.locator("a.name-shown", has_text="bob"))
            bob.wait_for(timeout=60_000)
            assert f"{before + 1.5:g} / {most:g}" in bob.inner_text(), f"a regrade lost the hand-given score: {bob.inner_text()!r}"
        assert lab.stop() == [], f"JupyterLab left processes running after SIGTERM: {lab.stopped}"
    finally:
        lab.stop()
    again = read_grades(out)
    assert (again[("bob", CHAPTER, gid)]["points"], again[("bob", CHAPTER, gid)]["status"]) == ("1.5", "graded")
    with (out / "export.csv").open() as f:
        export = {r["SIS Login ID"]: r for r in csv.DictReader(f)}
    assert float(export["bob"][CHAPTER]) == before + 1.5 and export["carol"][CHAPTER] == ""
    assert shot.stat().st_size > 10_000
