# hdcid task runner. `make run` = set up + build the demo data + execute every notebook;
# `make test` = set up + run the test suite (what .ci/run calls).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
QUICK  ?= 0
PORT   ?= 8888

.PHONY: run quick setup setup-dev data notebooks notebooks-sync runtimes test test-fast lab bench clean-outputs

run: setup data notebooks            ## set up, build the demo corpus, execute all notebooks

quick: QUICK=1
quick: run                           ## the same in quick mode (~90 s per notebook on 2 CPU cores)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

data: setup                          ## build the AV-Digits demo corpus into data/demo
	$(PY) -m hdcid.demo.build

notebooks: setup                     ## execute notebooks; copies and figures go to outputs/
	HDCID_QUICK=$(QUICK) $(PY) -m hdcid.runner

notebooks-sync: setup-dev            ## after editing notebooks/NN_*.py or notebooks/templates/: render 05-08, runtime lines, .ipynb
	$(PY) notebooks/templates/render_tasks.py
	$(PY) -m hdcid.runtimes
	$(VENV)/bin/jupytext --sync notebooks/[0-9][0-9]_*.py

runtimes: setup-dev                  ## take the quick timings of the last notebook-test run into docs/runtimes.json
	$(PY) -m hdcid.runtimes --merge outputs/test-notebooks/runtimes.json --mode quick
	$(MAKE) notebooks-sync

test: setup-dev                      ## the full test suite, notebooks and browser test included
	$(PY) -m pytest -q

test-fast: setup-dev                 ## unit tests only
	$(PY) -m pytest -q -m "not slow and not notebook and not browser"

lab: setup                           ## JupyterLab on this project's environment
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --port=$(PORT)

bench: setup-dev                     ## CPU benchmarks (quick settings); results in outputs/benchmarks
	mkdir -p outputs/benchmarks
	$(PY) benchmarks/bench_quantizer.py --quick
	$(PY) benchmarks/bench_toc.py
	$(PY) benchmarks/bench_cache.py
	$(PY) benchmarks/bench_pretrain.py --quick --out outputs/benchmarks/pretrain.json
	$(PY) benchmarks/nearest_centroid.py

clean-outputs:
	rm -rf outputs
