# Quick start: `make run` (set up .venv, run the main job) and `make test` (set up .venv, run the tests).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test venv lint clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) run_stream.py

test: $(STAMP)
	$(PY) -m pytest -q

# ruff (rules and formatting) and mypy over the library and the repository's packages; .ci/run runs it.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy pmr_stream engines training tools

clean:
	rm -rf $(VENV) build *.egg-info
