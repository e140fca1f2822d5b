#!/usr/bin/env bash
# Builds and runs the fuzz targets of fuzz/ with libFuzzer, using the machine's stable
# toolchain: the compiler flags are the ones `cargo fuzz build` passes (coverage
# instrumentation, AddressSanitizer, debug assertions), and RUSTC_BOOTSTRAP=1 allows
# the one unstable flag, -Zsanitizer. No tool to install: `cargo fuzz` itself works
# on the same layout for those who have it.
#
#   scripts/fuzz.sh build                     build every target
#   scripts/fuzz.sh run SECONDS [TARGET...]   run each target for SECONDS (all by default)
#   scripts/fuzz.sh cmin [TARGET...]          minimise fuzz/corpus/<target> (libFuzzer merge)
#
# New inputs go to fuzz/target/corpus/<target> (not committed); the committed corpus
# fuzz/corpus/<target> and the crash inputs fuzz/regressions/<target> seed each run.
# A crash is saved under fuzz/artifacts/<target>/ and the run fails.
# FUZZ_JOBS=N runs N fuzzing processes per target; FUZZ_ARGS adds libFuzzer flags.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGETS=(batch_decode open_store api_sequence)
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
BIN=fuzz/target/$TRIPLE/release

build() {
    local flags=(
        -Cpasses=sancov-module
        -Cllvm-args=-sanitizer-coverage-level=4
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
        -Cllvm-args=-sanitizer-coverage-pc-table
        -Cllvm-args=-sanitizer-coverage-trace-compares
        -Cllvm-args=-sanitizer-coverage-stack-depth
        --cfg fuzzing
        -Zsanitizer=address
        -Cdebug-assertions
        -Ccodegen-units="${FUZZ_CODEGEN_UNITS:-16}"
    )
    # --target keeps the flags away from build scripts and proc macros.
    RUSTC_BOOTSTRAP=1 RUSTFLAGS="${flags[*]}" cargo build --locked --release \
        --manifest-path fuzz/Cargo.toml --target "$TRIPLE" --bins
}

# Prints "<target>: <executions> executions in <s> s, <cov> coverage points, ..."
summary() {
    local target=$1 log=$2
    local execs cov ft secs corpus
    # Each figure is optional: a run that crashed early may not print it.
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    # -fork mode reports "#<executions>: cov: ... corp: <n> ... time: <s>s" instead.
    [ -n "$execs" ] || execs=$( (grep -o '^#[0-9]*' "$log" || true) | tail -1 | tr -d '#')
    [ -n "$secs" ] || secs=$( (grep -o 'time: [0-9]*s' "$log" || true) | tail -1 | tr -dc '0-9')
    cov=$( (grep -o 'cov: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)
    ft=$( (grep -o 'ft: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)
    corpus=$( (grep -o 'corp: [0-9]*[/0-9a-zA-Z]*' "$log" || true) | tail -1 | cut -d' ' -f2)
    echo "$target: ${execs:-?} executions in ${secs:-?} s, coverage ${cov:-?} points" \
        "(${ft:-?} features), corpus ${corpus:-?}"
}

run() {
    local seconds=$1
    shift
    local targets=("$@")
    [ ${#targets[@]} -gt 0 ] || targets=("${TARGETS[@]}")
    build
    local failed=0
    for t in "${targets[@]}"; do
        local work=fuzz/target/corpus/$t log=fuzz/target/logs/$t.log
        mkdir -p "$work" "fuzz/artifacts/$t" fuzz/target/logs "fuzz/corpus/$t" "fuzz/regressions/$t"
        echo "== $t: ${seconds} s"
        local args=(
            -max_total_time="$seconds"
            -timeout=20
            -rss_limit_mb=2048
            -malloc_limit_mb=256
            -print_final_stats=1
            -artifact_prefix="fuzz/artifacts/$t/"
        )
        case $t in
        # Structured inputs (a list of edits or calls) need room from the start:
        # libFuzzer otherwise grows the length limit slowly from a few bytes.
        open_store | api_sequence) args+=(-max_len=2048 -len_control=0) ;;
        esac
        if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then
            args+=(-fork="$FUZZ_JOBS" -ignore_crashes=0)
        fi
        # shellcheck disable=SC2086
        if ! "$BIN/$t" "${args[@]}" ${FUZZ_ARGS:-} "$work" "fuzz/corpus/$t" \
            "fuzz/regressions/$t" >"$log" 2>&1; then
            failed=1
            tail -40 "$log"
            echo "$t: FAILED; the input is in fuzz/artifacts/$t/ (log: $log)"
        fi
        summary "$t" "$log"
    done
    return $failed
}

cmin() {
    local targets=("$@")
    [ ${#targets[@]} -gt 0 ] || targets=("${TARGETS[@]}")
    build
    for t in "${targets[@]}"; do
        local new=fuzz/target/cmin/$t
        rm -rf "$new"
        mkdir -p "$new" "fuzz/target/corpus/$t" "fuzz/corpus/$t"
        "$BIN/$t" -merge=1 -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=256 "$new" \
            "fuzz/corpus/$t" "fuzz/target/corpus/$t" >"fuzz/target/cmin-$t.log" 2>&1
        rm -rf "fuzz/corpus/$t"
        mv "$new" "fuzz/corpus/$t"
        echo "$t: $(find "fuzz/corpus/$t" -type f | wc -l) inputs," \
            "$(find "fuzz/corpus/$t" -type f -exec cat {} + | wc -c) bytes"
    done
}

case "${1:-}" in
build) build ;;
run) shift; run "$@" ;;
cmin) shift; cmin "$@" ;;
*) sed -n '2,17p' "$0"; exit 2 ;;
esac
