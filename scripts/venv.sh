#!/usr/bin/env bash
# Creates or refreshes the Python virtualenv used by the tests (.venv by default).
#
#   scripts/venv.sh [VENV_DIR]
#
# Idempotent and fast when nothing changed: a stamp file inside the venv holds the
# sha256 of scripts/requirements-test.txt, and the venv is left alone while the
# stamp matches and its python still runs. If `python3 -m venv` fails because
# Debian's python3-venv is missing, it is installed with apt-get when running as
# root (as CI does on a fresh machine); otherwise the script says what to install.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="${1:-.venv}"
reqs="scripts/requirements-test.txt"
stamp="$venv/.oncelog-requirements.sha256"
python="${PYTHON3:-python3}"

want="$(sha256sum "$reqs" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$venv/bin/python" -c '' 2>/dev/null; then
    exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
    echo "error: $python not found; install Python 3 (3.10 or newer) and rerun 'make venv'" >&2
    exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
make_venv() {
    "$python" -m venv "$venv" >"$log" 2>&1
}

# A venv whose python no longer runs (python upgraded or moved) is rebuilt whole.
if [[ -d "$venv" ]] && ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv"
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "venv: creating $venv with $("$python" --version 2>&1)"
    if ! make_venv; then
        rm -rf "$venv"
        if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
            echo "venv: '$python -m venv' failed; installing python3-venv with apt-get"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq python3-venv >/dev/null
            if ! make_venv; then
                cat "$log" >&2
                echo "error: '$python -m venv $venv' still fails after installing python3-venv (see above)" >&2
                exit 1
            fi
        else
            echo "error: '$python -m venv' failed; install your distribution's venv package (Debian/Ubuntu: sudo apt-get install python3-venv) and rerun 'make venv'" >&2
            exit 1
        fi
    fi
fi

pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
echo "venv: installing $reqs into $venv"
"${pip[@]}" install --upgrade pip
"${pip[@]}" install -r "$reqs"
echo "$want" >"$stamp"
echo "venv: ready ($("$venv/bin/python" -m pytest --version 2>&1), kafka-python $("$venv/bin/python" -c 'import kafka; print(kafka.__version__)'))"
