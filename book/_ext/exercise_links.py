"""Every chapter page offers its exercise notebook.

A page `NN-slug` whose `exercises/NN-slug.ipynb` exists gets:
- a copy of that notebook in the built site, at `exercises/NN-slug.ipynb`;
- at the top of its "Exercises" section (or at the end of the page), a box with a download link
  and a launch link for each launch service set in `_config.yml` (`launch_buttons`), pointing at
  the exercise notebook in the repository set there (`repository: url`), the one place it is set;
- its exercises numbered per chapter, as in the notebook (`number_per_chapter`);
- the same download in the page's download menu, which offers no page source (the site serves no
  `_sources/`: a page's source holds its hidden cells in full).

A chapter page with no exercise notebook is a warning (the book builds with -W): run
`make release`.
"""
import posixpath
import re
import shutil
from pathlib import Path
from urllib.parse import quote, urlencode, urlparse

from docutils import nodes
from sphinx.util import logging

SLUG = re.compile(r"^\d\d-[a-z0-9-]+$")
LOG = logging.getLogger(__name__)


def _notebooks(app) -> Path:
    return (Path(app.srcdir) / app.config.exercise_notebooks).resolve()


def _chapter(app, docname: str, warn: bool = False) -> str | None:
    """The slug when docname is a chapter page with an exercise notebook, else None."""
    slug = posixpath.basename(docname)
    if not SLUG.match(slug):
        return None
    if not (_notebooks(app) / f"{slug}.ipynb").is_file():
        if warn:
            LOG.warning(f"chapter {slug} has no exercise notebook {app.config.exercise_notebooks}/{slug}.ipynb "
                        "(make release generates it from solutions/)", location=docname)
        return None
    return slug


def launch_links(app, slug: str) -> list[tuple[str, str]]:
    """(service, URL) that opens exercises/<slug>.ipynb from the repository in JupyterLab."""
    theme = app.config.html_theme_options
    repo_url = theme.get("repository_url", "").rstrip("/")
    branch = theme.get("repository_branch") or "main"
    buttons = theme.get("launch_buttons", {})
    if not repo_url:
        return []
    org_repo = urlparse(repo_url).path.strip("/")
    repo = org_repo.split("/")[-1]
    path = f"{app.config.exercise_repo_path}/{slug}.ipynb"
    ui = {"classic": "tree", "jupyterlab": "lab/tree"}[buttons.get("notebook_interface", "jupyterlab")]
    links = []
    if buttons.get("binderhub_url"):
        hub = buttons["binderhub_url"].rstrip("/")
        github = urlparse(repo_url).netloc == "github.com"
        base = f"{hub}/v2/gh/{org_repo}/{branch}" if github else f"{hub}/v2/git/{quote(repo_url, safe='')}/{branch}"
        links.append(("Binder", f"{base}?urlpath={ui}/{path}"))
    if buttons.get("colab_url") and urlparse(repo_url).netloc == "github.com":
        links.append(("Colab", f"{buttons['colab_url'].rstrip('/')}/github/{org_repo}/blob/{branch}/{path}"))
    if buttons.get("jupyterhub_url"):
        hub = buttons["jupyterhub_url"].rstrip("/")
        query = urlencode({"repo": repo_url, "urlpath": f"{ui}/{repo}/{path}", "branch": branch}, safe="/")
        links.append(("JupyterHub", f"{hub}/hub/user-redirect/git-pull?{query}"))
    return links


def _download(docname: str, slug: str) -> str:
    return posixpath.relpath(f"exercises/{slug}.ipynb", posixpath.dirname(docname) or ".")


def add_box(app, doctree, docname):
    slug = _chapter(app, docname, warn=True)
    if slug is None:
        return
    para = nodes.paragraph()
    items = [(f"Download {slug}.ipynb", _download(docname, slug))]
    items += [(f"Launch on {name}", url) for name, url in launch_links(app, slug)]
    for k, (text, url) in enumerate(items):
        if k:
            para += nodes.Text(" · ")
        para += nodes.reference(text, text, refuri=url, classes=["exercise-notebook-link"])
    box = nodes.admonition("", classes=["tip", "exercise-notebook"])
    box += nodes.title("", "The exercise notebook")
    box += para
    box += nodes.paragraph("", "Open it in JupyterLab, fill in each function, run its test cell, and press Validate.")
    section = next((s for s in doctree.findall(nodes.section)
                    if s.children and s[0].astext().strip().lower() == "exercises"), None)
    if section is not None:
        section.insert(1, box)
    else:
        doctree += box


def add_download_button(app, pagename, templatename, context, doctree):
    for group in context.get("header_buttons", []):  # the page's own source is not served (html_copy_source)
        if group.get("label") == "download-buttons":
            group["buttons"] = [b for b in group["buttons"] if "_sources" not in str(b.get("url", ""))]
    slug = _chapter(app, pagename) if doctree is not None else None
    for group in context.get("header_buttons", []):  # Colab opens notebooks only: the exercises, not a page's .md
        if group.get("label") == "launch-buttons":
            group["buttons"] = [b for b in group["buttons"] if b.get("text") != "Colab"]
            group["buttons"] += [{"type": "link", "text": "Colab (exercises)", "tooltip": "Open the exercise notebook on Colab",
                                  "icon": "_static/images/logo_colab.png", "url": url}
                                 for name, url in (launch_links(app, slug) if slug else []) if name == "Colab"]
    if slug is None:
        return
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].insert(0, {
                "type": "link", "url": context["pathto"](f"exercises/{slug}.ipynb", 1), "text": "exercises",
                "icon": "fas fa-pen-to-square", "tooltip": "Download the exercise notebook",
                "label": "download-exercises-button",
            })


def number_per_chapter(app, doctree, docname):
    """Exercises are numbered per chapter, as the exercise notebook numbers them ("Exercise 1" on
    chapter 05's page is the notebook's Exercise 1), not across the book: sphinx-exercise reads
    the numbers Sphinx assigned (env.toc_fignumbers), so they are renumbered in page order."""
    numbers = app.env.toc_fignumbers.get(docname, {}).get("exercise")
    if numbers:
        for k, key in enumerate(sorted(numbers, key=numbers.get), 1):
            numbers[key] = (k,)


def copy_notebooks(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir) / "exercises"
    for docname in sorted(app.env.found_docs):
        slug = posixpath.basename(docname)
        src = _notebooks(app) / f"{slug}.ipynb"
        if SLUG.match(slug) and src.is_file():
            out.mkdir(exist_ok=True)
            shutil.copyfile(src, out / src.name)


def setup(app):
    # where the notebooks are, relative to the book's source folder, and in the repository
    app.add_config_value("exercise_notebooks", "../exercises", "env")
    app.add_config_value("exercise_repo_path", "exercises", "env")
    app.connect("doctree-resolved", number_per_chapter, priority=100)  # before sphinx-exercise writes them
    app.connect("doctree-resolved", add_box)
    app.connect("html-page-context", add_download_button, priority=502)  # after the theme's buttons
    app.connect("build-finished", copy_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
