#!/bin/sh
# Raw and gzip -9 sizes of the shipped client files, and the budget check (DECISIONS.md §16):
# the wasm plus the JS a page loads must stay within 60 KB gzip together.
set -eu
cd "$(dirname "$0")/../client-wasm/dist"
budget=61440
printf '%-22s %8s %8s\n' file raw gzip-9
for f in pushwire_core.wasm pushwire.mjs pushwire.js pushwire.node.mjs pushwire_core.mjs; do
  [ -f "$f" ] || { echo "client-size: missing client-wasm/dist/$f (run scripts/setup.sh / npm run build)" >&2; exit 1; }
  printf '%-22s %8d %8d\n' "$f" "$(wc -c < "$f")" "$(gzip -9c "$f" | wc -c)"
done
wasm=$(gzip -9c pushwire_core.wasm | wc -c)
status=0
# A page loads one of the two bundles (each has the wasm glue inside) plus the wasm.
for js in pushwire.mjs pushwire.js; do
  total=$((wasm + $(gzip -9c "$js" | wc -c)))
  verdict=ok
  [ "$total" -le "$budget" ] || { verdict="OVER BUDGET"; status=1; }
  printf '%-22s %17d  (budget %d: %s)\n' "wasm + $js" "$total" "$budget" "$verdict"
done
exit $status
