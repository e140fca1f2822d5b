#!/usr/bin/env bash
# Runs examples/node/example.js against the installed library: Node.js embedding
# liboncelog through koffi, without oncelog.h. Skipped, saying so, when node is
# not installed; koffi comes from the npm registry through package-lock.json
# (npm ci), into examples/node/node_modules (not committed).
#
#   scripts/node-example.sh PREFIX
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
prefix="${1:?usage: scripts/node-example.sh PREFIX}"

if ! command -v node >/dev/null 2>&1; then
    echo "node-example: SKIPPED: node is not installed (install Node.js 18 or newer to run it)"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "error: node is installed but npm is not; install npm to run the Node.js example" >&2
    exit 1
fi

dir=examples/node
stamp="$dir/node_modules/.oncelog-lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "node-example: npm ci (koffi) in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
fi

store="$(mktemp -d)"
trap 'rm -rf "$store"' EXIT
echo "node-example: $(node --version)"
ONCELOG_LIB="$prefix/lib/liboncelog.so.0" node "$dir/example.js" "$store" 200
