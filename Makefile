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
PREFIX ?= /usr/local

.PHONY: help
help: ## list the targets
	@echo "usage: make <target>"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: test
test: venv python ## run every check and test: fmt, clippy, cargo test, pytest, the C side, fuzz smoke (what CI runs)
	cargo fmt --all -- --check
	cargo fmt --manifest-path fuzz/Cargo.toml -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo clippy --manifest-path fuzz/Cargo.toml --locked -- -D warnings
	cargo test --workspace --locked
	bash scripts/pytest.sh $(PYTHON) tests/python
	$(MAKE) c-test
	$(MAKE) fuzz-smoke

FUZZ_SECONDS ?= 1800
FUZZ_SMOKE_SECONDS ?= 10

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZ_SECONDS (default 1800; FUZZ_JOBS=2 for two processes each) and print executions and coverage
	bash scripts/fuzz.sh run $(FUZZ_SECONDS)

.PHONY: fuzz-cmin
fuzz-cmin: ## minimise the committed fuzz corpus with what the runs found (fuzz/corpus/<target>)
	bash scripts/fuzz.sh cmin

.PHONY: fuzz-smoke
fuzz-smoke: ## build the fuzz targets and run each for FUZZ_SMOKE_SECONDS (default 10)
	bash scripts/fuzz.sh run $(FUZZ_SMOKE_SECONDS)

.PHONY: python
python: venv ## build the oncelog Python package (bindings/python) and install it into .venv
	bash scripts/python-build.sh $(VENV)

.PHONY: c-test
c-test: ## the C library: install into target/c-install, header, examples, C tests under valgrind, ABI, Node.js
	bash scripts/c-test.sh

.PHONY: header
header: ## regenerate include/oncelog.h from ffi/ with cbindgen
	ONCELOG_WRITE_HEADER=1 cargo test --locked --quiet -p oncelog-ffi --test header

.PHONY: install
install: ## install liboncelog, oncelog.h and oncelog.pc under PREFIX (default /usr/local)
	bash scripts/install.sh $(PREFIX)

.PHONY: abi-baseline
abi-baseline: ## rewrite abi/ from the current library (a deliberate ABI change; see docs/ABI.md)
	bash scripts/install.sh --debug target/c-install
	bash scripts/abi-check.sh target/c-install --update

.PHONY: check
check: test ## same as test

.PHONY: venv
venv: ## create or refresh .venv with the pinned test packages (scripts/requirements-test.txt)
	@bash scripts/venv.sh $(VENV)

.PHONY: demo
demo: ## the main job: oncelog demo (the three delivery guarantees under real SIGKILLs)
	cargo build --release --locked -p oncelog-cli
	./target/release/oncelog demo $(DEMO_ARGS)

.PHONY: example
example: ## write a small Kafka-format store with core/examples/kafka_fixture.rs and list it
	rm -rf $(EXAMPLE_DIR)
	cargo run --locked --quiet -p oncelog --example kafka_fixture -- $(EXAMPLE_DIR) $(EXAMPLE_DIR)/manifest.json
	ls -C $(EXAMPLE_DIR)/interop-0

.PHONY: bench
bench: ## run the benchmarks (release build)
	cargo run --release -p oncelog-bench --locked

.PHONY: bench-peers
bench-peers: ## oncelog next to SQLite (WAL) and LMDB on the same records: oncelog bench (release build)
	cargo run --release -p oncelog-cli --locked -- bench

.PHONY: bench-c
bench-c: ## the batched-append and read-all workloads through the C API next to the Rust API
	bash scripts/bench-c.sh

.PHONY: bench-python
bench-python: venv ## the Python package against Python's sqlite3: produce, produce_batch, consume (1M records)
	VENV=$(VENV) bash scripts/bench-python.sh

.PHONY: fmt
fmt: ## format the Rust code
	cargo fmt --all
	cargo fmt --manifest-path fuzz/Cargo.toml

.PHONY: clean
clean: ## remove build output and Python caches (keeps .venv)
	cargo clean
	find tests -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf examples/node/node_modules

.PHONY: distclean
distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
