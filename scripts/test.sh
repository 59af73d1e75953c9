#!/usr/bin/env bash
# Sets up, builds and runs every test suite: GoogleTest through CTest (native, ASan + UBSan and
# ThreadSanitizer builds, wasm under Node), the libFuzzer smoke, node --test, and the browser tests
# in Chromium. Exits non-zero on the first failing suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

jobs=$(nproc)
echo "== native tests (CTest)"
ctest --test-dir build -j"$jobs" --output-on-failure --timeout 120

echo "== sanitizer builds (ASan + UBSan; ThreadSanitizer), each in its own reused directory"
[ -f build-asan/build.ninja ] || cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPUSHWIRE_SANITIZE=ON
[ -f build-tsan/build.ninja ] || cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPUSHWIRE_TSAN=ON
cmake --build build-asan -j"$jobs"
cmake --build build-tsan -j"$jobs"

# The two suites are independent: they run side by side, each into its own log, printed in full
# when it fails (a summary line otherwise). No report of either sanitizer is allowed.
echo "== sanitizer tests: ASan + UBSan and TSan in parallel (logs: build-asan/ctest.log, build-tsan/ctest.log)"
san_start=$SECONDS
asan_env=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)
tsan_env=(TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1)
( env "${asan_env[@]}" ctest --test-dir build-asan -LE bench -j"$jobs" --output-on-failure --timeout 300 \
    >build-asan/ctest.log 2>&1 ) &
asan_pid=$!
( env "${tsan_env[@]}" ctest --test-dir build-tsan -LE bench -j"$jobs" --output-on-failure --timeout 300 \
    >build-tsan/ctest.log 2>&1 ) &
tsan_pid=$!
asan_rc=0; tsan_rc=0
wait $asan_pid || asan_rc=$?
wait $tsan_pid || tsan_rc=$?
for s in asan tsan; do
  rc_var=${s}_rc
  if [ "${!rc_var}" != 0 ]; then
    cat "build-$s/ctest.log"
    echo "== $s tests FAILED"
  else
    echo "   $s: $(grep -E 'tests passed' "build-$s/ctest.log")"
  fi
done
echo "   sanitizer suites took $((SECONDS - san_start)) s"
if [ "$asan_rc" != 0 ] || [ "$tsan_rc" != 0 ]; then exit 1; fi
# The bench smoke (a real server under 150 subscribers, label "bench") needs the machine to itself:
# two at once on 2 cores starve each other into its timeout. One after the other, after the rest.
for s in asan tsan; do
  env_ref=${s}_env[@]
  if ! env "${!env_ref}" ctest --test-dir "build-$s" -L bench --output-on-failure --timeout 300 \
       >"build-$s/ctest-bench.log" 2>&1; then
    cat "build-$s/ctest-bench.log"
    echo "== $s bench smoke FAILED"
    exit 1
  fi
  echo "   $s bench smoke: $(grep -E 'tests passed' "build-$s/ctest-bench.log")"
done
echo "   sanitizer suites and their bench smokes took $((SECONDS - san_start)) s"

echo "== fuzz smoke: every libFuzzer target, fixed seed and run count, regression inputs replayed"
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
if compgen -G "tests/pusher/*.test.mjs" >/dev/null; then
  # The real pusher-js, Laravel Echo and pusher server SDK from npm against /app/{key} and /apps/{id}/ (Chromium too).
  echo "== Pusher compatibility tests (pusher-js, Laravel Echo, the pusher SDK)"
  PUSHWIRE_SERVER="$PWD/build/server/pushwire-server" node --test --test-concurrency=1 tests/pusher/
fi
if compgen -G "tests/durable/*.test.mjs" >/dev/null; then
  # --data-dir: the server killed and restarted under the JS client, a disk that fills, a cut database.
  echo "== durable history tests (kill/restart, disk faults)"
  PUSHWIRE_SERVER="$PWD/build/server/pushwire-server" node --test --test-concurrency=1 tests/durable/
fi
if compgen -G "tests/ops/*.test.mjs" >/dev/null || compgen -G "tests/tls/*.test.mjs" >/dev/null; then
  # Operations: TLS (openssl-made certificates, wss/https, Chromium trusting the test CA, SIGHUP
  # reload), readiness and drain, process metrics, static files (tests/ops/server-proc.mjs), behind
  # Debian's nginx with the docs/deploy.md site (proxy.test.mjs), /metrics through promtool; the
  # .deb (cpack of build/ into a temp folder, seconds), key files, SIGHUP reload, sd_notify.
  echo "== operations tests (TLS, drain, metrics, promtool, nginx, static files, package, keys, reload, notify)"
  PUSHWIRE_SERVER="$PWD/build/server/pushwire-server" node --test --test-concurrency=1 tests/tls/ tests/ops/
fi
if compgen -G "tests/browser/*.test.mjs" >/dev/null; then
  echo "== browser tests (Chromium)"
  PUSHWIRE_SERVER="$PWD/build/server/pushwire-server" node --test --test-concurrency=1 tests/browser/
fi
echo "== all tests passed"
