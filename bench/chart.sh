#!/usr/bin/env bash
# SVG charts from a comparison run's JSON results (gnuplot, installed by bench/peers/install.sh):
# deliveries/s and server CPU µs per delivery against subscriber count, one line per server, for the
# fan-out scenarios (websocket and SSE; closed loop and 8 in flight). Only fanout-* scenarios are
# drawn (not lateread-*, latency-*, ...); each chart's title says how the subscribers read, from the
# read_interval_us the runs reported (0 = as soon as readable; > 0 = the late reader, e.g. through a
# --loadgen-args override; '?' = a run from before the field was recorded).
# Usage: bench/chart.sh [RESULTS_DIR]   (default bench/results/latest, else latest-quick)
# Writes RESULTS_DIR/charts/*.svg and copies them to docs/perf/ when --docs is given.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
docs=0; dir=""
for a in "$@"; do case "$a" in --docs) docs=1 ;; *) dir=$a ;; esac; done
if [ -z "$dir" ]; then
  if [ -e "$here/results/latest" ]; then dir="$here/results/latest"; else dir="$here/results/latest-quick"; fi
fi
[ -f "$dir/summary.json" ] || { echo "no summary.json in $dir (run bench/compare.sh first)" >&2; exit 1; }
command -v gnuplot >/dev/null || "$here/peers/install.sh"
out="$dir/charts"; mkdir -p "$out"
# One data file per (transport, mode, server): "subscribers deliveries_per_s cpu_us_per_delivery".
node - "$dir/summary.json" "$out" <<'JS'
const fs = require('fs');
const [sum, out] = process.argv.slice(2);
const s = JSON.parse(fs.readFileSync(sum, 'utf8'));
const rows = {}, reads = {};
for (const [name, sc] of Object.entries(s.scenarios ?? {})) {
  const m = /^fanout-(ws|sse)-(\d+)k-(closed|k8)$/.exec(name);
  if (!m) continue;
  if (!Object.keys(sc.servers ?? {}).length) continue;
  const ri = sc.read_interval_us;
  const rd = ri === undefined || ri === null ? '?' : Array.isArray(ri) ? ri.map((v) => v ?? '?').join('/') : String(ri);
  (reads[`${m[1]}-${m[3]}`] ??= new Set()).add(rd);
  console.log(`${name}: read interval ${rd} us`);
  for (const [server, r] of Object.entries(sc.servers)) {
    const key = `${m[1]}-${m[3]}-${server}`;
    (rows[key] ??= []).push([Number(m[2]) * 1000, r.deliveries_per_s, r.cpu_us_per_delivery]);
  }
}
for (const [k, v] of Object.entries(reads)) {
  const l = [...v];
  fs.writeFileSync(`${out}/${k}.read`, l.length === 1 && l[0] === '0' ? 'read when readable'
    : l.length === 1 && /^\d+$/.test(l[0]) ? `late reader, every ${l[0]} µs` : `read interval ${l.join(', ')} µs`);
}
for (const [k, v] of Object.entries(rows)) {
  v.sort((a, b) => a[0] - b[0]);
  fs.writeFileSync(`${out}/${k}.dat`, v.map((r) => r.join(' ')).join('\n') + '\n');
}
JS
servers="pushwire nchan node"
for tp in ws sse; do
  for mode in closed k8; do
    ls "$out/$tp-$mode-"*.dat >/dev/null 2>&1 || continue
    for metric in dps cpu; do
      col=2; ylabel="deliveries/s"; [ $metric = cpu ] && { col=3; ylabel="server CPU µs per delivery (lower is better)"; }
      plot=""
      for sv in $servers; do
        f="$out/$tp-$mode-$sv.dat"; [ -f "$f" ] || continue
        plot="${plot:+$plot, }'$f' using 1:$col with linespoints lw 2 pt 7 title '$sv'"
      done
      mtitle=$([ $mode = closed ] && echo "closed loop" || echo "8 publishes in flight")
      [ -f "$out/$tp-$mode.read" ] && mtitle="$mtitle, $(cat "$out/$tp-$mode.read")"
      gnuplot <<GP
set terminal svg size 640,400 dynamic font "sans,11"
set output "$out/$tp-$mode-$metric.svg"
set title "$tp fan-out, 100-byte messages, one channel, $mtitle"
set xlabel "subscribers"; set ylabel "$ylabel"
set logscale x; set xtics (1000, 2000, 5000, 10000, 20000)
set yrange [0:*]; set grid; set key top right
plot $plot
GP
    done
  done
done
ls "$out"/*.svg
if [ $docs = 1 ]; then mkdir -p "$here/../docs/perf"; cp "$out"/*.svg "$here/../docs/perf/"; fi
