#!/usr/bin/env bash
# Sets up, builds and runs every test suite: GoogleTest through CTest (native, sanitizers, wasm under
# Node), node --test, and the browser tests in Chromium. Exits non-zero on the first failing suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

jobs=$(nproc)
echo "== native tests (CTest)"
ctest --test-dir build -j"$jobs" --output-on-failure --timeout 120

echo "== sanitizer build and tests (ASan + UBSan)"
[ -f build-asan/build.ninja ] || cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPUSHWIRE_SANITIZE=ON
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir build-asan -j"$jobs" --output-on-failure --timeout 300

echo "== differential fuzz run: envelope scanner vs Boost.JSON (libFuzzer, fixed seed)"
bash scripts/fuzz.sh

echo "== wasm core tests (CTest under Node)"
ctest --test-dir build-wasm -j"$jobs" --output-on-failure --timeout 120

if compgen -G "tests/js/*.test.mjs" >/dev/null; then
  echo "== JS tests (node --test)"
  PUSHWIRE_SERVER="$PWD/build/server/pushwire-server" node --test --test-concurrency=1 tests/js/
fi
if compgen -G "tests/cluster/*.test.mjs" >/dev/null; then
  # Real redis-server, several nodes on the Redis engine and nginx as a balancer (tests/cluster/cluster.mjs).
  echo "== cluster tests (Redis engine, several nodes, nginx)"
  PUSHWIRE_SERVER="$PWD/build/server/pushwire-server" node --test --test-concurrency=1 tests/cluster/
fi
if compgen -G "tests/browser/*.test.mjs" >/dev/null; then
  echo "== browser tests (Chromium)"
  PUSHWIRE_SERVER="$PWD/build/server/pushwire-server" node --test --test-concurrency=1 tests/browser/
fi
echo "== all tests passed"
