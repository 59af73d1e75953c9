// Real processes for the cluster tests (issue 13, DECISIONS.md §23): a redis-server on a free port in
// a temp dir, N Pushwire nodes on the Redis engine, and nginx as a round-robin balancer with no
// stickiness in front of them. Everything listens on 127.0.0.1, is probed for readiness (PING over a
// socket, the port file, a TCP connect) and is stopped by PID; no system-wide service is used.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { API_KEY, serverBin, waitFor } from '../js/helpers.mjs';

export { API_KEY, FAST, loadClient, once, serverBin, waitFor } from '../js/helpers.mjs';
const run = promisify(execFile);

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// One child process with its stderr kept (bounded) and its exit recorded.
function child(cmd, args, opts = {}) {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  const c = { proc, pid: proc.pid, log: '', exited: null };
  const keep = (d) => {
    if (c.log.length < 200000) c.log += d;
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  c.exitPromise = new Promise((resolve) => proc.on('exit', (code, signal) => {
    c.exited = { code, signal };
    resolve(c.exited);
  }));
  return c;
}

async function stopChild(c, signal = 'SIGTERM', graceMs = 5000) {
  if (!c || c.exited) return;
  c.proc.kill(signal);
  const t = setTimeout(() => c.proc.kill('SIGKILL'), graceMs);
  await c.exitPromise;
  clearTimeout(t);
}

// Sends one inline command and resolves with the first reply line (or null on any error).
function redisLine(port, command, timeoutMs = 500) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    const done = (v) => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done(null), timeoutMs);
    s.on('connect', () => s.write(`${command}\r\n`));
    s.on('data', (d) => {
      buf += d;
      const i = buf.indexOf('\r\n');
      if (i >= 0) done(buf.slice(0, i));
    });
    s.on('error', () => done(null));
  });
}

// redis-server on a free port, data dir in a temp dir. `persist: true` keeps every write on disk
// (AOF, fsync always), so a SIGKILL loses nothing and a restart from the same dir has all the data.
// restart() starts it again on the same port and dir (the nodes keep their URL).
// `unixSocket: true` also listens on DIR/redis.sock (r.socket).
export async function startRedis({ persist = false, unixSocket = false } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'pushwire-redis-'));
  const port = await freePort();
  const socket = join(dir, 'redis.sock');
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', persist ? 'yes' : 'no', '--appendfsync', 'always', '--daemonize', 'no',
    '--logfile', '', '--protected-mode', 'no', ...(unixSocket ? ['--unixsocket', socket, '--unixsocketperm', '700'] : [])];
  const r = { port, dir, socket: unixSocket ? socket : null, url: `redis://127.0.0.1:${port}/0`, c: null };
  r.start = async () => {
    r.c = child('redis-server', args);
    await waitFor(async () => {
      if (r.c.exited) throw new Error(`redis-server exited early (${JSON.stringify(r.c.exited)}): ${r.c.log}`);
      // A server still loading its AOF answers -LOADING, which is not ready.
      return (await redisLine(port, 'PING')) === '+PONG';
    }, { timeoutMs: 10000, what: `redis-server on ${port}` }).catch(async (e) => {
      await stopChild(r.c, 'SIGKILL');
      throw e;
    });
    r.pid = r.c.pid;
    return r;
  };
  r.kill = async () => stopChild(r.c, 'SIGKILL');
  // A Redis that stops answering but keeps its connections open (SIGSTOP / SIGCONT).
  r.pause = () => r.c.proc.kill('SIGSTOP');
  r.resume = () => r.c.proc.kill('SIGCONT');
  r.stop = async () => stopChild(r.c, 'SIGTERM');
  r.restart = async () => {
    await r.kill();
    return r.start();
  };
  // redis-cli with the given arguments; resolves with stdout.
  r.cli = async (...a) => (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...a])).stdout;
  r.keys = async (pattern = 'pushwire:*') =>
    (await r.cli('--scan', '--pattern', pattern)).split('\n').filter(Boolean);
  r.cleanup = async () => {
    await r.kill();
    await rm(dir, { recursive: true, force: true });
  };
  return r.start();
}

// Short timings for every node: heartbeats, long-poll holds, presence leases.
export const NODE_FLAGS = ['--ping-interval-ms', '1000', '--poll-hold-ms', '1000', '--presence-lease-ms', '2000',
  '--history-size', '1000', '--shutdown-timeout-ms', '1000'];

// A Pushwire node on the Redis engine. It listens on a fixed free port, so a node restarted after a
// SIGKILL comes back where the balancer expects it. api() answers { status, json, text } without
// throwing, so tests can check refusals (503/4022); apiOk() throws unless 2xx.
// `via`: how the engine and Redis URLs are given — 'flags' (--engine, --redis), 'env'
// (PUSHWIRE_ENGINE, PUSHWIRE_REDIS) or 'config' (keys of a --config JSON file).
export async function startNode({ redis, id, extra = [], port, via = 'flags' } = {}) {
  if (!existsSync(serverBin)) throw new Error(`server binary not found: ${serverBin} (set PUSHWIRE_SERVER)`);
  const dir = await mkdtemp(join(tmpdir(), 'pushwire-node-'));
  const n = { id, dir, port: port ?? (await freePort()), c: null };
  const urls = Array.isArray(redis) ? redis.map((r) => r.url ?? r).join(',') : redis.url ?? redis;
  n.url = `http://127.0.0.1:${n.port}`;
  n.start = async () => {
    const portFile = join(dir, 'port');
    await rm(portFile, { force: true });
    const configFile = join(dir, 'config.json');
    if (via === 'config') await writeFile(configFile, JSON.stringify({ engine: 'redis', redis: urls }));
    const engineArgs = via === 'flags' ? ['--engine', 'redis', '--redis', urls]
      : via === 'config' ? ['--config', configFile] : [];
    const args = ['--port', String(n.port), '--port-file', portFile, '--demo', '--api-key', API_KEY,
      '--log-level', 'warn', ...engineArgs, ...(id ? ['--node-id', id] : []), ...NODE_FLAGS, ...extra];
    const env = via === 'env' ? { ...process.env, PUSHWIRE_ENGINE: 'redis', PUSHWIRE_REDIS: urls } : process.env;
    n.c = child(serverBin, args, { env });
    await waitFor(async () => {
      if (n.c.exited) throw new Error(`node ${id} exited early (${JSON.stringify(n.c.exited)}): ${n.c.log}`);
      try {
        return Number.parseInt(await readFile(portFile, 'utf8'), 10) > 0;
      } catch {
        return false;
      }
    }, { timeoutMs: 15000, what: `node ${id} port file` }).catch(async (e) => {
      await stopChild(n.c, 'SIGKILL');
      throw e;
    });
    n.pid = n.c.pid;
    return n;
  };
  n.alive = () => n.c && !n.c.exited;
  n.log = () => n.c?.log ?? '';
  n.kill = async () => stopChild(n.c, 'SIGKILL');
  n.stop = async () => stopChild(n.c, 'SIGTERM');
  n.restart = async () => {
    await n.kill();
    return n.start();
  };
  n.api = (method, path, body, timeoutMs = 5000) => api(n.url, method, path, body, timeoutMs);
  n.apiOk = async (method, path, body) => {
    const r = await n.api(method, path, body);
    if (r.status < 200 || r.status > 299) {
      throw Object.assign(new Error(`${n.id ?? n.url} ${method} ${path}: HTTP ${r.status} ${r.text}`), r);
    }
    return r.json;
  };
  n.publish = (channel, data, extraBody = {}) => n.apiOk('POST', '/api/publish', { channel, data, ...extraBody });
  n.history = (channel, q = '') => n.apiOk('GET', `/api/history?channel=${encodeURIComponent(channel)}${q}`);
  n.presence = (channel) => n.apiOk('GET', `/api/presence?channel=${encodeURIComponent(channel)}`);
  n.info = () => n.apiOk('GET', '/api/info');
  // This node's own open connections of one transport (/metrics is per node by nature).
  n.connections = async (transport) => {
    const r = await n.api('GET', '/metrics');
    const m = new RegExp(`pushwire_connections\\{transport="${transport}"\\} (\\d+)`).exec(r.text ?? '');
    return m ? Number(m[1]) : 0;
  };
  n.cleanup = async () => {
    await n.kill();
    await rm(dir, { recursive: true, force: true });
  };
  return n.start();
}

export async function api(base, method, path, body, timeoutMs = 5000) {
  const started = Date.now();
  try {
    const res = await fetch(base + path, {
      method,
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, json, text, ms: Date.now() - started };
  } catch (e) {
    return { status: 0, json: null, text: String(e), ms: Date.now() - started, error: e };
  }
}

// nginx as a plain round-robin balancer (no ip_hash, no cookies) with what WebSocket, SSE and
// long-polling need: HTTP/1.1 upstream, Upgrade/Connection passed on, no response buffering, long
// read timeouts. A dead upstream is skipped for the next one (proxy_next_upstream; refused at once
// on loopback) and never marked down (max_fails=0): nodes come back within a test, and a balancer
// that still counted a restarted node as down would answer 502 with every node up.
// `nodes`: ports or nodes. `buffering`: the response-buffering directives; the default streams
// (docs/scaling.md), tests of a buffering proxy (tests/browser/proxy.test.mjs) pass their own.
export const NGINX_STREAMING = 'proxy_buffering off;';
export async function startNginx(nodes, { buffering = NGINX_STREAMING } = {}) {
  const ports = nodes.map((n) => n.port ?? n);
  return runNginx((port) => `  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream pushwire {
${ports.map((p) => `    server 127.0.0.1:${p} max_fails=0;`).join('\n')}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://pushwire;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      ${buffering}
      proxy_request_buffering off;
      proxy_cache off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      proxy_connect_timeout 2s;
      proxy_next_upstream error timeout http_502;
    }
  }`);
}

// Debian's nginx in a temp dir on a free port: the main context a Debian install has around its
// sites (temp paths, pid and logs moved into the dir) and the http-level text `site(port)` gives.
// Resolves once the port accepts; `cleanup()` stops it (SIGQUIT, graceful) and removes the dir.
export async function runNginx(site) {
  const dir = await mkdtemp(join(tmpdir(), 'pushwire-nginx-'));
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const port = await freePort();
  const conf = `# written by tests/cluster/cluster.mjs
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
${site(port)}
}
`;
  const confFile = join(dir, 'nginx.conf');
  await writeFile(confFile, conf);
  const c = child('nginx', ['-p', dir, '-c', confFile, '-e', join(dir, 'error.log'), '-g', 'daemon off;']);
  await waitFor(async () => {
    if (c.exited) {
      const err = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
      throw new Error(`nginx exited early (${JSON.stringify(c.exited)}): ${c.log} ${err}`);
    }
    return new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
  }, { timeoutMs: 10000, what: `nginx on ${port}` });
  return {
    port,
    pid: c.pid,
    url: `http://127.0.0.1:${port}`,
    log: () => c.log,
    async cleanup() {
      await stopChild(c, 'SIGQUIT');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// Redis, `n` nodes (ids n1..nN) and, with `balancer`, nginx in front of them.
export async function startCluster({ nodes = 2, balancer = false, persist = false, shards = 1, extra = [] } = {}) {
  const redis = [];
  const list = [];
  let nginx = null;
  try {
    for (let i = 0; i < shards; i++) redis.push(await startRedis({ persist }));
    const tag = Math.random().toString(36).slice(2, 6);
    for (let i = 1; i <= nodes; i++) list.push(await startNode({ redis, id: `n${i}-${tag}`, extra }));
    if (balancer) nginx = await startNginx(list);
  } catch (e) {
    // Whatever did start must not outlive the failure (it would keep the test process alive).
    for (const n of list) await n.cleanup();
    for (const r of redis) await r.cleanup();
    throw e;
  }
  return {
    redis: redis[0],
    shards: redis,
    nodes: list,
    nginx,
    async cleanup() {
      await nginx?.cleanup();
      for (const n of list) await n.cleanup();
      for (const r of redis) await r.cleanup();
    },
  };
}

// Reads a text/event-stream response with fetch, as an EventSource would: events with their id,
// event name and data. `headers` may carry Last-Event-ID. events[] fills as they arrive; retryMs is
// the last `retry:` field.
export function openSse(url, headers = {}) {
  const ac = new AbortController();
  const s = { events: [], status: 0, closed: false, error: null };
  s.close = () => ac.abort();
  s.ready = (async () => {
    const res = await fetch(url, { headers: { Accept: 'text/event-stream', ...headers }, signal: ac.signal });
    s.status = res.status;
    if (res.status !== 200) {
      s.body = await res.text();
      s.closed = true;
      return;
    }
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let ev = { id: null, event: 'message', data: [] };
    (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i).replace(/\r$/, '');
            buf = buf.slice(i + 1);
            if (line === '') {
              if (ev.data.length) {
                const text = ev.data.join('\n');
                let json = null;
                try {
                  json = JSON.parse(text);
                } catch {
                  /* keep the text */
                }
                s.events.push({ id: ev.id, event: ev.event, data: text, json });
              }
              ev = { id: null, event: 'message', data: [] };
              continue;
            }
            if (line.startsWith(':')) continue;
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (field === 'id') ev.id = value;
            else if (field === 'event') ev.event = value;
            else if (field === 'data') ev.data.push(value);
            else if (field === 'retry' && /^\d+$/.test(value)) s.retryMs = Number(value);
          }
        }
      } catch (e) {
        if (e.name !== 'AbortError') s.error = e;
      } finally {
        s.closed = true;
      }
    })();
  })();
  // The id of the last event that had one (what a browser sends as Last-Event-ID).
  s.lastId = () => [...s.events].reverse().find((e) => e.id)?.id ?? null;
  s.messages = () => s.events.filter((e) => e.event === 'message' && e.json?.type === 'message').map((e) => e.json);
  s.controls = (type) => s.events.filter((e) => e.event === 'control' && e.json?.type === type).map((e) => e.json);
  return s;
}

// One long-poll request: the frames (NDJSON lines) and the Pushwire-Cursor header.
export async function poll(base, query, timeoutMs = 10000) {
  const res = await fetch(`${base}/poll?${query}`, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  const frames = text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  return { status: res.status, frames, cursor: res.headers.get('pushwire-cursor'), text };
}
