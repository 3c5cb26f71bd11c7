# The few commands a reader needs. Each sets up .venv first (idempotent: reinstalls only when pyproject.toml changes).
#   make lab        set up and open the course in JupyterLab
#   make test       set up and run every test (package tests, lint, every chapter under nbval in quick mode)
#   make chapters   re-render every chapter notebook from its .py source, outputs included
#   make data       get CIFAR-10 (download, or CIFAR10_ARCHIVE=path/to/cifar10-jpg.tar.gz to extract one)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.wf-lessons-installed
PYTEST_ARGS ?=
CHAPTERS ?=
# JupyterLab refuses to run as root (containers) unless told to
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: setup lab test lint chapters data

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --user --name wf-lessons --display-name "wf-lessons (.venv)" >/dev/null
	touch $@

setup: $(STAMP)

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=chapters $(LAB_ARGS)

lint: setup
	$(VENV)/bin/ruff check wf_lessons tests

test: lint
	WF_QUICK=$${WF_QUICK:-1} $(PY) -m pytest tests chapters --nbval-lax --nbval-current-env \
		--nbval-sanitize-with chapters/nbval_sanitize.cfg $(PYTEST_ARGS)

chapters: setup
	WF_QUICK=$${WF_QUICK:-1} TQDM_DISABLE=1 $(PY) -m wf_lessons.notebooks render $(CHAPTERS)

data: setup
	$(PY) -m wf_lessons.data prepare $(if $(CIFAR10_ARCHIVE),--archive "$(CIFAR10_ARCHIVE)")
