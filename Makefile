# lorag: `make demo` runs the main job end to end; `make test` runs the whole suite.
# Both work from a fresh clone: they install uv (from PyPI) and the locked environment in .venv.

SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
LORAG := $(VENV)/bin/lorag
PYTEST := $(VENV)/bin/python -m pytest

.PHONY: help install browser up down status demo test test-unit bench bench-check lint schemas

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m pip install --user --quiet "uv>=0.9,<0.14"

# Bytecode at install, once: Python never writes it where PYTHONDONTWRITEBYTECODE is set (as on
# these machines), so every process compiled torch, transformers and the rest again on import:
# `import transformers, torch, sentence_transformers, peft` took 31 s without it and 8 s with it
# (2 cores, a test run going on meanwhile). Compiling the 20,912 files took 44 s.
$(VENV)/.synced: uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml) | $(UV)
	$(UV) sync --frozen --all-packages --compile-bytecode
	@touch $@

install: $(VENV)/.synced ## Create .venv with every package and the lorag command

up: install ## Start local Kafka, Postgres and S3 (first run downloads them)
	$(LORAG) up

down: install ## Stop the local servers
	$(LORAG) down

status: install ## Show the local servers
	$(LORAG) status

demo: install ## Run the main job end to end on the bundled corpus
	$(VENV)/bin/python deploy/demo/run_demo.py

browser: ## Debian's Chromium for the console's browser tests; fails if it cannot be installed
	@command -v chromium >/dev/null 2>&1 || { \
		command -v apt-get >/dev/null 2>&1 \
			|| { echo "make browser: chromium is missing and there is no apt-get; install Debian's chromium package" >&2; exit 1; }; \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium \
			|| { echo "make browser: could not install chromium (apt-get install -y chromium, as root)" >&2; exit 1; }; \
	}
	@command -v chromium >/dev/null 2>&1 \
		|| { echo "make browser: chromium is still not on PATH after installing it" >&2; exit 1; }

test: install browser ## Every test; starts real servers on free ports; fails on a skip not in tests/skip-allowlist.toml
	$(PYTEST) tests -q -ra

test-unit: install ## Unit tests only (no servers)
	$(PYTEST) tests/unit -q

bench: install ## Benchmarks: a JSON line per figure (baseline, target, pass), then a table; exits 0 on misses
	$(VENV)/bin/python -m bench

# bench-check does not rerun anything: it judges the figures the last runs recorded in
# .lorag/bench/results.jsonl (LORAG_BENCH_RESULTS overrides), where each suite's latest run
# replaces that suite's lines, so `python -m bench rag` after a fix updates rag alone.
bench-check: install ## Judge the recorded bench figures (no rerun): exits 1 if any missed, 2 if none
	$(VENV)/bin/python -m bench --check

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check libs services tests bench deploy
	$(VENV)/bin/ruff format --check libs services tests bench deploy
	$(VENV)/bin/mypy $(foreach p,core api cli local rag lora hybrid migration gateway,-p lorag_$(p))

schemas: install ## Re-export the contracts (JSON Schemas, AsyncAPI, each API's OpenAPI) after a change
	$(VENV)/bin/python -m lorag_core.contracts.schemas
	$(VENV)/bin/python -m tests.support.openapi
