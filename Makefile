# streammeta: `make demo` runs the main job, `make test` runs lint, types and the test suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
OUT    ?= bench-out

.PHONY: setup demo test lint prometheus-tools peers bench bench-quick dashboard clean

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

# promtool and prometheus (Debian's package) for the deploy tests, which skip, saying why,
# where they are missing; an install that fails does not fail the test run.
prometheus-tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$sudo apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 || \
	  { $$sudo apt-get update -q >/dev/null 2>&1 && \
	    $$sudo apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1; } || \
	  echo "prometheus-tools: could not install Debian's prometheus package; the deploy tests that need it will skip"; }

# two workers, one per core; a test file stays on one worker (its fixtures and order hold)
TEST_WORKERS ?= 2
test: lint prometheus-tools
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# deep-river, a benchmark peer that pins river < 0.26: installed into an overlay directory that
# only its own process reads (never a dependency); the benchmarks run without it if this fails
peers: setup
	-$(PY) -m streammeta.bench.deep_river

bench: setup peers
	$(VENV)/bin/streammeta bench adaptation --out $(OUT)/adaptation
	$(VENV)/bin/streammeta bench batch-sizes --out $(OUT)/batch-sizes
	$(VENV)/bin/streammeta bench throughput --out $(OUT)/throughput
	$(VENV)/bin/streammeta bench keys --out $(OUT)/keys
	$(VENV)/bin/streammeta bench late-labels --out $(OUT)/late-labels

bench-quick: setup peers
	$(VENV)/bin/streammeta bench adaptation --quick --out $(OUT)/adaptation-quick

# the dashboard's main panels from a real Prometheus scraping a 180 s demo (docs/dashboard.png)
dashboard: setup prometheus-tools
	$(VENV)/bin/streammeta bench dashboard --out $(OUT)/dashboard

clean:
	rm -rf $(VENV) $(OUT) .mypy_cache .ruff_cache .pytest_cache
