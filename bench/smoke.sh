#!/usr/bin/env bash
# Bench smoke test (a few seconds): the real server on a free port, 50 WebSocket + 50 SSE + 50 long-poll
# subscribers, 200 messages closed loop; the load generator exits non-zero on any lost, duplicated
# or out-of-order delivery. It also checks the generator's read policy against its documentation:
# with no --read-interval-us, subscribers read as soon as their sockets are readable (a browser's
# behaviour), so result.json must say "read_interval_us":0.
# Usage: smoke.sh SERVER_BINARY LOADGEN_BINARY
set -euo pipefail
server=${1:?server binary}; loadgen=${2:?loadgen binary}
dir=$(mktemp -d); key=smoke-$RANDOM$RANDOM
cleanup() { [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
"$server" --port 0 --port-file "$dir/port" --api-key "$key" --log-level warn 2>"$dir/server.log" &
spid=$!
for _ in $(seq 1 100); do [ -s "$dir/port" ] && break; kill -0 "$spid" 2>/dev/null || break; sleep 0.05; done
if [ ! -s "$dir/port" ]; then echo "server did not write its port file" >&2; cat "$dir/server.log" >&2; exit 1; fi
port=$(tr -dc 0-9 < "$dir/port")
if ! timeout 20 "$loadgen" --target pushwire --port "$port" --api-key "$key" --server-pid "$spid" \
    --transport ws,sse,poll --subs 150 --messages 200 --size 100 --mode closed --idle-ms 100 \
    --drain-ms 3000 --timeout 15 --label smoke --json "$dir/result.json"; then
  echo "bench smoke FAILED; server log:" >&2; tail -20 "$dir/server.log" >&2; exit 1
fi
# The default read policy: read when readable (0), not the late reader.
if ! grep -q '"read_interval_us":0[,}]' "$dir/result.json"; then
  echo "bench smoke FAILED: the default subscriber read interval is not 0 (read when readable):" \
    "$(grep -o '"read_interval_us":[^,}]*' "$dir/result.json" || echo 'no read_interval_us in result.json')" >&2
  exit 1
fi
echo "bench smoke: ok (default read_interval_us 0: subscribers read as soon as readable)"
