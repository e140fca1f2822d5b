#!/usr/bin/env bash
# make bench-c: the batched-append and read-all workloads through the C API (a C
# program) next to the same workloads through the Rust API, in one run, with the
# ratio. Builds the release library, installs it into target/bench-install,
# compiles ffi/bench/bench_c.c against it with -O2, and runs the driver
# ffi/examples/bench_c_vs_rust.rs. Extra arguments go to the driver
# (--records N, --batch B, --reps R).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
prefix="$PWD/target/bench-install"

bash scripts/install.sh "$prefix" >/dev/null
mkdir -p target/c-build
cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -I"$prefix/include" -o target/c-build/bench_c \
    ffi/bench/bench_c.c -L"$prefix/lib" -loncelog -Wl,-rpath,"$prefix/lib"
echo "bench-c: core at commit $(git rev-parse --short HEAD), $(nproc) cores"
cargo run --release --locked --quiet -p oncelog-ffi --example bench_c_vs_rust -- \
    target/c-build/bench_c "$@"
