#!/usr/bin/env bash
# Sets up, builds and starts the server with the demo pages on http://localhost:8080 (no config
# file). History is durable in the project's state folder (.state/data, or $PUSHWIRE_DATA_DIR), so
# the demo resumes across a restart. The API key and token secret are made once into .state/keys
# (or $PUSHWIRE_KEY_FILE; mode 0600, JSON) and kept: read the key there, e.g.
#   KEY=$(node -p 'JSON.parse(require("fs").readFileSync(".state/keys", "utf8")).api_key')
# Extra arguments go to the server, e.g. --port 9000 (or --api-key K, which wins over the file).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
data_dir="${PUSHWIRE_DATA_DIR:-.state/data}"
key_file="${PUSHWIRE_KEY_FILE:-.state/keys}"
mkdir -p "$data_dir" "$(dirname "$key_file")"
echo "start: the API key and token secret are in $key_file" >&2
exec build/server/pushwire-server --demo --port 8080 --web-root web --client-root client-wasm --data-dir "$data_dir" \
  --key-file "$key_file" "$@"
