# Thin wrappers. Each target creates .venv on demand from the pinned constraints.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MATHJAX := book/_mathjax/es5/tex-chtml.js
MATHJAX_VERSION := 3.2.2

.PHONY: book publish progress screenshots test lab release grade bench bench-grade gpu-check sysdeps clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH (or make PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e .
	touch $(STAMP)

$(MATHJAX):
	rm -rf .cache/npm && mkdir -p .cache/npm book/_mathjax
	npm install --silent --no-audit --no-fund --prefix .cache/npm mathjax@$(MATHJAX_VERSION)
	rm -rf book/_mathjax/es5 && cp -r .cache/npm/node_modules/mathjax/es5 book/_mathjax/es5

book: $(STAMP) $(MATHJAX)
	$(VENV)/bin/jupyter-book build book --config _config.yml --toc "$(CURDIR)/_toc.yml" \
		--path-output . -W --keep-going
	@echo "open _build/html/index.html"

# The learner's edition in _build/learner/: site/ (the book as deployed) and course/ (the tree a learner
# clones and the launch buttons open: no solutions/, no autograder/reference/, no tests/).
publish: book
	$(PY) -m autograder publish --out _build/learner

# A learner's standing: the visible checks of every notebook in my-exercises/ (or DIR=...), one table.
progress: $(STAMP)
	$(PY) -m autograder progress $(or $(DIR),my-exercises)

# Every page of the book at desktop (1280 px) and phone (390 px) widths, in _build/screenshots/;
# fails if a page scrolls sideways on a phone. The test runs `make book` first (a no-op when fresh).
screenshots: $(STAMP) $(MATHJAX)
	$(PY) -m pytest -q tests/test_browser.py -k screenshots
	@echo "wrote _build/screenshots/"

# What the tests need from the system: bubblewrap (the grader's sandbox), PostgreSQL (the
# gradebook by URL) and Chromium (the browser tests). Installed with apt-get when run as root on
# Debian/Ubuntu; otherwise named.
sysdeps:
	@if command -v bwrap >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
		&& command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap postgresql chromium >/dev/null; \
	else echo "make test needs bubblewrap, PostgreSQL and Chromium: sudo apt-get install bubblewrap postgresql chromium"; exit 1; fi

test: $(STAMP) $(MATHJAX) sysdeps
	$(PY) -m pytest

# JupyterLab 4 on loopback with a fresh token, printing the URL to open. A learner's lab opens
# my-exercises/ (a working copy of exercises/, made once and never overwritten) with nbgrader's
# Validate and none of its instructor tools; `make lab OUT=grading` opens a grading run's folder as
# the formgrader's course and prints the formgrader's URL too. LAB_DIR (the learner's folder),
# LAB_PORT, LAB_TOKEN and LAB_ARGS (e.g. --no-browser) adjust it. See autograder/lab.py.
LAB_PORT ?= 8888
lab: $(STAMP)
	@exec $(PY) -m autograder lab $(if $(OUT),--out "$(OUT)") $(if $(LAB_DIR),--dir "$(LAB_DIR)") \
		--port $(LAB_PORT) $(if $(LAB_TOKEN),--token $(LAB_TOKEN)) -- $(LAB_ARGS)

release: $(STAMP)
	$(PY) -m autograder release

grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=dir OUT=dir"; exit 2; }
	$(PY) -m autograder grade "$(SUBMISSIONS)" --out "$(or $(OUT),grading)"

bench: $(STAMP)
	$(PY) -m autograder bench $(if $(CHAPTER),--chapter $(CHAPTER))

# On a lent GPU machine, with its own Python, torch and triton and no .venv (which cannot travel):
# every chapter's hidden cases with the solutions, its kernels at GPU sizes, and bench recorded in
# book/data/; OUT=dir also gets the table and every record in one file (see README, contributors).
GPU_PYTHON ?= python3
gpu-check:
	PYTHONPATH=. PYTHONUNBUFFERED=1 $(GPU_PYTHON) -m autograder gpu-check $(if $(CHAPTER),--chapter $(CHAPTER)) $(if $(OUT),--out $(OUT))

bench-grade: $(STAMP) sysdeps
	$(PY) -m autograder bench-grade

clean:
	rm -rf _build .cache book/_mathjax
