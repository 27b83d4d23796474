# The README's two commands. Each bootstraps .venv first (pinned torch from local wheels).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/bookcover-fast
STAMP := $(VENV)/.bookcover-installed
DEMO ?= demo-out

.PHONY: demo test lint bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard csrc/*.cpp csrc/*.cu csrc/*.h)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q --no-build-isolation -e '.[dev,serve,ray]'
	@touch $@

demo: $(STAMP)
	rm -rf $(DEMO)
	$(CLI) data synth --n 2500 --seed 1 --out $(DEMO)/covers
	$(CLI) train --preset quick --data $(DEMO)/covers --seed 1 --out $(DEMO)/run
	$(CLI) evaluate --checkpoint $(DEMO)/run/best.pt --split test --out $(DEMO)/eval --quiet
	@echo "demo report: $(DEMO)/run/report.md (evaluation: $(DEMO)/eval/report.md)"

lint: $(STAMP)
	$(PY) -m ruff check bookcover tests bench export setup.py

# Triton tests need TRITON_INTERPRET=1 before triton is imported: they run in their own process.
test: $(STAMP) lint
	$(PY) -m pytest -q -m "not triton and not slow" tests
	TRITON_INTERPRET=1 $(PY) -m pytest -q -m "triton and not slow" tests; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

bench: $(STAMP)
	$(PY) -m pytest -q bench --benchmark-only

clean:
	rm -rf build *.egg-info $(DEMO) .pytest_cache .benchmarks
