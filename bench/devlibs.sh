#!/usr/bin/env bash
# Copies the shared libraries the built binaries need (beyond glibc) into .devlibs/, so that
# they run on the device machine, which has none of the Debian packages (glibc, libstdc++ and
# libgcc_s are its own). Run after `make`.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${BUILD:-build}"
rm -rf .devlibs && mkdir -p .devlibs
for b in "$BUILD"/bin/* "$BUILD"/tests/unit "$BUILD"/bench/*; do
  [ -x "$b" ] || continue
  ldd "$b" | awk '$3 ~ /^\// {print $3}'
done | sort -u | grep -vE '/(libc|libm|libpthread|libdl|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' | while read -r lib; do
  cp -L "$lib" .devlibs/
done
ls -la .devlibs
