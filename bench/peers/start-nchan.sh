#!/usr/bin/env bash
# Starts Nchan on a free loopback port with its own temp prefix, in the foreground (exec nginx).
# Usage: start-nchan.sh PREFIX_DIR PORT_FILE   (the port is written once nginx answers /healthz)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=${1:?prefix dir}; portfile=${2:?port file}
mkdir -p "$prefix/tmp" "$prefix/logs"
port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" "$here/nchan.conf" > "$prefix/nginx.conf"
ulimit -Sn "$(ulimit -Hn)"
( for _ in $(seq 1 200); do
    if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then exec 3>&-; echo "$port" > "$portfile"; exit 0; fi
    sleep 0.05
  done ) 2>/dev/null &
exec nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"
