#!/usr/bin/env bash
# The C side of the tests (make c-test): builds the C library and installs it into
# target/c-install, checks the committed header is fresh, compiles the examples,
# the C test suite and README's C snippet against the INSTALLED header and library
# with strict flags, checks the header as C++, links a program statically, runs
# everything under valgrind memcheck, runs oncelog demo with C children, checks the
# ABI against abi/, and runs the Node.js example (skipped, saying so, when node is
# not installed).
#
#   scripts/c-test.sh
#
# valgrind is installed with apt-get when missing and running as root (as CI does).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
prefix="$root/target/c-install"
build="$root/target/c-build"
cflags=(-std=c11 -Wall -Wextra -Werror -pedantic -g)
valgrind_flags=(-q --leak-check=full --show-possibly-lost=no
    --errors-for-leak-kinds=definite,indirect --error-exitcode=1)

step() { echo "c-test: $*"; }

need() { # COMMAND DEBIAN_PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        step "installing $2 with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "$2" >/dev/null
    else
        echo "error: $1 not found; install $2 (Debian/Ubuntu: sudo apt-get install $2)" >&2
        exit 1
    fi
}

need valgrind valgrind
need pkg-config pkg-config

step "building and installing liboncelog into target/c-install"
rm -rf "$prefix" "$build"
bash scripts/install.sh --debug "$prefix"
mkdir -p "$build"

step "the committed header is what cbindgen generates"
cargo test --locked --quiet -p oncelog-ffi --test header

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
read -r -a pc_cflags <<<"$(pkg-config --cflags oncelog)"
read -r -a pc_libs <<<"$(pkg-config --libs oncelog)"
compile() { # OUTPUT SOURCES...
    local out="$1"
    shift
    cc "${cflags[@]}" "${pc_cflags[@]}" -o "$build/$out" "$@" -pthread "${pc_libs[@]}" \
        -Wl,-rpath,"$prefix/lib"
}

step "compiling the examples, the C tests and README's snippet (${cflags[*]})"
compile producer examples/c/producer.c
compile consumer examples/c/consumer.c
compile exactly_once examples/c/exactly_once.c
compile demo_child examples/c/demo_child.c
compile oncelog_c_tests ffi/tests/c/*.c
awk '/^## Using oncelog from C/ {s=1} s && /^```c$/ {c=1; next} c && /^```$/ {exit} c {print}' \
    README.md >"$build/readme.c"
[[ -s "$build/readme.c" ]] || { echo "error: no C snippet in README.md" >&2; exit 1; }
compile readme "$build/readme.c"

step "the header compiles as C++ (included twice)"
printf '#include <oncelog.h>\n#include <oncelog.h>\nint main() { return oncelog_version() == nullptr; }\n' |
    g++ -std=c++11 -Wall -Wextra -Werror -pedantic -fsyntax-only "${pc_cflags[@]}" -x c++ -

step "a program linked with the static library"
read -r -a static_libs <<<"$(pkg-config --static --libs oncelog)"
static_libs=("${static_libs[@]/#-loncelog/-l:liboncelog.a}")
cc "${cflags[@]}" "${pc_cflags[@]}" -o "$build/producer-static" examples/c/producer.c "${static_libs[@]}"
if readelf -d "$build/producer-static" | grep -q 'liboncelog'; then
    echo "error: producer-static still needs the shared library" >&2
    exit 1
fi

run() { # NAME ARGS... : under valgrind, output kept in $build/NAME.out
    local name="$1"
    shift
    if ! valgrind "${valgrind_flags[@]}" "$@" >"$build/$name.out" 2>"$build/$name.err"; then
        cat "$build/$name.out" "$build/$name.err" >&2
        echo "error: $name failed (valgrind memcheck or its own checks)" >&2
        exit 1
    fi
}
expect() { # NAME TEXT
    grep -qx -- "$2" "$build/$1.out" || {
        cat "$build/$1.out" >&2
        echo "error: $1 did not print \"$2\"" >&2
        exit 1
    }
}

step "the C test suite under valgrind"
run c-tests "$build/oncelog_c_tests"
cat "$build/c-tests.out"

step "the examples under valgrind"
store="$(mktemp -d)"
trap 'rm -rf "$store"' EXIT
run producer "$build/producer" "$store" 20
expect producer "produced 20 records"
run consumer "$build/consumer" "$store" readers
expect consumer "consumed 20 messages"
run consumer-again "$build/consumer" "$store" readers
expect consumer-again "consumed 0 messages"
run exactly-once "$build/exactly_once" "$store"
expect exactly-once "transformed 20 messages"
run exactly-once-again "$build/exactly_once" "$store"
expect exactly-once-again "transformed 0 messages"
"$build/producer-static" "$store" 3 >"$build/producer-static.out"
expect producer-static "produced 3 records"
run readme "$build/readme" "$store/readme"
expect readme "offset 0: hi from C"
echo "c-test: examples: producer, consumer (twice), exactly_once (twice), static producer, README snippet: ok"

# With the Python package in .venv (make test builds it before this script), the
# children take turns in C, Python and Rust.
langs=c,rust
if .venv/bin/python -c 'import oncelog' 2>/dev/null; then
    langs=c,python,rust
fi
step "oncelog demo with children in $langs in turn (each restart of a killed child in the next)"
cargo build --locked --quiet -p oncelog-cli
ONCELOG_DEMO_C="$build/demo_child" target/debug/oncelog demo --lang "$langs" --kills 12 \
    --records 3000 --seed 11 | tee "$build/demo.out"

step "ABI against abi/"
bash scripts/abi-check.sh "$prefix"

step "Node.js example (koffi)"
bash scripts/node-example.sh "$prefix"
