# forgeloc: the two commands of the README are `make repro` (main job) and `make test` (tests).
# Everything is installed into .venv from the repository's own files (settings.ini via setup.py).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export FORGELOC_ROOT := $(CURDIR)
RAW := $(shell awk '/^base:/{b=1;next} /^[^ #]/{b=0} b && $$1=="raw_dir:"{print $$2; exit}' params.yaml)

.PHONY: install install-landmarks data repro test docs docs-check docs-screens export readme benchmark benchmark-train table3 generalization

$(VENV)/.installed: settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The optional `landmarks` extra (dlib + its 68-point model) for crop=fcn and landmark labels.
# dlib compiles from source: about 14 minutes on 2 cores the first time (pip caches the wheel).
$(VENV)/.landmarks: $(VENV)/.installed
	@echo "installing the landmarks extra: dlib compiles from source (about 14 minutes on 2 cores the first time)"
	$(BIN)/python -m pip install -q -e ".[dev,landmarks]"
	touch $@

install-landmarks: $(VENV)/.landmarks

# Build the embedded sample dataset if the raw-data folder is absent or empty, then let DVC
# record it in data.dvc and its cache (data.dvc is unchanged when the build is byte-identical).
data: install
	@if [ -d "$(RAW)" ] && [ -n "$$(ls -A "$(RAW)" 2>/dev/null)" ]; then \
	  echo "$(RAW) present: kept"; \
	else \
	  $(BIN)/python -c "from forgeloc.data.sample import main; main()" && \
	  $(BIN)/dvc commit -q -f data.dvc; \
	fi

# dvc repro trains and evaluates every model of params.yaml: train.models, then the README's comparison table is
# regenerated from metrics/compare.md (make readme).
repro: data
	time $(BIN)/dvc repro
	$(MAKE) --no-print-directory readme

test: install-landmarks
	$(BIN)/python -m pytest -q tests
	$(BIN)/nbdev_test --n_workers 2 --flags dlib

# The book: every lesson of nbs/ executed as nbdev_test runs it (`#| slow` cells shown, not run), rendered with
# Sphinx + MyST-NB into _docs/ (open _docs/index.html). Reading order and titles: nbs/_book/toc.yml.
docs: install
	time $(BIN)/python tools/build_book.py

# the book, then its checks: a page per lesson, a figure in every model lesson (tests/test_docs.py)
docs-check: docs
	$(BIN)/python -m pytest -q tests/test_docs.py

# screenshots of the front page and the UPerNet lesson in headless Chromium (Debian's chromium) into _book/screens/
docs-screens:
	$(BIN)/python tools/screenshot_book.py

benchmark: install
	$(BIN)/python benchmarks/extract_throughput.py

# training throughput of every model at its paper input size, engine vs a bare PyTorch loop (needs `make repro` data)
benchmark-train: install
	$(BIN)/python benchmarks/train_throughput.py

# The S and D rows of the UPerNet paper's Table III: one DVC experiment per model of params.yaml reports.table3_models
# and training set (dvc exp run --temp: the workspace keeps the default pipeline), collected into
# metrics/experiments/table3.json; then the reports stage writes metrics/table3.md and metrics/cross_dataset.md.
table3: install
	$(BIN)/python -c "from forgeloc.reports import run_table3; run_table3()"
	$(BIN)/dvc repro reports

# Cross-quality and cross-manipulation (issue 15): one DVC experiment per model of params.yaml generalization.models and
# training quality (generalization.qualities; its test split cut again at every quality by quality_test@<model>) or
# training method (generalization.methods), one seed, FF++ frames only, collected into metrics/experiments/generalization.json;
# then the reports stage writes metrics/generalization.md (+ .json). The default pipeline runs none of them.
generalization: install
	$(BIN)/python -c "from forgeloc.reports import run_generalization; run_generalization()"
	$(BIN)/dvc repro reports

readme: install
	$(BIN)/python -c "from forgeloc.compare import README_BLOCKS, update_readme; print('README updated' if [update_readme(table=t, marker=m) for m, t in README_BLOCKS.items()].count(True) else 'README unchanged')"

export: install
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_clean --fname nbs/pipeline
