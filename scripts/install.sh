#!/usr/bin/env bash
# Builds the C library (crate oncelog-ffi) and installs it where a C user expects it:
#
#   scripts/install.sh [--debug] PREFIX
#
#   $LIBDIR (default PREFIX/lib)   liboncelog.so.X.Y.Z, the SONAME link liboncelog.so.X,
#                                  the link-time link liboncelog.so, and liboncelog.a
#   PREFIX/include                 oncelog.h
#   $LIBDIR/pkgconfig              oncelog.pc
#
# DESTDIR is prepended to every path written (for packaging), not to the paths
# recorded in oncelog.pc. --debug installs the debug build (what the tests use);
# the default is the release build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

profile=release
if [[ "${1:-}" == "--debug" ]]; then
    profile=debug
    shift
fi
prefix="${1:?usage: scripts/install.sh [--debug] PREFIX}"
case "$prefix" in
    /*) ;;
    *) prefix="$PWD/$prefix" ;;
esac
libdir="${LIBDIR:-$prefix/lib}"
includedir="$prefix/include"
dest="${DESTDIR:-}"

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
major="${version%%.*}"
[[ -n "$version" ]] || { echo "error: no version in Cargo.toml" >&2; exit 1; }

cargo_args=(build --locked --quiet -p oncelog-ffi)
[[ "$profile" == release ]] && cargo_args+=(--release)
cargo "${cargo_args[@]}"
built="${CARGO_TARGET_DIR:-target}/$profile"

install -d "$dest$libdir/pkgconfig" "$dest$includedir"
install -m 0755 "$built/liboncelog_ffi.so" "$dest$libdir/liboncelog.so.$version"
ln -sfn "liboncelog.so.$version" "$dest$libdir/liboncelog.so.$major"
ln -sfn "liboncelog.so.$major" "$dest$libdir/liboncelog.so"
install -m 0644 "$built/liboncelog_ffi.a" "$dest$libdir/liboncelog.a"
install -m 0644 include/oncelog.h "$dest$includedir/oncelog.h"
sed -e "s|@PREFIX@|$prefix|" -e "s|@LIBDIR@|$libdir|" -e "s|@INCLUDEDIR@|$includedir|" \
    -e "s|@VERSION@|$version|" ffi/oncelog.pc.in >"$dest$libdir/pkgconfig/oncelog.pc"
echo "installed liboncelog $version ($profile) into $dest$prefix"
