#!/usr/bin/env bash
# Installs what is missing (Debian packages, npm packages from package-lock.json) and builds the native
# and WebAssembly targets. Idempotent: a second run asks dpkg, skips npm when node_modules matches the
# lock file, and lets Ninja rebuild only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS="g++ make cmake ninja-build pkg-config libssl-dev libboost1.81-dev libboost-json1.81-dev libgtest-dev libsqlite3-dev
      emscripten node-acorn chromium clang-14 libclang-rt-14-dev libhiredis-dev liburing-dev redis-server redis-tools
      nginx-light openssl libnss3-tools prometheus libsystemd-dev systemd man-db dpkg-dev python3"
sudo_cmd=""
[ "$(id -u)" = 0 ] || sudo_cmd="sudo"
missing=$(for p in $PKGS; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"
done)
if [ -n "$missing" ]; then
  echo "setup: installing $(echo $missing)"
  $sudo_cmd apt-get update -q
  # nginx-light (the cluster and proxy tests' nginx), redis-server and prometheus (only its promtool
  # is used, by tests/ops/promtool.test.mjs; ~19 MB, about 20 s) would start system services on
  # install; the tests start their own on free ports (DECISIONS.md §23), so keep these from starting.
  # An existing policy-rc.d (container images often have one) is left as it is.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    echo 'exit 101' | $sudo_cmd tee /usr/sbin/policy-rc.d >/dev/null
    $sudo_cmd chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  status=0
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends $missing || status=$?
  [ -z "$own_policy" ] || $sudo_cmd rm -f /usr/sbin/policy-rc.d
  [ "$status" = 0 ] || exit "$status"
fi

# npm ci only when the lock file changed since the last install.
if [ -f package-lock.json ]; then
  stamp=node_modules/.pushwire-lock.sha
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    npm ci --no-audit --no-fund
    echo "$want" > "$stamp"
  fi
fi

export NODE_PATH=/usr/share/nodejs
jobs=$(nproc)

# Native Release build: protocol core, server, tests.
[ -f build/build.ninja ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"

# WebAssembly build: the shipped client core and the core's test suite under Node.
[ -f build-wasm/build.ninja ] || emcmake cmake -S . -B build-wasm -G Ninja -DCMAKE_BUILD_TYPE=MinSizeRel \
  -DCMAKE_CROSSCOMPILING_EMULATOR=/usr/bin/node
cmake --build build-wasm -j"$jobs"
# The client package ships the wasm build next to its JS driver.
mkdir -p client-wasm/dist
for f in pushwire_core.mjs pushwire_core.wasm pushwire_core_wasm2js.mjs; do
  [ -f "build-wasm/$f" ] || continue
  cmp -s "build-wasm/$f" "client-wasm/dist/$f" 2>/dev/null || cp "build-wasm/$f" "client-wasm/dist/$f"
done
# The JS driver bundles (ESM, <script> global, Node entry) around the wasm core.
if [ -f package.json ] && [ -f client-wasm/build.mjs ]; then
  npm run --silent build
fi
