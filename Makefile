# The two commands: `make demo` runs the main job, `make test` runs the tests.
# Each sets itself up on a fresh machine: .venv, torch 2.13.0 (CPU) first, then the project.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sumonce-installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[actors,jobs,test]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/sumonce demo

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) bench/prove_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
