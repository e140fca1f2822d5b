#!/usr/bin/env bash
# Builds the oncelog Python package (bindings/python: the PyO3 crate oncelog-python
# and python/oncelog) as an abi3 wheel with maturin, release profile, and installs
# it into the virtualenv (what `make python` and `make test` run):
#
#   scripts/python-build.sh [VENV_DIR]      (default .venv)
#
# The wheel is written to target/wheels/. Installing the wheel, not an editable
# build, tests what a user gets from `pip install ./bindings/python`. Cargo's
# incremental build makes a second run take seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="${1:-.venv}"
bash scripts/venv.sh "$venv"

out=target/wheels
rm -f "$out"/oncelog-*.whl
echo "python: building the oncelog wheel (maturin, release)"
"$venv/bin/maturin" build --release --locked --quiet -m bindings/python/Cargo.toml \
    --interpreter "$venv/bin/python" -o "$out"
wheel=("$out"/oncelog-*.whl)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall \
    --no-deps "${wheel[0]}"
echo "python: installed $(basename "${wheel[0]}") into $venv"
