#!/usr/bin/env bash
# Installs what the benchmark comparison needs: Nchan (nginx-light + libnginx-mod-nchan), gnuplot
# for the charts, and the Node peer's pinned npm dependencies. apt runs only for missing packages;
# sudo only when not root. Idempotent: a second run takes well under a second.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PKGS="nginx-light libnginx-mod-nchan gnuplot-nox"
missing=$(for p in $PKGS; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update
  # nginx-light's postinst starts a system nginx on :80; we never use it (our instances run on a
  # free loopback port with their own prefix), so keep it from starting.
  echo exit 101 | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing || {
    $SUDO rm -f /usr/sbin/policy-rc.d; exit 1; }
  $SUDO rm -f /usr/sbin/policy-rc.d
fi
if [ ! -d "$here/node-peer/node_modules/ws" ]; then
  (cd "$here/node-peer" && npm ci --no-audit --no-fund --loglevel=error)
fi
