# The few commands a reader needs. Each sets up .venv first (idempotent: reinstalls only when pyproject.toml changes).
#   make lab        set up and open the course in JupyterLab
#   make test       set up and run every test (package tests, lint, every chapter under nbval in quick mode)
#   make browser-test  run every chapter in JupyterLab in headless Chromium (needs chromium + playwright)
#   make chapters   re-render every chapter notebook from its .py source, outputs included
#   make student    write chapters/student/NN_slug.ipynb: the chapters with exercise solutions replaced by stubs
#   make data       get CIFAR-10 (download, or CIFAR10_ARCHIVE=path/to/cifar10-jpg.tar.gz to extract one)
#   make wheel-test build the wheel, install it into a fresh environment, run the coursework smoke test (after data)
#   make book       the course as a website in _build/book/ (stored outputs; EXECUTE=1 runs the chapters first)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.wf-lessons-installed
PYTEST_ARGS ?=
CHAPTERS ?=
# JupyterLab refuses to run as root (containers) unless told to
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: setup lab test lint chapters student data browser-test wheel-test book

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

BOOK_STAMP := $(VENV)/.wf-lessons-book-installed
EXECUTE ?=

# The kernel is this environment's own python3 (the name the chapters' notebooks use), registered inside .venv, never
# user-wide: a notebook opened from this checkout runs on this checkout's package and data.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix >/dev/null
	touch $@

setup: $(STAMP)

$(BOOK_STAMP): pyproject.toml | $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,book]'
	touch $@

# Served from the repository root, so that jupytext finds [tool.jupytext] in pyproject.toml (it looks no higher than
# the server's root) and pairs each chapter's .py with its .ipynb; the file browser opens on chapters/.
lab: setup
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/chapters $(LAB_ARGS)

lint: setup
	$(VENV)/bin/ruff check wf_lessons tests book

test: lint
	$(PY) -m wf_lessons.data check
	WF_NO_DOWNLOAD=1 WF_QUICK=$${WF_QUICK:-1} $(PY) -m pytest tests chapters --nbval-lax --nbval-current-env \
		--nbval-sanitize-with chapters/nbval_sanitize.cfg $(PYTEST_ARGS)

chapters: setup
	WF_QUICK=$${WF_QUICK:-1} TQDM_DISABLE=1 $(PY) -m wf_lessons.notebooks render $(CHAPTERS)

student: setup
	$(PY) -m wf_lessons.notebooks student $(CHAPTERS)

data: setup
	$(PY) -m wf_lessons.data prepare $(if $(CIFAR10_ARCHIVE),--archive "$(CIFAR10_ARCHIVE)")

# The website edition: README as landing page, every chapter with its stored outputs (EXECUTE=1: run first, in quick
# mode unless WF_QUICK=0; chapters/ is not changed), the paper notes, the API reference. Built offline (book/).
book: $(BOOK_STAMP)
	$(PY) book/make_book.py $(if $(filter 1,$(EXECUTE)),--execute)

# JupyterLab in headless Chromium (Debian's `chromium` package, driven by Playwright for Python): every chapter run,
# every widget moved; then the website edition built, served on 127.0.0.1 and crawled (tests/browser/test_website.py);
# screenshots in .browser-test/. Skipped with a hint when Chromium or Playwright is missing.
browser-test: $(BOOK_STAMP)
	$(PY) -m pytest tests/browser -m browser $(PYTEST_ARGS)

# The install path a student takes: the wheel built from a copy of the checkout, installed into a fresh virtual
# environment in a temporary folder (torch hard-linked from this .venv, everything else resolved by pip), and the
# coursework smoke test run from an empty folder (tests/wheel/run.py, which says what it checks). Needs `make data`.
wheel-test: setup
	$(PY) tests/wheel/run.py --torch-from $(VENV) $(WHEEL_TEST_ARGS)
