// Real processes for the durable-history tests (issue 17): one server on a fixed free port with a
// --data-dir, which a test kills (SIGKILL) or stops (SIGTERM) and starts again on the same port and
// folder; and a reader that follows a text/event-stream the way a browser's EventSource does.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, freePort, openSse } from '../cluster/cluster.mjs';
import { API_KEY, serverBin, waitFor } from '../js/helpers.mjs';

export { API_KEY, FAST, loadClient, once, waitFor } from '../js/helpers.mjs';
export { api } from '../cluster/cluster.mjs';

export async function tempDir(prefix = 'pushwire-durable-') {
  return mkdtemp(join(tmpdir(), prefix));
}

// A server on `dataDir`. start() waits for its port file; kill()/term() wait for its exit and keep
// its exit status in `exits`. The log of every run so far is in log().
export async function durableServer({ dataDir, extra = [] }) {
  if (!existsSync(serverBin)) throw new Error(`server binary not found: ${serverBin} (set PUSHWIRE_SERVER)`);
  const runDir = await tempDir('pushwire-durable-run-');
  const s = { dataDir, port: await freePort(), runs: 0, exits: [], proc: null, exited: null };
  let log = '';
  s.url = `http://127.0.0.1:${s.port}`;
  s.log = () => log;
  s.start = async () => {
    const portFile = join(runDir, 'port');
    await rm(portFile, { force: true });
    const args = ['--port', String(s.port), '--port-file', portFile, '--api-key', API_KEY, '--log-level', 'info',
      '--data-dir', dataDir, ...extra];
    const proc = spawn(serverBin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const run = { proc, exited: null };
    run.exit = new Promise((resolve) => proc.on('exit', (code, signal) => {
      run.exited = { code, signal };
      resolve(run.exited);
    }));
    proc.stderr.on('data', (d) => {
      if (log.length < 1e6) log += d;
    });
    s.run = run;
    s.runs++;
    await waitFor(async () => {
      if (run.exited) throw new Error(`server exited early (${JSON.stringify(run.exited)}): ${log}`);
      try {
        return Number.parseInt(await readFile(portFile, 'utf8'), 10) === s.port;
      } catch {
        return false;
      }
    }, { timeoutMs: 15000, what: 'the port file' });
    return s;
  };
  s.alive = () => Boolean(s.run && !s.run.exited);
  s.signal = async (signal) => {
    if (!s.alive()) return null;
    s.run.proc.kill(signal);
    const e = await s.run.exit;
    s.exits.push(e);
    return e;
  };
  s.kill = () => s.signal('SIGKILL');
  s.term = () => s.signal('SIGTERM');
  s.api = (method, path, body) => api(s.url, method, path, body);
  s.cleanup = async () => {
    await s.kill();
    await rm(runDir, { recursive: true, force: true });
  };
  return s.start();
}

// An EventSource in all but name: it reads `url`, and when the stream ends or cannot be opened it
// waits the server's `retry:` time and opens it again with the id of the last event it saw as
// Last-Event-ID. A non-200 answer ends it for good, as it ends a browser's EventSource.
// events() holds every event of every connection, in order; opened counts the connections made.
export function eventSource(url) {
  const es = { opened: 0, failed: null, closed: false, streams: [], lastId: null, retryMs: 1000 };
  let current = null;
  (async () => {
    while (!es.closed) {
      const headers = es.lastId ? { 'Last-Event-ID': es.lastId } : {};
      current = openSse(url, headers);
      try {
        await current.ready;
      } catch {
        current.closed = true;   // refused: the server is down
      }
      if (current.status && current.status !== 200) {
        es.failed = `HTTP ${current.status}: ${current.body}`;
        return;
      }
      if (current.status === 200) {
        es.opened++;
        es.streams.push(current);
      }
      await waitFor(() => current.closed || es.closed, { timeoutMs: 600000, what: 'the stream to end', intervalMs: 10 });
      const id = current.lastId();
      if (id) es.lastId = id;
      if (current.retryMs !== undefined) es.retryMs = current.retryMs;
      if (!es.closed) await new Promise((r) => setTimeout(r, es.retryMs));
    }
  })();
  es.events = () => es.streams.flatMap((s) => s.events);
  es.messages = () => es.events().filter((e) => e.event === 'message' && e.json?.type === 'message').map((e) => e.json);
  es.controls = (type) => es.events().filter((e) => e.event === 'control' && e.json?.type === type).map((e) => e.json);
  es.live = () => Boolean(current && current.status === 200 && !current.closed);
  es.close = () => {
    es.closed = true;
    current?.close();
  };
  return es;
}
