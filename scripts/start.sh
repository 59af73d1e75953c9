#!/usr/bin/env bash
# Sets up, builds and starts the server with the demo pages on http://localhost:8080 (no config
# file). History is durable in the project's state folder (.state/data, or $PUSHWIRE_DATA_DIR), so
# the demo resumes across a restart. Extra arguments go to the server, e.g. --port 9000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
data_dir="${PUSHWIRE_DATA_DIR:-.state/data}"
mkdir -p "$data_dir"
exec build/server/pushwire-server --demo --port 8080 --web-root web --client-root client-wasm --data-dir "$data_dir" "$@"
