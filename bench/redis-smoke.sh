#!/usr/bin/env bash
# Redis scale-out bench smoke (a few seconds; not part of scripts/test.sh): redis-server and two
# Pushwire nodes on the Redis engine on free ports, then two load-generator runs with subscribers
# spread over both nodes and the publisher on the first:
#   1. 150 subscribers (WebSocket, SSE, long-poll), 200 messages closed loop;
#   2. 100 subscribers (WebSocket, SSE) at 50 msg/s while the second node is SIGKILLed after 1 s:
#      its subscribers come back on the first node and resume.
# The load generator exits non-zero on any lost, duplicated or out-of-order delivery.
# Usage: redis-smoke.sh SERVER_BINARY LOADGEN_BINARY
set -euo pipefail
server=${1:?server binary}; loadgen=${2:?loadgen binary}
dir=$(mktemp -d); key=smoke-$RANDOM$RANDOM
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no --logfile '' >"$dir/redis.log" 2>&1 &
rpid=$!; pids+=("$rpid")
for _ in $(seq 1 100); do [ "$(redis-cli -p "$rport" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
[ "$(redis-cli -p "$rport" ping 2>/dev/null)" = PONG ] || { echo "redis-server did not start" >&2; cat "$dir/redis.log" >&2; exit 1; }

start_node() {   # name -> sets node_pid, node_port
  "$server" --port 0 --port-file "$dir/$1.port" --api-key "$key" --log-level warn --engine redis \
    --redis "redis://127.0.0.1:$rport/0" --node-id "smoke-$1" 2>"$dir/$1.log" &
  node_pid=$!; pids+=("$node_pid")
  for _ in $(seq 1 200); do [ -s "$dir/$1.port" ] && break; kill -0 "$node_pid" 2>/dev/null || break; sleep 0.05; done
  [ -s "$dir/$1.port" ] || { echo "node $1 did not start" >&2; cat "$dir/$1.log" >&2; exit 1; }
  node_port=$(tr -dc 0-9 < "$dir/$1.port")
}
start_node a; apid=$node_pid; aport=$node_port
start_node b; bpid=$node_pid; bport=$node_port

fail() { echo "redis bench smoke FAILED ($1); node logs:" >&2; tail -5 "$dir"/a.log "$dir"/b.log >&2; exit 1; }
timeout 30 "$loadgen" --target pushwire --port "$aport" --ports "$aport,$bport" --api-key "$key" \
  --server-pid "$apid,$bpid,$rpid" --transport ws,sse,poll --subs 150 --messages 200 --size 100 --mode closed \
  --idle-ms 100 --drain-ms 5000 --timeout 25 --label redis-smoke --quiet --json "$dir/fanout.json" >/dev/null || fail "fan-out over two nodes"
timeout 40 "$loadgen" --target pushwire --port "$aport" --ports "$aport,$bport" --api-key "$key" \
  --server-pid "$apid,$bpid,$rpid" --transport ws,sse --subs 100 --messages 150 --size 100 --mode rate --rate 50 \
  --storm kill --kill-pid "$bpid" --storm-at-ms 1000 --idle-ms 100 --drain-ms 10000 --timeout 35 \
  --label redis-smoke-kill --quiet --json "$dir/kill.json" >/dev/null || fail "node b killed"
grep -q '"storm":{"kind":"kill"' "$dir/kill.json" || fail "no kill storm in the result"
echo "redis bench smoke: ok ($(grep -o '"storm":{[^}]*}' "$dir/kill.json"))"
