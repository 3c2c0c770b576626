"""Small fixes to every page of the book, found by tests/test_browser.py.

- Each script once: Sphinx 7.4 lists a script that an extension adds after the builder starts
  (sphinx-thebe's and sphinx-togglebutton's inline settings) twice, once named None and once '',
  so every page declared `const THEBE_JS_URL` twice and the browser logged "Identifier
  'THEBE_JS_URL' has already been declared" (fixed in Sphinx 8.2, which Jupyter Book 1 does not
  allow yet).
- static/page_fixes.css: a long name in inline code breaks instead of pushing a phone's page
  sideways.
"""
from pathlib import Path

STATIC = Path(__file__).parent / "static"


def _key(js):
    return (getattr(js, "filename", js) or "", getattr(js, "priority", 0),
            tuple(sorted(getattr(js, "attributes", {}).items())))


def unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if scripts:
        seen = set()
        scripts[:] = [js for js in scripts if not (_key(js) in seen or seen.add(_key(js)))]


def add_static(app):
    app.config.html_static_path.append(str(STATIC))


def setup(app):
    app.connect("builder-inited", add_static)
    app.add_css_file("page_fixes.css")
    app.connect("html-page-context", unique_scripts, priority=900)  # after every extension added its own
    return {"parallel_read_safe": True, "parallel_write_safe": True}
