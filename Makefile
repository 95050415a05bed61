# hdcid task runner. `make run` = set up + build the demo data + execute every notebook;
# `make test` = set up + run the test suite (what .ci/run calls).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
LOCK   := requirements.lock
QUICK  ?= 0
PORT   ?= 8888

.PHONY: run quick setup setup-dev data notebooks notebooks-sync runtimes lint format lock test test-fast lab bench clean-outputs

run: setup data notebooks            ## set up, build the demo corpus, execute all notebooks

quick: QUICK=1
quick: run                           ## the same in quick mode (~90 s per notebook on 2 CPU cores)

# One lock file holds the exact pins (torch 2.13.0 CPU and everything else, test tools included);
# pyproject.toml keeps the ranges a library user needs. `make lock` regenerates the lock.
$(VENV)/.installed: $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r $(LOCK)
	$(PIP) install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

setup-dev: setup

lock:                                ## re-resolve pyproject.toml's ranges into requirements.lock
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet "torch==2.13.0" -e ".[dev]"
	( echo "# Exact pins for make run / make test / CI (regenerate: make lock). Python 3.11, CPU torch."; \
	  .venv-lock/bin/pip freeze --exclude-editable | sed -e 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/' ) > $(LOCK)
	rm -rf .venv-lock

data: setup                          ## build the AV-Digits demo corpus into data/demo
	$(PY) -m hdcid.demo.build

notebooks: setup                     ## execute notebooks; copies and figures go to outputs/
	HDCID_QUICK=$(QUICK) $(PY) -m hdcid.runner

notebooks-sync: setup                ## after editing notebooks/NN_*.py or notebooks/templates/: render 05-08, runtime lines, .ipynb
	$(PY) notebooks/templates/render_tasks.py
	$(PY) -m hdcid.runtimes
	$(VENV)/bin/jupytext --sync notebooks/[0-9][0-9]_*.py

runtimes: setup                      ## take the quick timings of the last notebook-test run into docs/runtimes.json
	$(PY) -m hdcid.runtimes --merge outputs/test-notebooks/runtimes.json --mode quick
	$(MAKE) notebooks-sync

lint: setup                          ## ruff lint + format check (what CI runs before the tests)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup                        ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint                           ## lint, then the full test suite, notebooks and browser test included
	$(PY) -m pytest -q

test-fast: setup                 ## unit tests only
	$(PY) -m pytest -q -m "not slow and not notebook and not browser"

lab: setup                           ## JupyterLab on this project's environment
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --port=$(PORT)

bench: setup                     ## CPU benchmarks (quick settings); results in outputs/benchmarks
	mkdir -p outputs/benchmarks
	$(PY) benchmarks/bench_quantizer.py --quick
	$(PY) benchmarks/bench_toc.py
	$(PY) benchmarks/bench_cache.py
	$(PY) benchmarks/bench_pretrain.py --quick --out outputs/benchmarks/pretrain.json
	$(PY) benchmarks/nearest_centroid.py

clean-outputs:
	rm -rf outputs
