#!/usr/bin/env bash
# The benchmark comparison: Pushwire vs Nchan vs the Node `ws` peer, same scenarios, alternately.
#   bench/compare.sh            full comparison (< 15 minutes)
#   bench/compare.sh --quick    1,000 subscribers, websocket and SSE, closed loop, once per server (< 3 min)
#   bench/compare.sh --only redis-   Redis scale-out: 2 Pushwire nodes vs 2 Nchan on one redis-server each
#                                    (fan-out, 50 msg/s latency, a node SIGKILLed); add --quick for 1,000 only
# Other flags: --only scenario-prefix[,..]  --servers pushwire,nchan,node  --rounds N
#              --loadgen-args "--read-interval-us 50000"   (extra flags for every load-generator run)
#              --list   (the scenarios, no run)
# Subscribers read as soon as their sockets are readable (read interval 0), except lateread-*.
# Needs the server and the load generator built (cmake --build build); installs the peers itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/peers/install.sh"
ulimit -Sn "$(ulimit -Hn)"
exec node "$here/compare.mjs" "$@"
