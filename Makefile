# Thin wrappers. Each target creates .venv on demand from the pinned constraints.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MATHJAX := book/_mathjax/es5/tex-chtml.js
MATHJAX_VERSION := 3.2.2

.PHONY: book test lab release grade bench bench-grade sysdeps clean

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

# What the grader's tests need from the system: bubblewrap (the sandbox) and PostgreSQL (the
# gradebook by URL). Installed with apt-get when run as root on Debian/Ubuntu; otherwise named.
sysdeps:
	@if command -v bwrap >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap postgresql >/dev/null; \
	else echo "make test needs bubblewrap and PostgreSQL: sudo apt-get install bubblewrap postgresql"; exit 1; fi

test: $(STAMP) $(MATHJAX) sysdeps
	$(PY) -m pytest

lab: $(STAMP)
	$(VENV)/bin/jupyter lab exercises/

release: $(STAMP)
	$(PY) -m autograder release

grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=dir OUT=dir"; exit 2; }
	$(PY) -m autograder grade "$(SUBMISSIONS)" --out "$(or $(OUT),grading)"

bench: $(STAMP)
	$(PY) -m autograder bench $(if $(CHAPTER),--chapter $(CHAPTER))

bench-grade: $(STAMP) sysdeps
	$(PY) -m autograder bench-grade

clean:
	rm -rf _build .cache book/_mathjax
