#!/usr/bin/env node
// Publishes simulated live scores (and optionally chart values) through Pushwire's HTTP API, the way
// an application backend would: POST /api/publish with the API key. Feeds web/scores.html and
// web/chart.html. Node 20+, no dependencies.
//
//   node scripts/publish-scores.mjs --key KEY [--url http://localhost:8080] [--channel demo:scores]
//        [--interval 1000] [--count 0 (forever)] [--chart [--chart-channel demo:chart]] [--quiet]
//
// The key may also come from PUSHWIRE_API_KEY. Without --key and with --demo-publish, it uses the
// demo's key-less, rate-limited POST /demo/publish instead (only for channels in the demo namespace).
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.PUSHWIRE_URL || 'http://localhost:8080' },
    key: { type: 'string', default: process.env.PUSHWIRE_API_KEY || '' },
    channel: { type: 'string', default: 'demo:scores' },
    interval: { type: 'string', default: '1000' },
    count: { type: 'string', default: '0' },
    chart: { type: 'boolean', default: false },
    'chart-channel': { type: 'string', default: 'demo:chart' },
    'demo-publish': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log('usage: node scripts/publish-scores.mjs --key KEY [--url URL] [--channel C] [--interval MS] [--count N] [--chart] [--demo-publish]');
  process.exit(0);
}
if (!args.key && !args['demo-publish']) {
  console.error('publish-scores: give --key (or PUSHWIRE_API_KEY), or --demo-publish for the key-less demo path');
  process.exit(2);
}

const base = args.url.replace(/\/$/, '');
const interval = Math.max(0, Number(args.interval) || 0);
const count = Math.max(0, Number(args.count) || 0);

async function publish(channel, data) {
  const demo = !args.key;
  const res = await fetch(base + (demo ? '/demo/publish' : '/api/publish'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(demo ? {} : { Authorization: `Bearer ${args.key}` }) },
    body: JSON.stringify({ channel, data }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${res.status} ${text.trim()}`);
  return JSON.parse(text);
}

// A tiny match simulator: three matches, goals at random, 90 minutes in steps of 3.
const matches = [
  { match: 'lions-tigers', home: 'Lions', away: 'Tigers' },
  { match: 'otters-herons', home: 'Otters', away: 'Herons' },
  { match: 'foxes-owls', home: 'Foxes', away: 'Owls' },
].map((m) => ({ ...m, homeScore: 0, awayScore: 0, minute: 0, status: 'pre' }));

function step(i) {
  const m = matches[i % matches.length];
  let event;
  if (m.status === 'pre' || m.status === 'ft') {
    Object.assign(m, { homeScore: 0, awayScore: 0, minute: 1, status: 'live' });
    event = `Kick-off: ${m.home} v ${m.away}`;
  } else {
    m.minute = Math.min(90, m.minute + 3);
    const r = Math.random();
    if (r < 0.12) { m.homeScore++; event = `Goal! ${m.home} — ${m.home} ${m.homeScore}–${m.awayScore} ${m.away}`; }
    else if (r < 0.22) { m.awayScore++; event = `Goal! ${m.away} — ${m.home} ${m.homeScore}–${m.awayScore} ${m.away}`; }
    if (m.minute >= 90) { m.status = 'ft'; event = `Full time: ${m.home} ${m.homeScore}–${m.awayScore} ${m.away}`; }
    else if (m.minute >= 45 && m.minute < 48) { m.status = 'ht'; event ??= `Half time: ${m.home} ${m.homeScore}–${m.awayScore} ${m.away}`; }
    else m.status = 'live';
  }
  return { ...m, ...(event ? { event } : {}) };
}

let value = 50;
let stopping = false;
process.on('SIGINT', () => { stopping = true; });
for (let i = 0; !stopping && (count === 0 || i < count); i++) {
  try {
    const update = step(i);
    const at = await publish(args.channel, update);
    if (!args.quiet) console.log(`${args.channel} #${at.offset}: ${update.event ?? `${update.home} ${update.homeScore}–${update.awayScore} ${update.away} (${update.minute}′)`}`);
    if (args.chart) {
      value = Math.max(0, Math.min(100, value + (Math.random() - 0.5) * 12));
      await publish(args['chart-channel'], { v: Math.round(value * 10) / 10 });
    }
  } catch (e) {
    console.error('publish-scores:', e.message);
    if (/^40[134] /.test(e.message)) process.exit(1);   // bad key or channel: retrying will not help
  }
  if (interval) await new Promise((r) => setTimeout(r, interval));
}
