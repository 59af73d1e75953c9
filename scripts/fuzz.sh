#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/, one CMake build with clang in build-fuzz/) and runs them.
#   bash scripts/fuzz.sh                      the smoke: a fixed, seeded, bounded run of every target
#                                             from its seeds (what the test command runs; it replays
#                                             every regression input in tests/fuzz/corpus/)
#   bash scripts/fuzz.sh run TARGET [ARGS]    fuzz one target with libFuzzer ARGS (e.g. -runs=10000000
#                                             or -max_total_time=600), keeping what it finds in
#                                             build-fuzz/corpus/TARGET; docs/fuzzing.md has the figures
# Targets: scanner_fuzz position_fuzz session_fuzz client_fuzz jwt_fuzz config_fuzz http_fuzz pusher_fuzz
# ws_frame_fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-fuzz
jobs=$(nproc)
# Ninja rebuilds only what changed. (A build-fuzz/ from before the CMake build is configured in place.)
if [ ! -f "$out/build.ninja" ]; then
  CXX=clang++-14 cmake -S . -B "$out" -G Ninja -DPUSHWIRE_FUZZ=ON >/dev/null
fi
cmake --build "$out" -j"$jobs" | { grep -vE '^\[[0-9]+/[0-9]+\] ' || true; }

targets="scanner_fuzz position_fuzz session_fuzz client_fuzz jwt_fuzz config_fuzz http_fuzz pusher_fuzz ws_frame_fuzz"
flags() {   # per-target libFuzzer flags: the dictionary and a length that fits its inputs
  local t=$1 f=""
  [ -f "tests/fuzz/$t.dict" ] && f="-dict=tests/fuzz/$t.dict"
  case $t in
    # http_fuzz keeps one node across inputs (as a server does), so most inputs end with more memory
    # held than they started with, and libFuzzer's per-input leak check (a scan of the whole heap)
    # then took two thirds of the time. ASan's other checks stay on.
    http_fuzz) f="$f -max_len=4096 -detect_leaks=0" ;;
    session_fuzz|client_fuzz|pusher_fuzz|ws_frame_fuzz) f="$f -max_len=4096" ;;
    *) f="$f -max_len=1024" ;;
  esac
  echo "$f"
}

if [ "${1:-}" = run ]; then
  t=$2
  shift 2
  mkdir -p "$out/corpus/$t" "$out/artifacts"
  # New inputs go to build-fuzz/corpus/TARGET (libFuzzer writes into the first directory), never
  # into the seeds; crash files go to build-fuzz/artifacts/.
  exec "$out/$t" $(flags "$t") -artifact_prefix="$out/artifacts/$t-" "$@" "$out/corpus/$t" "tests/fuzz/corpus/$t"
fi

# The smoke: each target starts from its seeds alone, with a fixed seed and number of runs, so it is
# the same run every time (the time cap only guards against a slow machine). Each log is printed
# when its run fails.
declare -A runs=([scanner_fuzz]=60000 [position_fuzz]=60000 [session_fuzz]=20000 [client_fuzz]=20000
                 [jwt_fuzz]=40000 [config_fuzz]=20000 [http_fuzz]=10000 [pusher_fuzz]=20000
                 [ws_frame_fuzz]=40000)
mkdir -p "$out/logs"
for t in $targets; do
  rm -rf "$out/run/$t" && mkdir -p "$out/run/$t"
  start=$(date +%s.%N)
  if ! "$out/$t" $(flags "$t") -seed=1 -runs="${runs[$t]}" -max_total_time=15 -artifact_prefix="$out/run/$t/" \
       "$out/run/$t" "tests/fuzz/corpus/$t" >"$out/logs/$t.log" 2>&1; then
    cat "$out/logs/$t.log"
    echo "fuzz smoke: $t FAILED (crash input in $out/run/$t/)"
    exit 1
  fi
  printf 'fuzz smoke: %-14s %s (%.1f s)\n' "$t" "$(grep -E '^#[0-9]+.*(DONE|pulse)' "$out/logs/$t.log" | tail -n1 | cut -c1-90)" \
    "$(echo "$(date +%s.%N) - $start" | bc)"
done
