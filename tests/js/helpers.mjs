// Shared test helpers: start the real server binary on an ephemeral port, talk to its HTTP API, and
// wait for conditions with a deadline (DECISIONS.md §19: no sleeps as synchronisation).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repo = fileURLToPath(new URL('../../', import.meta.url));
export const serverBin = process.env.PUSHWIRE_SERVER || join(repo, 'build/server/pushwire-server');
export const API_KEY = 'testkey';
// The built Node entry, as a user of the package gets it.
export const nodeEntry = join(repo, 'client-wasm/dist/pushwire.node.mjs');

export async function loadClient() {
  return import(pathToFileURL(nodeEntry).href);
}

// Resolves once cond() returns a truthy value (which it returns); rejects after timeoutMs.
export async function waitFor(cond, { timeoutMs = 10000, what = 'condition', intervalMs = 5 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// Resolves with the first event of `name` on `emitter` for which pred(...) holds.
export function once(emitter, name, pred = () => true, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for '${name}'`));
    }, timeoutMs);
    const off = emitter.on(name, (...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args[0]);
    });
  });
}

// Spawns the server binary (`bin`) with --port 0 --port-file <dir>/… then `args` (a --port there wins,
// e.g. a restart on the same port) and resolves once it listens: { proc, port, log(), stdout(),
// stderr(), exited() } (log() is both streams, each kept up to `logCap` characters); rejects with the
// log when it exits first. With `expectExit` it resolves once the process exited instead. `env`
// replaces the environment when given.
export async function spawnServer({ bin = serverBin, args = [], env, dir, logCap = 400000, expectExit = false,
  timeoutMs = 10000 } = {}) {
  if (!existsSync(bin)) throw new Error(`server binary not found: ${bin} (set PUSHWIRE_SERVER)`);
  const portFile = join(dir, `port-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const proc = spawn(bin, ['--port', '0', '--port-file', portFile, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let log = '', stdout = '', stderr = '';
  const keep = (d, add) => {
    if (log.length < logCap) log += d;
    add(String(d));
  };
  proc.stderr.on('data', (d) => keep(d, (t) => { if (stderr.length < logCap) stderr += t; }));
  proc.stdout.on('data', (d) => keep(d, (t) => { if (stdout.length < logCap) stdout += t; }));
  let exited = null;
  proc.on('exit', (code, signal) => { exited = { code, signal }; });
  const self = { proc, log: () => log, stdout: () => stdout, stderr: () => stderr, exited: () => exited };
  if (expectExit) {
    await waitFor(() => exited, { timeoutMs, what: 'the server to exit' });
    return self;
  }
  self.port = await waitFor(async () => {
    if (exited) throw new Error(`server exited early (${JSON.stringify(exited)}): ${log}`);
    try {
      const n = Number.parseInt(await readFile(portFile, 'utf8'), 10);
      return n > 0 ? n : null;
    } catch {
      return null;
    }
  }, { timeoutMs, what: 'the port file' });
  return self;
}

// SIGTERM, then SIGKILL if `proc` has not exited within `timeoutMs`; resolves with how it exited.
export async function stopProc(proc, exited, timeoutMs) {
  if (!exited()) {
    proc.kill('SIGTERM');
    await waitFor(() => exited(), { timeoutMs, what: 'server exit' }).catch(() => proc.kill('SIGKILL'));
  }
  return exited();
}

// Short server-side timings so that heartbeats and holds show up within a test.
export const FAST_SERVER_FLAGS = [];

// Starts the server; `extra` flags are appended. Returns { url, port, api, publish, disconnect, stop, log }.
export async function startServer(extra = []) {
  const dir = await mkdtemp(join(tmpdir(), 'pushwire-js-'));
  const { proc, port, log, exited } = await spawnServer({
    dir, logCap: 200000,
    args: ['--demo', '--api-key', API_KEY, '--log-level', 'warn', ...FAST_SERVER_FLAGS, ...extra],
  });
  const url = `http://127.0.0.1:${port}`;

  async function api(method, path, body) {
    const res = await fetch(url + path, {
      method,
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    if (!res.ok) throw Object.assign(new Error(`${method} ${path}: HTTP ${res.status} ${text}`), { status: res.status, json });
    return json;
  }

  return {
    url,
    port,
    api,
    log,
    publish: (channel, data) => api('POST', '/api/publish', { channel, data }),
    // A crash, not a shutdown (SIGKILL: no close frames); stop() still removes the temp dir.
    kill: (signal = 'SIGKILL') => proc.kill(signal),
    // Everyone unless the body names a client or a user (the API wants exactly one target).
    disconnect: (body = {}) => api('POST', '/api/disconnect', { reconnect: true, after_ms: 0, jitter_ms: 50,
      ...(body.client || body.user ? {} : { all: true }), ...body }),
    async stop() {
      await stopProc(proc, exited, 5000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// Client options that make every client-side timing short.
export const FAST = {
  backoffMinMs: 10,
  backoffMaxMs: 100,
  handshakeTimeoutMs: 3000,
  heartbeatGraceMs: 3000,
  requestTimeoutMs: 5000,
};
