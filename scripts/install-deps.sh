#!/usr/bin/env bash
# Installs the Debian packages the build needs (no-op when they are already there).
# Called by `make` when a dependency is missing and by .ci/run. Needs root (or sudo).
set -euo pipefail
PKGS="libjansson-dev libxxhash-dev libopenblas-dev liblapacke-dev libyaml-dev pkg-config clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing$missing" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
