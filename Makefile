# The quick start's two commands are `make review` and `make test`; each installs what it needs first.
PRESET ?= cpu
SEEDS ?=
BIN := .venv/bin

.PHONY: install review test test-slow bench lint clean

install:
	bash scripts/install.sh

review: install
	$(BIN)/dlhistory review --preset $(PRESET) $(if $(SEEDS),--seeds $(SEEDS))

test: install
	$(BIN)/python -m pytest

test-slow: install
	$(BIN)/python -m pytest -m slow -v

bench: install
	$(BIN)/python benchmarks/alexnet_precision.py

lint: install
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf .venv runs .pytest_cache .ruff_cache
