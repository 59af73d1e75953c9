#!/usr/bin/env bash
# Builds the differential fuzz target (scanner vs Boost.JSON) with clang's libFuzzer and runs it.
#   bash scripts/fuzz.sh            a fixed, seeded run of 200,000 inputs (what the test command runs)
#   bash scripts/fuzz.sh 600        fuzz for 600 seconds
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-fuzz
mkdir -p "$out"
srcs="protocol/codes.cpp protocol/json_scan.cpp protocol/channel_name.cpp protocol/position.cpp protocol/frame_codec.cpp tests/fuzz/scanner_fuzz.cpp"
# Rebuild only when a source is newer than the binary.
if [ ! -x "$out/scanner_fuzz" ] || [ -n "$(find $srcs protocol/*.hpp -newer "$out/scanner_fuzz" 2>/dev/null | head -1)" ]; then
  clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
    $srcs -lboost_json -o "$out/scanner_fuzz"
fi
# New inputs go to a corpus under build-fuzz/ (libFuzzer writes into the first directory), never
# into the seeds in tests/fuzz/corpus; crash files go there too.
if [ $# -ge 1 ]; then
  mkdir -p "$out/corpus"
  "$out/scanner_fuzz" -max_total_time="$1" -max_len=4096 -artifact_prefix="$out/" "$out/corpus" tests/fuzz/corpus
else
  # The fixed run starts from the seeds alone each time, so it is the same run every time.
  rm -rf "$out/run" && mkdir -p "$out/run"
  "$out/scanner_fuzz" -seed=1 -runs=200000 -max_len=1024 -artifact_prefix="$out/" "$out/run" tests/fuzz/corpus 2>&1 | tail -n 3
fi
