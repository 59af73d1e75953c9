#!/usr/bin/env node
// Runs the same benchmark scenarios against Pushwire, Nchan and the Node `ws` peer, alternately
// (server by server inside each scenario, so drift on a noisy machine hits all of them alike), and
// prints ratios: > 1 means Pushwire is better. Results: bench/results/<run>/<scenario>.<server>.json
// and bench/results/<run>/summary.json (+ bench/results/latest -> <run>).
//
//   bench/compare.sh [--quick] [--only name,name] [--servers pushwire,nchan,node] [--rounds N]
//   bench/compare.sh [--quick] --summarize bench/results/<run>   (ratios and summary.json again, no run)
//   node bench/compare.mjs [--quick] [--only ..] --list   (the scenarios and their arguments, no run)
//
// --quick: 1,000 subscribers, websocket and SSE, closed loop, once per server (< 3 minutes).
// --only redis-: the Redis scale-out scenarios (issue 13): two Pushwire nodes on one redis-server vs
// two nginx + Nchan on one redis-server, the memory engine beside them (with --quick: 1,000 only).
// Without it: every scenario of docs/performance.md (< 15 minutes). Each run of the load generator
// is bounded in time and count; servers listen on free loopback ports and are stopped after each run.
//
// Read policy: every scenario reads subscriber sockets as soon as they are readable, as a browser
// does (the load generator's default, --read-interval-us 0). Only the lateread-* scenarios use the
// "late reader" (--read-interval-us 50000: frames pile up for up to 50 ms between reads), under their
// own names. The interval each run actually used is taken from the generator's JSON and shown in the
// table and in summary.json, so an override through --loadgen-args shows too.
import { spawn, spawnSync } from 'node:child_process';
import { statSync, copyFileSync, chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync, rmSync, symlinkSync, unlinkSync, mkdtempSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir, cpus } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const argv = process.argv.slice(2);
const flag = (n) => argv.includes(n);
if (flag('--help') || flag('-h')) {
  console.log(`usage: bench/compare.sh [--quick] [--only prefix[,..]] [--servers pushwire,nchan,node] [--rounds N]
                        [--loadgen-args "FLAGS"] [--summarize bench/results/<run>] [--list]
  --quick          1,000 subscribers, websocket and SSE, closed loop, once per server
  --only P[,..]    only the scenarios whose names start with one of these prefixes (a trailing * is
                   allowed); --only redis- = Redis scale-out: two Pushwire nodes vs two Nchan on
                   one redis-server each, memory engine beside them
  --loadgen-args   extra load-generator flags for every run (they come last, so they win),
                   e.g. "--read-interval-us 50000" for the late reader everywhere
  --summarize DIR  ratios and summary.json of an earlier run again, no run
  --list           print the scenarios (name, group, servers, read interval, arguments), no run
Subscribers read as soon as their sockets are readable (read interval 0) except in lateread-*.`);
  process.exit(0);
}
const opt = (n, d) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : d; };
const quick = flag('--quick');
const rounds = Number(opt('--rounds', '1'));
const only = opt('--only', '') ? opt('--only').split(',') : null;
const serversWanted = opt('--servers', 'pushwire,nchan,node').split(',');
// `pushwire` also selects pushwire-redis, `nchan` nchan-redis; a full name selects only itself.
const wanted = (kind) => serversWanted.includes(kind) || serversWanted.includes(kind.split('-')[0]);
// Extra load-generator flags for every run, e.g. --loadgen-args "--read-interval-us 50000".
const lgExtra = opt('--loadgen-args', '').split(' ').filter(Boolean);
const resummarize = opt('--summarize', '');
const listOnly = flag('--list');  // no binaries needed, nothing written

// The newest of the candidates (an explicit environment variable always wins).
const pick = (env, ...c) => {
  if (env && existsSync(env)) return env;
  const have = c.filter((p) => existsSync(p));
  have.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return have[0];
};
// Extra flags for every Pushwire server of the run, e.g. PUSHWIRE_SERVER_ARGS='--io-uring off' for
// a before/after of one option with the same binary.
const serverExtraArgs = (process.env.PUSHWIRE_SERVER_ARGS || '').split(' ').filter(Boolean);
const serverBin = pick(process.env.PUSHWIRE_SERVER, join(root, 'build/server/pushwire-server'),
  join(root, 'build-h-bench/server/pushwire-server'), join(root, 'build-h-server/server/pushwire-server'));
const loadgen = pick(process.env.PUSHWIRE_LOADGEN, join(root, 'build/bench/pushwire-loadgen'),
  join(root, 'build-h-bench/bench/pushwire-loadgen'));
if (!listOnly && (!serverBin || !loadgen)) {
  console.error('need the server and load generator built: cmake --build build --target pushwire-server pushwire-loadgen');
  process.exit(2);
}

const runId = resummarize ? basename(resolve(resummarize))
  : new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19) + (quick ? '-quick' : '') + (lgExtra.length ? '-lgargs' : '');
const outDir = resummarize ? resolve(resummarize) : join(here, 'results', runId);
if (!listOnly) mkdirSync(outDir, { recursive: true });
// Snapshot the server binary: a colleague's rebuild during the run must not change what is measured.
const serverSnap = join(outDir, 'pushwire-server');
if (!resummarize && !listOnly) {
  copyFileSync(serverBin, serverSnap);
  chmodSync(serverSnap, 0o755);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const apiKey = 'bench-' + Math.random().toString(36).slice(2);
const pusherKey = 'bench-key';

async function freePort() {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  });
}
async function waitFile(f, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (existsSync(f) && readFileSync(f, 'utf8').trim()) return readFileSync(f, 'utf8').trim();
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${f}`);
}
async function waitPort(port, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((res) => {
      const c = connect(port, '127.0.0.1', () => { c.destroy(); res(true); });
      c.on('error', () => res(false));
    });
    if (ok) return;
    await sleep(25);
  }
  throw new Error(`port ${port} never opened`);
}

// --- Redis scale-out (issue 13 item 8) --------------------------------------------------------------
// pushwire-redis: two Pushwire nodes on the Redis engine and one redis-server; nchan-redis: two
// nginx + Nchan instances on one redis-server (nchan_redis_url). Subscribers are spread over both
// nodes (the load generator's --ports), the publisher talks to the first; CPU is sampled over both
// nodes and redis-server together; the kill scenarios SIGKILL the second node.
async function startRedisServer(dir) {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', 'no', '--daemonize', 'no', '--logfile', '', '--protected-mode', 'no'], { stdio: 'ignore' });
  const end = Date.now() + 10000;
  for (;;) {
    const pong = await new Promise((res) => {
      const c = connect(port, '127.0.0.1', () => c.write('PING\r\n'));
      c.on('data', (d) => { c.destroy(); res(String(d).startsWith('+PONG')); });
      c.on('error', () => res(false));
    });
    if (pong) break;
    if (Date.now() > end) throw new Error('redis-server did not answer PING');
    await sleep(25);
  }
  return { child, port, pid: child.pid, url: `redis://127.0.0.1:${port}/0` };
}
async function startPushwireNode(dir, name, extra) {
  const portFile = join(dir, `${name}.port`);
  const child = spawn(serverSnap, ['--port', '0', '--port-file', portFile, '--api-key', apiKey,
    '--log-level', 'warn', '--history-size', '20000', '--max-parked-polls', '20000', ...extra, ...serverExtraArgs],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.on('data', (d) => { if (process.env.BENCH_VERBOSE) process.stderr.write(d); });
  const port = Number(await waitFile(portFile, 15000));
  return { child, port, pid: child.pid };
}
async function startNchanNode(dir, name, redisUrl) {
  const port = await freePort();
  const prefix = join(dir, name);
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  let conf = readFileSync(join(here, 'peers/nchan.conf'), 'utf8').replaceAll('@PREFIX@', prefix).replaceAll('@PORT@', String(port));
  // Nchan's Redis mode: messages, channel state and fan-out between instances through Redis.
  if (redisUrl) conf = conf.replace(/http \{\n/, `http {\n  nchan_redis_url "${redisUrl.replace(/\/0$/, '')}";\n  nchan_use_redis on;\n`);
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  const child = spawn('nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log')], { stdio: 'ignore' });
  await waitPort(port, 10000);
  return { child, port, pid: child.pid };
}
async function startGroup(kind, dir) {
  const redis = await startRedisServer(dir);
  const nodes = [];
  try {
    for (const name of ['a', 'b']) {
      nodes.push(kind === 'pushwire-redis'
        ? await startPushwireNode(dir, name, ['--engine', 'redis', '--redis', redis.url, '--node-id', `bench-${name}`])
        : await startNchanNode(dir, name, redis.url));
    }
  } catch (e) {
    for (const c of [...nodes.map((n) => n.child), redis.child]) c.kill('SIGKILL');
    throw e;
  }
  await sleep(300);
  return {
    kind, dir, port: nodes[0].port, ports: nodes.map((n) => n.port),
    pid: [...nodes.map((n) => n.pid), redis.pid].join(','), killPid: nodes[1].pid,
    // Stopped in this order: nodes first (they talk to Redis), Redis last.
    children: [...nodes.map((n) => ({ child: n.child, signal: kind === 'nchan-redis' ? 'SIGQUIT' : 'SIGTERM' })),
      { child: redis.child, signal: 'SIGTERM' }],
  };
}

// --- servers ---------------------------------------------------------------------------------------
async function startServer(kind) {
  const dir = mkdtempSync(join(tmpdir(), `bench-${kind}-`));
  if (kind.endsWith('-redis')) return startGroup(kind, dir);
  let child, port, pidForStats;
  if (kind === 'pushwire' || kind === 'pushwire-pusher') {
    // pushwire-pusher: the same server with a Pusher app; its subscribers use /app/{key} (issue 14).
    const pusher = kind === 'pushwire-pusher' ? ['--pusher-app', `bench:${pusherKey}:bench-secret`] : [];
    child = spawn(serverSnap, ['--port', '0', '--port-file', join(dir, 'port'), '--api-key', apiKey,
      '--log-level', 'warn', '--history-size', '20000', '--max-parked-polls', '20000', ...pusher, ...serverExtraArgs],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (d) => { if (process.env.BENCH_VERBOSE) process.stderr.write(d); });
    port = Number(await waitFile(join(dir, 'port'), 10000));
    pidForStats = child.pid;
  } else if (kind === 'nchan') {
    port = await freePort();
    mkdirSync(join(dir, 'tmp'), { recursive: true });
    const conf = readFileSync(join(here, 'peers/nchan.conf'), 'utf8').replaceAll('@PREFIX@', dir).replaceAll('@PORT@', String(port));
    writeFileSync(join(dir, 'nginx.conf'), conf);
    child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: 'ignore' });
    await waitPort(port, 10000);
    pidForStats = child.pid;  // the master; the load generator adds its workers
  } else {
    child = spawn(process.execPath, [join(here, 'peers/node-peer/server.mjs'), '--port', '0', '--port-file', join(dir, 'port')],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', () => {});
    port = Number(await waitFile(join(dir, 'port'), 10000));
    pidForStats = child.pid;
  }
  await sleep(300);  // let it settle before the "before" RSS sample
  return { kind, child, port, pid: pidForStats, dir };
}
async function stopServer(s) {
  if (!s) return;
  if (s.children) {
    for (const { child, signal } of s.children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const done = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 6000);
      await done;
      clearTimeout(t);
    }
    // A killed nginx master leaves no workers behind (the generator kills its children too).
    rmSync(s.dir, { recursive: true, force: true });
    return;
  }
  const done = new Promise((r) => s.child.once('exit', r));
  s.child.kill(s.kind === 'nchan' ? 'SIGQUIT' : 'SIGTERM');
  const t = setTimeout(() => s.child.kill('SIGKILL'), 6000);
  await done;
  clearTimeout(t);
  rmSync(s.dir, { recursive: true, force: true });
}

// --- the load generator ------------------------------------------------------------------------------
function target(kind) { return kind.startsWith('pushwire') ? 'pushwire' : kind.startsWith('nchan') ? 'nchan' : 'node'; }
function lgArgs(srv, sc, extra = []) {
  const a = ['--target', target(srv.kind), '--port', String(srv.port), '--server-pid', String(srv.pid),
    '--api-key', apiKey, '--quiet', ...sc.args, ...extra, ...lgExtra];
  if (srv.ports) a.push('--ports', srv.ports.join(','), '--pub-port', String(srv.ports[0]));
  if (srv.kind === 'pushwire-pusher') a.push('--pusher-key', pusherKey);
  // Kill scenarios on a group: the second node dies (the publisher talks to the first).
  if (sc.kill && srv.killPid) a.push('--storm', 'kill', '--kill-pid', String(srv.killPid), '--storm-at-ms', String(sc.kill.atMs));
  return a;
}
async function runLoadgen(args, jsonPath, timeoutS) {
  return new Promise((res) => {
    const c = spawn(loadgen, [...args, '--json', jsonPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => c.kill('SIGKILL'), (timeoutS + 15) * 1000);
    c.on('exit', (code) => {
      clearTimeout(t);
      let r = null;
      try { r = JSON.parse(readFileSync(jsonPath, 'utf8')); } catch { r = { ok: false, first_error: `no result (exit ${code}) ${err.slice(0, 300)}` }; }
      r.exit_code = code;
      res(r);
    });
  });
}

// --- scenarios ---------------------------------------------------------------------------------------
const fan = (name, tp, subs, msgs, k, servers = ['pushwire', 'nchan', 'node']) => ({
  name, servers, group: 'fanout', transport: tp, subs,
  args: ['--transport', tp, '--subs', String(subs), '--messages', String(msgs), '--size', '100',
    '--mode', 'closed', '--inflight', String(k), '--connect-rate', '10000', '--timeout', '90', '--drain-ms', '15000'],
});
const lat = (name, tp, subs, rate, secs) => ({
  name, servers: ['pushwire', 'nchan', 'node'], group: 'latency', transport: tp, subs,
  args: ['--transport', tp, '--subs', String(subs), '--messages', String(rate * secs), '--size', '100',
    '--mode', 'rate', '--rate', String(rate), '--connect-rate', '10000', '--timeout', '90'],
});
const mem = (name, tp) => ({
  name, servers: ['pushwire', 'nchan', 'node'], group: 'memory', transport: tp, subs: 10000,
  args: ['--transport', tp, '--subs', '10000', '--messages', '1', '--size', '100', '--mode', 'closed',
    '--connect-rate', '10000', '--idle-ms', '2000', '--timeout', '90'],
});

// The late reader: the fanout-*-1k-closed runs with subscriber sockets read at most every 50 ms
// while publishing, so frames pile up between reads. Not what a browser does; kept under its own
// name so it is never mistaken for the default figures.
const late = (name, tp) => {
  const s = fan(name, tp, 1000, 500, 1, ['pushwire', 'nchan']);
  return { ...s, group: 'lateread', args: [...s.args, '--read-interval-us', '50000'] };
};

const quickScenarios = [fan('fanout-ws-1k-closed', 'ws', 1000, 500, 1), fan('fanout-sse-1k-closed', 'sse', 1000, 500, 1)];
const fullScenarios = [
  ...quickScenarios,
  fan('fanout-ws-1k-k8', 'ws', 1000, 800, 8), fan('fanout-sse-1k-k8', 'sse', 1000, 800, 8),
  late('lateread-ws-1k-closed', 'ws'), late('lateread-sse-1k-closed', 'sse'),
  fan('fanout-ws-10k-closed', 'ws', 10000, 60, 1), fan('fanout-ws-10k-k8', 'ws', 10000, 100, 8),
  fan('fanout-sse-10k-closed', 'sse', 10000, 60, 1), fan('fanout-sse-10k-k8', 'sse', 10000, 100, 8),
  { ...fan('poll-1k', 'poll', 1000, 300, 1, ['pushwire', 'nchan']), group: 'poll' },
  lat('latency-ws-1k-50ps', 'ws', 1000, 50, 8), lat('latency-sse-1k-50ps', 'sse', 1000, 50, 8),
  lat('latency-ws-10k-5ps', 'ws', 10000, 5, 8), lat('latency-sse-10k-5ps', 'sse', 10000, 5, 8),
  mem('memory-ws-10k', 'ws'), mem('memory-sse-10k', 'sse'),
  { name: 'slow-reader', servers: ['pushwire'], group: 'special', special: 'slow', transport: 'ws', stall: 1 },
  // Issue 19's stalled-reader case: 10 of 1,000 stalled, on both transports, beside Nchan.
  { name: 'slow-reader-ws-10', servers: ['pushwire', 'nchan'], group: 'special', special: 'slow', transport: 'ws', stall: 10 },
  { name: 'slow-reader-sse-10', servers: ['pushwire', 'nchan'], group: 'special', special: 'slow', transport: 'sse', stall: 10 },
  { name: 'storm-client-10k', servers: ['pushwire', 'nchan'], group: 'storm', transport: 'ws', subs: 10000,
    args: ['--transport', 'ws', '--subs', '10000', '--messages', '150', '--size', '100', '--mode', 'rate', '--rate', '10',
      '--storm', 'client', '--storm-at-ms', '4000', '--connect-rate', '10000', '--max-pending', '4000', '--timeout', '90', '--drain-ms', '15000'] },
  // The same storm over SSE (issue 19: "caught up no later than Nchan's on both transports").
  { name: 'storm-client-sse-10k', servers: ['pushwire', 'nchan'], group: 'storm', transport: 'sse', subs: 10000,
    args: ['--transport', 'sse', '--subs', '10000', '--messages', '150', '--size', '100', '--mode', 'rate', '--rate', '10',
      '--storm', 'client', '--storm-at-ms', '4000', '--connect-rate', '10000', '--max-pending', '4000', '--timeout', '90', '--drain-ms', '15000'] },
  { name: 'storm-server-10k', servers: ['pushwire'], group: 'storm', transport: 'ws', subs: 10000,
    args: ['--transport', 'ws', '--subs', '10000', '--messages', '150', '--size', '100', '--mode', 'rate', '--rate', '10',
      '--storm', 'server', '--storm-at-ms', '4000', '--jitter-ms', '2000', '--connect-rate', '10000', '--max-pending', '4000', '--timeout', '90', '--drain-ms', '15000'] },
  { name: 'scale-19k', servers: ['pushwire'], group: 'special', special: 'scale' },
];
// Redis scale-out (issue 13 item 8), against the memory engine's figures on one node beside them.
// `base` is the server the ratios are taken against. The kill scenarios run only on the groups.
const RS = ['pushwire-redis', 'nchan-redis', 'pushwire'];
const redisFan = (name, subs, msgs) => ({ ...fan(name, 'ws', subs, msgs, 1, RS), group: 'redis', base: 'pushwire-redis' });
const redisLat = (name, subs, secs) => ({ ...lat(name, 'ws', subs, 50, secs), servers: RS, group: 'redis-latency', base: 'pushwire-redis' });
const redisKill = (name, subs) => ({
  name, servers: ['pushwire-redis', 'nchan-redis'], group: 'redis-kill', transport: 'ws', subs, base: 'pushwire-redis',
  kill: { atMs: 3000 },
  args: ['--transport', 'ws', '--subs', String(subs), '--messages', '300', '--size', '100', '--mode', 'rate', '--rate', '50',
    '--connect-rate', '10000', '--max-pending', '4000', '--timeout', '90', '--drain-ms', '20000'],
});
const redisScenarios = [
  redisFan('redis-fanout-ws-1k', 1000, 500), redisFan('redis-fanout-ws-10k', 10000, 60),
  redisLat('redis-latency-ws-1k-50ps', 1000, 8), redisLat('redis-latency-ws-10k-50ps', 10000, 6),
  redisKill('redis-kill-ws-1k', 1000), redisKill('redis-kill-ws-10k', 10000),
];
// The Pusher endpoint (issue 14 item 7): pusher-protocol subscribers (/app/{key}) against Pushwire's
// own protocol on the same server build and Nchan; the ratios are taken against the Pusher endpoint.
const pusherFan = (name, subs, msgs) => ({ ...fan(name, 'ws', subs, msgs, 1, ['pushwire-pusher', 'pushwire', 'nchan']), group: 'pusher', base: 'pushwire-pusher' });
const pusherScenarios = [pusherFan('pusher-fanout-ws-1k', 1000, 500), pusherFan('pusher-fanout-ws-10k', 10000, 60)];
// Every scenario by name, whatever the mode: --only picks from all of them (a trailing * is allowed).
const allScenarios = [...fullScenarios, ...redisScenarios, ...pusherScenarios];
// --quick --only redis-: the 1,000-subscriber Redis scenarios (a quick look at the scale-out).
const pool = quick ? [...quickScenarios, ...redisScenarios.filter((s) => s.subs <= 1000)] : allScenarios;
let scenarios = quick ? quickScenarios : allScenarios;
if (only) scenarios = pool.filter((s) => only.some((o) => s.name.startsWith(o.replace(/\*$/, ''))));
// The read interval a scenario asks for (the last --read-interval-us wins, as in the generator;
// --loadgen-args come last); 0 = the generator's default. The table shows what the runs reported.
const argReadUs = (args) => {
  let v = 0;
  for (let i = 0; i + 1 < args.length; ++i) if (args[i] === '--read-interval-us') v = Number(args[i + 1]);
  return v;
};
const plannedReadUs = (sc) => argReadUs([...(sc.args ?? []), ...lgExtra]);
if (listOnly) {
  for (const sc of scenarios)
    console.log(`${sc.name.padEnd(24)} ${sc.group.padEnd(9)} ${sc.servers.join(',').padEnd(19)} read ${String(plannedReadUs(sc)).padStart(5)} us  ${sc.special ? `(${sc.special})` : [...sc.args, ...lgExtra].join(' ')}${sc.kill ? ` --storm kill (second node) --storm-at-ms ${sc.kill.atMs}` : ''}`);
  process.exit(0);
}

// Slow reader: the same 1,000-subscriber 16 KB run without and with `sc.stall` stalled readers.
async function slowReader(srv, base, sc) {
  const args = ['--transport', sc.transport, '--subs', '1000', '--messages', '600', '--size', '16384', '--mode', 'closed',
    '--inflight', '1', '--connect-rate', '10000', '--timeout', '90', '--drain-ms', '15000'];
  const a = await runLoadgen(lgArgs(srv, { args }), `${base}.nostall.json`, 90);
  const b = await runLoadgen(lgArgs(srv, { args: [...args, '--stall', String(sc.stall)] }), `${base}.stall.json`, 90);
  return { ...b, baseline: a, ratio_vs_unstalled: a.deliveries_per_s ? b.deliveries_per_s / a.deliveries_per_s : 0 };
}
// Scale: 19,000 idle websocket connections in one server process, a publish reaching all of them,
// and a second generator process pushing past the descriptor cap (expects clean refusals).
async function scale(srv, base) {
  const ready = `${base}.ready`, go = `${base}.go`;
  const mainP = runLoadgen(lgArgs(srv, { args: ['--transport', 'ws', '--subs', '19000', '--messages', '1', '--size', '100',
    '--connect-rate', '10000', '--max-pending', '2000', '--idle-ms', '2000', '--ready-file', ready, '--go-file', go,
    '--timeout', '150', '--connect-timeout', '90'] }), `${base}.json`, 150);
  let extra = null;
  try {
    await waitFile(ready, 120000);
    extra = await runLoadgen(lgArgs(srv, { args: ['--transport', 'ws', '--subs', '1500', '--expect-refusal',
      '--connect-rate', '5000', '--connect-timeout', '15', '--timeout', '30', '--idle-ms', '0'] }), `${base}.beyond.json`, 30);
    // Is the server still healthy at the cap? /healthz on a fresh connection.
    extra.healthz_after = await fetch(`http://127.0.0.1:${srv.port}/healthz`).then((r) => r.status).catch((e) => String(e));
  } catch (e) { extra = { error: String(e) }; }
  writeFileSync(go, '1');
  const r = await mainP;
  return { ...r, beyond_cap: extra };
}

// --- run ---------------------------------------------------------------------------------------------------
const results = {};
const log = (s) => process.stdout.write(s + '\n');
log(`Pushwire benchmark ${quick ? '(quick) ' : ''}run ${runId}: server ${serverBin}, ${cpus().length} cores; results in ${outDir}`);
log(`server binary ${serverBin} (${statSync(serverBin).mtime.toISOString()}), load generator ${loadgen}`);
// --summarize: the reports of an earlier run, one per round (`.rN` when it had several).
const loadRun = (sc) => {
  results[sc.name] = {};
  for (const kind of sc.servers.filter(wanted)) {
    const read = (f) => { try { return JSON.parse(readFileSync(join(outDir, f), 'utf8')); } catch { return null; } };
    let rs = [read(`${sc.name}.${kind}.json`)].filter(Boolean);
    if (!rs.length) for (let r; (r = read(`${sc.name}.${kind}.r${rs.length}.json`)); ) rs.push(r);
    if (rs.length) results[sc.name][kind] = rs;
  }
};
for (const sc of scenarios) {
  if (resummarize) { loadRun(sc); continue; }
  results[sc.name] = {};
  for (let round = 0; round < rounds; ++round) {
    for (const kind of sc.servers.filter(wanted)) {
      let srv;
      const base = join(outDir, `${sc.name}.${kind}${rounds > 1 ? '.r' + round : ''}`);
      try {
        srv = await startServer(kind);
        let r;
        if (sc.special === 'slow') r = await slowReader(srv, base, sc);
        else if (sc.special === 'scale') r = await scale(srv, base);
        else r = await runLoadgen(lgArgs(srv, sc), `${base}.json`, 90);
        r.scenario = sc.name;
        r.server = kind;
        (results[sc.name][kind] ??= []).push(r);
        writeFileSync(`${base}.json`, JSON.stringify(r) + '\n');
        log(`  ${sc.name.padEnd(22)} ${kind.padEnd(8)} ${r.ok ? 'ok  ' : 'FAIL'} ${fmt(r)}${r.first_error ? '  [' + r.first_error.slice(0, 90) + ']' : ''}`);
      } catch (e) {
        log(`  ${sc.name} ${kind}: error ${e.message}`);
      } finally {
        await stopServer(srv);
      }
    }
  }
}
function fmt(r) {
  const p = (x, d = 0) => (x === undefined || x === null ? '-' : Number(x).toFixed(d));
  let s = `read ${p(r.read_interval_us)}us dlv/s ${p(r.deliveries_per_s)} cpu ${p(r.server_cpu_us_per_delivery, 2)}us/dlv p99 ${p(r.latency_us?.p99 / 1000, 1)}ms ` +
    `rss/conn ${p(r.rss_per_conn_bytes)}B lost/dup/ooo ${r.lost}/${r.duplicated}/${r.out_of_order} lg-cpu ${p(r.loadgen_cpu_us_per_delivery, 2)}us` +
    `${r.cpu_saturated ? ' (saturated)' : ''}`;
  if (r.storm) s += ` storm back ${r.storm.back}/${r.storm.dropped} return p50/max ${p(r.storm.return_ms.p50)}/${p(r.storm.return_ms.max)}ms catch-up max ${p(r.storm.catchup_ms.max)}ms`;
  if (r.stall) s += ` stalled closed ${r.stall.closed} (4008: ${r.stall.closed_4008}) rss+${r.stall.rss_growth_kb}KB vs-unstalled ${p(r.ratio_vs_unstalled, 3)}`;
  if (r.beyond_cap) s += ` connect ${p(r.connect?.seconds, 1)}s; beyond cap: ${r.beyond_cap.connect?.ready ?? '?'} accepted, ${r.beyond_cap.connect?.refused ?? '?'} refused (503: ${r.beyond_cap.connect?.refused_http_503 ?? '?'}), healthz ${r.beyond_cap.healthz_after}`;
  return s;
}

// --- ratios ---------------------------------------------------------------------------------------------------
const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const h = Math.floor(v.length / 2);
  return v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
};
// The subscriber read interval the runs reported (the generator's JSON, so a --loadgen-args override
// shows): one number when every run agrees, else the distinct values (null for a run that did not
// report one, e.g. an old result); null when no run reported one.
const readUs = (rs) => {
  const v = [...new Set(rs.map((r) => (Number.isFinite(r.read_interval_us) ? r.read_interval_us : null)))].sort((a, b) => a - b);
  return v.length === 0 || (v.length === 1 && v[0] === null) ? null : v.length === 1 ? v[0] : v;
};
const showReadUs = (x) => (x === null || x === undefined ? '?' : Array.isArray(x) ? x.map((v) => v ?? '?').join('/') : String(x));
const summary = { run: runId, quick, loadgen_args: lgExtra, machine: { cores: cpus().length, model: cpus()[0]?.model, shared: true }, server: serverBin, scenarios: {} };
log('\nRatios (> 1 = Pushwire better; medians over rounds; read µs = subscriber read interval, 0 = read when readable):');
log('scenario               peer      read µs  deliveries/s  cpu/delivery  p99 latency  rss/conn');
for (const sc of scenarios) {
  const res = results[sc.name];
  const m = {};
  for (const [k, rs] of Object.entries(res)) {
    m[k] = {
      deliveries_per_s: median(rs.map((r) => r.deliveries_per_s)),
      cpu_us_per_delivery: median(rs.map((r) => r.server_cpu_us_per_delivery)),
      p99_us: median(rs.map((r) => r.latency_us?.p99)),
      rss_per_conn: median(rs.map((r) => r.rss_per_conn_bytes)),
      catchup_max_ms: median(rs.map((r) => r.storm?.catchup_ms?.max)),
      ok: rs.every((r) => r.ok),
      saturated: rs.some((r) => r.cpu_saturated),
      loadgen_cpu_us_per_delivery: median(rs.map((r) => r.loadgen_cpu_us_per_delivery)),
      read_interval_us: readUs(rs),
    };
  }
  const scRead = readUs(Object.values(res).flat());
  summary.scenarios[sc.name] = { group: sc.group, transport: sc.transport, subscribers: sc.subs, read_interval_us: scRead, servers: m, ratios: {} };
  if (scRead !== null && showReadUs(scRead) !== String(plannedReadUs(sc)))
    log(`${sc.name}: the runs report read interval ${showReadUs(scRead)} µs, the scenario asks for ${plannedReadUs(sc)} µs`);
  const baseKind = sc.base ?? 'pushwire';
  const pw = m[baseKind];
  if (!pw) continue;
  // Pushwire-only scenarios (no ratio) still get a row, so their read interval is in the table.
  if (Object.keys(m).length === 1) log(`${sc.name.padEnd(22)} ${'-'.padEnd(8)} ${showReadUs(pw.read_interval_us).padStart(7)}  (no peer)`);
  for (const peer of Object.keys(m).filter((k) => k !== baseKind)) {
    const q = m[peer];
    const ratio = {
      deliveries_per_s: pw.deliveries_per_s / q.deliveries_per_s,
      cpu_per_delivery: q.cpu_us_per_delivery / pw.cpu_us_per_delivery,
      p99_latency: q.p99_us / pw.p99_us,
      rss_per_conn: q.rss_per_conn / pw.rss_per_conn,
      catchup: q.catchup_max_ms / pw.catchup_max_ms,
    };
    summary.scenarios[sc.name].ratios[peer] = ratio;
    const f = (x) => (Number.isFinite(x) ? x.toFixed(2).padStart(12) : '           -');
    const showRss = sc.group === 'memory';
    const showLat = sc.group === 'latency' || sc.group === 'storm' || sc.group === 'redis-latency' || sc.group === 'redis-kill';
    const rd = showReadUs(readUs([...res[baseKind], ...res[peer]]));
    log(`${sc.name.padEnd(22)} ${peer.padEnd(8)} ${rd.padStart(7)}  ${f(sc.group === 'memory' ? NaN : ratio.deliveries_per_s)}  ${f(sc.group === 'memory' ? NaN : ratio.cpu_per_delivery)}  ${f(showLat ? ratio.p99_latency : NaN)} ${f(showRss ? ratio.rss_per_conn : NaN)}` +
      (sc.group === 'storm' || sc.group === 'redis-kill' ? `  catch-up ${f(ratio.catchup)}` : '') +
      (sc.base ? `  (${baseKind} vs ${peer})` : ''));
  }
}
summary.elapsed_s = (Date.now() - t0) / 1000;
if (resummarize) {
  try { summary.elapsed_s = JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8')).elapsed_s; } catch {}
}
writeFileSync(join(outDir, 'summary.json'), JSON.stringify(summary, null, 1) + '\n');
if (resummarize) process.exit(0);
const latest = join(here, 'results', only || lgExtra.length ? 'latest-partial' : quick ? 'latest-quick' : 'latest');
try { unlinkSync(latest); } catch {}
try { symlinkSync(runId, latest); } catch {}
log(`\ndone in ${summary.elapsed_s.toFixed(0)} s; ${join(outDir, 'summary.json')}; charts: bench/chart.sh ${outDir}`);
