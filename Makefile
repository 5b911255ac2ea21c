# streammeta: `make demo` runs the main job, `make test` runs lint, types and the test suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
OUT    ?= bench-out

.PHONY: setup demo test lint bench bench-quick clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: a local CPU build here, the normal CUDA build on a GPU machine.
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/streammeta demo

lint: setup
	$(VENV)/bin/ruff check streammeta tests services
	$(VENV)/bin/ruff format --check streammeta tests services
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest

bench: setup
	$(VENV)/bin/streammeta bench adaptation --out $(OUT)/adaptation
	$(VENV)/bin/streammeta bench throughput --out $(OUT)/throughput

bench-quick: setup
	$(VENV)/bin/streammeta bench adaptation --quick --out $(OUT)/adaptation-quick

clean:
	rm -rf $(VENV) $(OUT) .mypy_cache .ruff_cache .pytest_cache
