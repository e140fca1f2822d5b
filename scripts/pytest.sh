#!/usr/bin/env bash
# Runs pytest with the venv's python and makes "no tests collected" a failure.
#
#   scripts/pytest.sh PYTHON [PYTEST ARGS...]
#
# pytest exits 5 when it collects no test. tests/python always has tests, so that
# means they were lost (a bad path, a renamed file, a collection filter): fail with
# a clear message rather than let CI pass having run nothing. Every other exit code
# is pytest's own.
set -uo pipefail

python="${1:?usage: scripts/pytest.sh PYTHON [PYTEST ARGS...]}"
shift
if [[ ! -x "$python" ]]; then
    echo "error: $python not found; run 'make venv' first" >&2
    exit 1
fi
"$python" -m pytest "$@"
status=$?
if [[ $status == 5 ]]; then
    echo "error: pytest collected no tests from: $* (expected at least one test)" >&2
    exit 1
fi
exit $status
