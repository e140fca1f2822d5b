# oncelog's one task runner. `make` lists the targets; CI runs `make test`
# (through .ci/run). Needs only Rust (cargo, with clippy and rustfmt), a C
# compiler, make and Python 3; `make venv` installs the Python test packages.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV ?= .venv
PYTHON := $(VENV)/bin/python
EXAMPLE_DIR := target/example-store

.PHONY: help
help: ## list the targets
	@echo "usage: make <target>"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: test
test: venv ## run every check and test: fmt, clippy, cargo test, pytest (what CI runs)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo test --workspace --locked
	bash scripts/pytest.sh $(PYTHON) tests/python

.PHONY: check
check: test ## same as test

.PHONY: venv
venv: ## create or refresh .venv with the pinned test packages (scripts/requirements-test.txt)
	@bash scripts/venv.sh $(VENV)

.PHONY: example
example: ## write a small Kafka-format store with core/examples/kafka_fixture.rs and list it
	rm -rf $(EXAMPLE_DIR)
	cargo run --locked --quiet -p oncelog --example kafka_fixture -- $(EXAMPLE_DIR) $(EXAMPLE_DIR)/manifest.json
	ls -C $(EXAMPLE_DIR)/interop-0

.PHONY: bench
bench: ## run the benchmarks (release build)
	cargo run --release -p oncelog-bench --locked

.PHONY: fmt
fmt: ## format the Rust code
	cargo fmt --all

.PHONY: clean
clean: ## remove build output and Python caches (keeps .venv)
	cargo clean
	find tests -name __pycache__ -type d -prune -exec rm -rf {} +

.PHONY: distclean
distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
