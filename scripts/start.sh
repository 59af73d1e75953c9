#!/usr/bin/env bash
# Sets up, builds and starts the server with the demo pages on http://localhost:8080
# (in-memory engine, no config file). Extra arguments go to the server, e.g. --port 9000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec build/server/pushwire-server --demo --port 8080 --web-root web --client-root client-wasm "$@"
