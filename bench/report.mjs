#!/usr/bin/env node
// Markdown tables from a comparison run (bench/results/<run>/*.json), for docs/performance.md.
// Usage: node bench/report.mjs [RESULTS_DIR]   (default bench/results/latest)
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
const here = dirname(fileURLToPath(import.meta.url));
const dir = process.argv[2] ?? join(here, 'results', 'latest');
const sum = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
const f = (x, d = 0) => (x === undefined || x === null || !Number.isFinite(Number(x)) ? '–' : Number(x).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
const load = (sc, sv) => { try { return JSON.parse(readFileSync(join(dir, `${sc}.${sv}.json`), 'utf8')); } catch { return null; } };
// One report per round: `<scenario>.<server>.json`, or `.r0`, `.r1`, … with --rounds N.
const rounds = (sc, sv) => {
  const one = load(sc, sv);
  if (one) return [one];
  const out = [];
  for (let r; (r = load(sc, `${sv}.r${out.length}`)); ) out.push(r);
  return out;
};
// Subscriber read interval of a run (µs): 0 = read as soon as readable (as a browser does), > 0 =
// the late reader (lateread-* scenarios, or a --loadgen-args override). '?' when the run did not say.
const readUs = (r) => (Number.isFinite(r?.read_interval_us) ? String(r.read_interval_us) : '?');
const lgArgs = (sum.loadgen_args ?? []).length ? `; extra load-generator flags \`${sum.loadgen_args.join(' ')}\`` : '';
console.log(`Run \`${sum.run}\`${sum.quick ? ' (quick)' : ''}, ${sum.machine?.cores ?? '?'} cores (${sum.machine?.model ?? '?'}), shared machine; ${f(sum.elapsed_s)} s${lgArgs}. ` +
  'read µs = how often the generator read subscriber sockets while publishing (0 = as soon as readable, as a browser does; > 0 = the late reader, which lets frames pile up).\n');
console.log('| scenario | group | server | read µs | deliveries/s | server CPU µs/delivery | latency p50 / p99 / max ms | RSS/conn B | lost / dup / ooo | generator CPU µs/delivery | idle CPU left | ratio dlv/s | ratio CPU |');
console.log('|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
for (const [name, sc] of Object.entries(sum.scenarios ?? {})) {
  for (const sv of Object.keys(sc.servers ?? {})) {
    const rs = rounds(name, sv);
    rs.forEach((r, i) => {
      // The ratio columns are the medians over rounds (summary.json), on the last round's row.
      const ra = i === rs.length - 1 ? sc.ratios?.[sv] : null;
      const l = r.latency_us ?? {};
      console.log(`| ${name} | ${sc.group ?? '–'} | ${sv}${rs.length > 1 ? ` r${i + 1}` : ''} | ${readUs(r)} | ${f(r.deliveries_per_s)} | ${f(r.server_cpu_us_per_delivery, 2)} | ${f(l.p50 / 1000, 1)} / ${f(l.p99 / 1000, 1)} / ${f(l.max / 1000, 1)} | ${f(r.rss_per_conn_bytes)} | ${r.lost} / ${r.duplicated} / ${r.out_of_order}${r.ok ? '' : ' **FAIL**'} | ${f(r.loadgen_cpu_us_per_delivery, 2)} | ${f((r.machine_idle_frac ?? 0) * 100)}%${r.cpu_saturated ? ' ⚠' : ''} | ${ra ? f(ra.deliveries_per_s, 2) : ''} | ${ra ? f(ra.cpu_per_delivery, 2) : ''} |`);
    });
  }
}
const extra = [];
for (const [name, sc] of Object.entries(sum.scenarios ?? {})) {
  for (const sv of Object.keys(sc.servers ?? {})) {
    const rs = rounds(name, sv);
    rs.forEach((r, i) => {
      const who = `${name} / ${sv}${rs.length > 1 ? ` r${i + 1}` : ''}`;
      if (r.storm) extra.push(`- **${who}**: dropped ${r.storm.dropped}, back ${r.storm.back}, return ms min/p50/p90/max ${f(r.storm.return_ms.min)}/${f(r.storm.return_ms.p50)}/${f(r.storm.return_ms.p90)}/${f(r.storm.return_ms.max)}, all caught up after ${f(r.storm.catchup_ms.max)} ms; lost/dup ${r.lost}/${r.duplicated}; offset gaps ${r.offset_gaps ?? '–'}${r.missing_example ? '; ' + r.missing_example : ''}`);
      if (r.stall) extra.push(`- **${who}**: stalled ${r.stall.stalled}, disconnected ${r.stall.closed} (with 4008: ${r.stall.closed_4008}); RSS idle→peak +${f(r.stall.rss_growth_kb)} KB; the others at ${f(r.deliveries_per_s)} deliveries/s vs ${f(r.baseline?.deliveries_per_s)} without the stall (${f(r.ratio_vs_unstalled * 100, 1)}%)`);
      if (r.beyond_cap) extra.push(`- **${who}**: ${f(r.connect.ready)} connected in ${f(r.connect.seconds, 2)} s (${f(r.connect.rate_per_s)}/s); RSS before/idle/peak ${f(r.rss_kb.before)}/${f(r.rss_kb.idle)}/${f(r.rss_kb.peak)} KB (${f(r.rss_per_conn_bytes)} B/conn); publish delivered to ${f(r.delivered)} of ${f(r.expected)}; second generator past the cap: ${r.beyond_cap.connect?.ready} accepted, ${r.beyond_cap.connect?.refused} refused (HTTP 503: ${r.beyond_cap.connect?.refused_http_503}, close 4015: ${r.beyond_cap.connect?.refused_close_4015}, reset: ${r.beyond_cap.connect?.refused_reset}, unresolved: ${r.beyond_cap.connect?.unresolved}); /healthz afterwards: ${r.beyond_cap.healthz_after}`);
    });
  }
}
if (extra.length) console.log('\n' + extra.join('\n'));
