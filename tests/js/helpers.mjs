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

// Short server-side timings so that heartbeats and holds show up within a test.
export const FAST_SERVER_FLAGS = [];

// Starts the server; `extra` flags are appended. Returns { url, port, api, publish, disconnect, stop, log }.
export async function startServer(extra = []) {
  if (!existsSync(serverBin)) throw new Error(`server binary not found: ${serverBin} (set PUSHWIRE_SERVER)`);
  const dir = await mkdtemp(join(tmpdir(), 'pushwire-js-'));
  const portFile = join(dir, 'port');
  const args = ['--port', '0', '--port-file', portFile, '--demo', '--api-key', API_KEY, '--log-level', 'warn',
    ...FAST_SERVER_FLAGS, ...extra];
  const proc = spawn(serverBin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => {
    if (log.length < 200000) log += d;
  });
  let exited = null;
  proc.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  const port = await waitFor(async () => {
    if (exited) throw new Error(`server exited early (${JSON.stringify(exited)}): ${log}`);
    try {
      const n = Number.parseInt(await readFile(portFile, 'utf8'), 10);
      return n > 0 ? n : null;
    } catch {
      return null;
    }
  }, { timeoutMs: 10000, what: 'the port file' });
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
    log: () => log,
    publish: (channel, data) => api('POST', '/api/publish', { channel, data }),
    // A crash, not a shutdown (SIGKILL: no close frames); stop() still removes the temp dir.
    kill: (signal = 'SIGKILL') => proc.kill(signal),
    // Everyone unless the body names a client or a user (the API wants exactly one target).
    disconnect: (body = {}) => api('POST', '/api/disconnect', { reconnect: true, after_ms: 0, jitter_ms: 50,
      ...(body.client || body.user ? {} : { all: true }), ...body }),
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        await waitFor(() => exited, { timeoutMs: 5000, what: 'server exit' }).catch(() => proc.kill('SIGKILL'));
      }
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
