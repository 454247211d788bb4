# The quick start's two commands are `make review` and `make test`; each installs what it needs first.
PRESET ?= cpu
SEEDS ?=
BIN := .venv/bin

.PHONY: install browser review test test-slow bench lint clean

install:
	bash scripts/install.sh

browser:  # headless Chromium for the review page's browser test (where apt-get is available)
	bash scripts/install-browser.sh

review: install
	$(BIN)/dlhistory review --preset $(PRESET) $(if $(SEEDS),--seeds $(SEEDS))

test: install browser  # one worker per core, each test file on one worker (its fixtures built once)
	$(BIN)/python -m pytest -n auto --dist loadfile

test-slow: install
	$(BIN)/python -m pytest -m slow -v

bench: install
	$(BIN)/python benchmarks/alexnet_precision.py

lint: install
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf .venv runs .pytest_cache .ruff_cache
