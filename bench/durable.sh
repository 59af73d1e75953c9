#!/usr/bin/env bash
# Durable history beside the memory engine, in one run (docs/performance.md, "Durable history"):
# for each engine — memory, --data-dir under --durability fsync, interval, os — a fan-out scenario
# (1,000 WebSocket subscribers on one channel, 2,000 messages of 100 bytes, closed loop, 16 in
# flight), the same with 64 in flight (fanout64: enough publishes in flight to keep the fan-out busy
# whatever each one's acknowledgement waits for — with a data dir, its commit) and a publish scenario
# (10 subscribers on 10 channels, 5,000 messages, 64 in flight).
# Engines alternate within each round, so drift of a shared machine spreads over all of them.
# Usage: durable.sh SERVER_BINARY LOADGEN_BINARY [ROUNDS] [ENGINES] [SCENARIOS]   (one line per run)
#   e.g. durable.sh S L 3 "memory interval" "fanout fanout64"
# An engine may name its own server binary, for a before/after in one run: "interval:/tmp/old-server".
set -euo pipefail
server=${1:?server binary}; loadgen=${2:?loadgen binary}; rounds=${3:-2}
engines=${4:-memory fsync interval os}; scenarios=${5:-fanout fanout64 publish}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
run() {   # engine[:binary] scenario subs channels messages inflight
  local engine=${1%%:*} bin=$server label=${1%%:*} scen=$2 dir key flags=()
  if [[ $1 == *:* ]]; then bin=${1#*:}; label="$engine($(basename "$bin"))"; fi
  dir=$(mktemp -d -p "$work"); key=b$RANDOM$RANDOM
  [ "$engine" = memory ] || flags=(--data-dir "$dir/data" --durability "$engine" --fsync-interval-ms 200)
  "$bin" --port 0 --port-file "$dir/port" --api-key "$key" --log-level warn --threads 2 "${flags[@]}" 2>"$dir/log" &
  local spid=$!
  for _ in $(seq 1 100); do [ -s "$dir/port" ] && break; sleep 0.05; done
  timeout 60 "$loadgen" --port "$(cat "$dir/port")" --api-key "$key" --server-pid "$spid" --transport ws \
    --subs "$3" --channels "$4" --messages "$5" --size 100 --mode closed --inflight "$6" --idle-ms 100 \
    --drain-ms 2000 --timeout 50 --label "$engine-$scen" --json "$dir/r.json" --quiet >/dev/null || true
  kill "$spid"; wait "$spid" 2>/dev/null || true
  python3 - "$dir/r.json" "$label" "$scen" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:8} {sys.argv[3]:8} ok={d['ok']!s:5} publishes/s {d['publishes_per_s']:8.0f}  deliveries/s {d['deliveries_per_s']:10.0f}"
      f"  cpu/delivery {d['server_cpu_us_per_delivery']:.2f} us  p50 {d['latency_us']['p50']/1000:7.1f} ms"
      f"  p99 {d['latency_us']['p99']/1000:7.1f} ms  lost {d['lost']} dup {d['duplicated']}  idle {d['machine_idle_frac']:.2f}")
PY
}
for r in $(seq 1 "$rounds"); do
  for engine in $engines; do
    # `if`, not `&&`: a skipped last scenario must not become the script's exit status.
    if [[ " $scenarios " == *" fanout "* ]]; then run "$engine" fanout 1000 1 2000 16; fi
    if [[ " $scenarios " == *" fanout64 "* ]]; then run "$engine" fanout64 1000 1 2000 64; fi
    if [[ " $scenarios " == *" publish "* ]]; then run "$engine" publish 10 10 5000 64; fi
  done
done
