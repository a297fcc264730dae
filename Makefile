# wardwatch — the two commands:
#   make run    install into .venv, analyse the bundled ward capture, print the inventory, write the HTML report
#   make test   install everything the tests need (apt packages too, when root) and run lint, types and tests
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := samples/ward.pcapng
DB ?= ward.db
REPORT ?= ward-report.html
PYTEST_ARGS ?=

.PHONY: run test lint typecheck pytest bench sample clean

run:
	@scripts/bootstrap.sh run
	$(BIN)/wardwatch analyze $(SAMPLE) --db $(DB)
	$(BIN)/wardwatch devices --db $(DB)
	$(BIN)/wardwatch report --db $(DB) --html $(REPORT)

test:
	@scripts/bootstrap.sh test
	$(BIN)/ruff check src tests bench samples
	$(BIN)/ruff format --check src tests bench samples
	$(BIN)/mypy
	scripts/run-tests.sh $(PYTEST_ARGS)

lint:
	$(BIN)/ruff check src tests bench samples && $(BIN)/ruff format --check src tests bench samples

typecheck:
	$(BIN)/mypy

bench:
	@scripts/bootstrap.sh test
	$(BIN)/python bench/run.py

sample:
	$(BIN)/python samples/generate_ward.py $(SAMPLE)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis $(DB) $(DB)-wal $(DB)-shm $(REPORT)
