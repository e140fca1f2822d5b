#!/usr/bin/env bash
# Checks the installed C library against the committed ABI baseline in abi/:
#
#   scripts/abi-check.sh PREFIX            check (what make c-test runs)
#   scripts/abi-check.sh PREFIX --update   rewrite the baseline (make abi-baseline)
#
# 1. The library exports exactly the functions the header declares, no more.
# 2. abi/liboncelog.abi: the library's SONAME and exported symbols (abidw of the
#    library without its debug information). abidiff fails on a removed symbol or
#    a changed SONAME.
# 3. abi/oncelog-h.abi: the types of every declared function, as a C compiler sees
#    them in the header: a probe object holds one typed pointer per function, and
#    abidw reads its debug information (the structs' layouts come with it).
#    abidiff fails on any change to an existing function's type or to a struct it
#    reaches.
# 4. abi/constants.txt: the value of every ONCELOG_* constant; a changed or removed
#    value fails.
# Additions pass (abidiff --no-added-syms): a minor release may add functions,
# codes and constants (docs/ABI.md). abidiff comes from Debian's abigail-tools,
# installed with apt-get when missing and running as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

prefix="${1:?usage: scripts/abi-check.sh PREFIX [--update]}"
update=0
[[ "${2:-}" == "--update" ]] && update=1
header="$prefix/include/oncelog.h"
lib="$(readlink -f "$prefix/lib/liboncelog.so")"

if ! command -v abidiff >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "abi: installing abigail-tools with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq abigail-tools >/dev/null
    else
        echo "error: abidiff not found; install abigail-tools (Debian/Ubuntu: sudo apt-get install abigail-tools)" >&2
        exit 1
    fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. Exported functions == declared functions.
grep -oE '^[A-Za-z_][A-Za-z0-9_ *]*[ *]oncelog_[a-z0-9_]+\(' "$header" |
    grep -oE 'oncelog_[a-z0-9_]+\($' | tr -d '(' | sort -u >"$work/declared"
nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^$' | sort -u >"$work/exported"
if ! diff -u "$work/declared" "$work/exported" >"$work/symdiff"; then
    echo "abi: the library's exported symbols differ from the header's functions (-header +library):" >&2
    cat "$work/symdiff" >&2
    exit 1
fi
echo "abi: the library exports exactly the $(wc -l <"$work/declared") functions of the header"

abidw_flags=(--no-corpus-path --no-comp-dir-path --no-show-locs --no-elf-needed
    --drop-undefined-syms --type-id-style hash)

# 2. SONAME and symbols.
cp "$lib" "$work/liboncelog.so"
strip --strip-debug "$work/liboncelog.so"
abidw "${abidw_flags[@]}" "$work/liboncelog.so" >"$work/liboncelog.abi"

# 3. Types of the declared functions, from the header.
{
    echo '#include "oncelog.h"'
    while read -r f; do
        echo "__typeof__(&$f) const abi_$f = &$f;"
    done <"$work/declared"
} >"$work/abi_probe.c"
cp "$header" "$work/oncelog.h"
(cd "$work" && cc -std=gnu11 -g -O0 -fPIC -shared -o abi_probe.so abi_probe.c)
abidw "${abidw_flags[@]}" "$work/abi_probe.so" >"$work/oncelog-h.abi"

# 4. Constants.
sed -n 's/^#define \(ONCELOG_[A-Z0-9_]*\) \(.*\)$/\1 \2/p' "$header" |
    grep -v '^ONCELOG_VERSION_' | sort >"$work/constants.txt"

if [[ $update == 1 ]]; then
    cp "$work/liboncelog.abi" "$work/oncelog-h.abi" "$work/constants.txt" abi/
    echo "abi: baseline written to abi/ (commit it)"
    exit 0
fi

status=0
for abi in liboncelog.abi oncelog-h.abi; do
    set +e
    abidiff --no-added-syms "abi/$abi" "$work/$abi" >"$work/$abi.diff" 2>&1
    rc=$?
    set -e
    if [[ $rc != 0 ]]; then
        echo "abi: abidiff abi/$abi (exit $rc): an incompatible change" >&2
        cat "$work/$abi.diff" >&2
        status=1
    else
        echo "abi: abi/$abi: compatible"
    fi
done
missing="$(comm -23 abi/constants.txt "$work/constants.txt")"
if [[ -n "$missing" ]]; then
    echo "abi: constants changed or removed (baseline values):" >&2
    echo "$missing" >&2
    status=1
else
    echo "abi: abi/constants.txt: every constant keeps its value"
fi
if [[ $status != 0 ]]; then
    echo "abi: see docs/ABI.md; a deliberate break needs a new major version and 'make abi-baseline'" >&2
fi
exit $status
