# make demo / make test do all their set-up on a fresh clone: a virtualenv in .venv, the package
# installed editable with its dev extra (again only when pyproject.toml changes), and the Kafka
# broker jars fetched by Maven (only when missing). Every target can be run again.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
JARS   := infra/kafka/lib/.pom.sha256

.DEFAULT_GOAL := help
.PHONY: help demo test lint typecheck pytest bench clean distclean venv jars

help:
	@echo "make demo       simulate 5 min of the small scenario through Kafka + Faust into DuckDB, print the summary"
	@echo "make test       ruff, mypy (strict), then every test incl. integration (real broker)"
	@echo "make lint | typecheck | bench | clean | distclean"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

$(JARS): infra/kafka/pom.xml | $(STAMP)
	$(BIN)/twin broker fetch

venv: $(STAMP)
jars: $(JARS)

# the main job on the embedded defaults: local broker, 5 simulated minutes of the small scenario
# through Kafka and a Faust worker into DuckDB (.twin/twin.duckdb), then the run summary
DEMO_ARGS ?= --scenario small --duration 5m
demo: $(STAMP) $(JARS)
	$(BIN)/twin run $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(JARS)
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP) $(JARS)
	@set -e; found=0; for f in bench/bench_*.py; do \
		[ -e "$$f" ] || continue; found=1; echo "== $$f"; $(BIN)/python "$$f"; done; \
	[ "$$found" = 1 ] || echo "no benchmarks yet (bench/bench_*.py)"

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info infra/kafka/target
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	@if [ -x $(BIN)/twin ]; then $(BIN)/twin broker stop || true; fi
	rm -rf $(VENV) infra/kafka/lib .twin
