#!/usr/bin/env bash
# make bench-python: the oncelog Python package (release wheel, installed into the
# venv by scripts/python-build.sh) against Python's built-in sqlite3 in the same
# run: produce one by one, produce_batch, consume and iteration over 1,000,000
# records. Extra arguments go to bindings/python/bench/bench.py (--records N,
# --reps R, --json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="${VENV:-.venv}"
bash scripts/python-build.sh "$venv" >/dev/null
echo "bench-python: oncelog at commit $(git rev-parse --short HEAD), $(nproc) cores"
"$venv/bin/python" bindings/python/bench/bench.py "$@"
