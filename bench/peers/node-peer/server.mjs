// Reference peer for Pushwire's benchmark: a small fan-out server on Node's http module and the npm
// `ws` package (pinned in package-lock.json), the way a team would write one in an afternoon.
//
//   GET  /ws?channel=C[&last_event_id=N]   WebSocket subscriber; each message is a text frame holding
//                                          the raw published body
//   GET  /sse?channel=C                    Server-Sent Events; `id: N` + `data: <body>` per message;
//                                          Last-Event-ID (or ?last_event_id=) resumes from the buffer
//   POST /pub?channel=C                    publish the request body; answers {"id":N,"subscribers":n}
//   GET  /healthz                          200 ok
//
// One process (Node is single-threaded), loopback only, a per-channel ring buffer of the last
// 10,000 messages for resume. Usage: node server.mjs [--port P] [--port-file F] [--host 127.0.0.1]
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { WebSocketServer } from 'ws';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const host = opt('--host', '127.0.0.1');
const port = Number(opt('--port', '0'));
const portFile = opt('--port-file', '');
const BUFFER = Number(opt('--buffer', '10000'));

/** @type {Map<string, {id:number, buf:Array<[number, Buffer]>, ws:Set<any>, sse:Set<http.ServerResponse>}>} */
const channels = new Map();
const chan = (name) => {
  let c = channels.get(name);
  if (!c) { c = { id: 0, buf: [], ws: new Set(), sse: new Set() }; channels.set(name, c); }
  return c;
};
const validName = (n) => typeof n === 'string' && /^[A-Za-z0-9_.:=@-]{1,128}$/.test(n);
const since = (c, last) => (Number.isInteger(last) && last >= 0 ? c.buf.filter(([id]) => id > last) : []);

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const name = url.searchParams.get('channel');
  if (req.method === 'POST' && url.pathname === '/pub') {
    if (!validName(name)) { res.writeHead(400).end('bad channel\n'); return; }
    const parts = [];
    let size = 0;
    req.on('data', (d) => { size += d.length; if (size > 1 << 20) req.destroy(); else parts.push(d); });
    req.on('end', () => {
      const body = Buffer.concat(parts);
      const c = chan(name);
      const id = ++c.id;
      c.buf.push([id, body]);
      if (c.buf.length > BUFFER) c.buf.shift();
      for (const ws of c.ws) ws.send(body);
      const ev = Buffer.concat([Buffer.from(`id: ${id}\ndata: `), body, Buffer.from('\n\n')]);
      for (const r of c.sse) r.write(ev);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ id, subscribers: c.ws.size + c.sse.size }));
    });
    return;
  }
  if (req.method === 'GET' && url.pathname === '/sse') {
    if (!validName(name)) { res.writeHead(400).end('bad channel\n'); return; }
    const c = chan(name);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.write(': ok\n\n');
    const last = Number(req.headers['last-event-id'] ?? url.searchParams.get('last_event_id') ?? NaN);
    for (const [id, body] of since(c, last)) res.write(`id: ${id}\ndata: ${body}\n\n`);
    c.sse.add(res);
    req.socket.setNoDelay(true);
    res.on('close', () => c.sse.delete(res));
    return;
  }
  if (url.pathname === '/healthz') { res.writeHead(200).end('ok\n'); return; }
  res.writeHead(404).end('not found\n');
});

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://x');
  const name = url.searchParams.get('channel');
  if (url.pathname !== '/ws' || !validName(name)) { socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'); return; }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const c = chan(name);
    const last = Number(url.searchParams.get('last_event_id') ?? NaN);
    for (const [, body] of since(c, last)) ws.send(body);
    c.ws.add(ws);
    ws.on('close', () => c.ws.delete(ws));
    ws.on('error', () => c.ws.delete(ws));
  });
});

server.keepAliveTimeout = 60000;
server.listen({ host, port, backlog: 4096 }, () => {
  const p = server.address().port;
  if (portFile) writeFileSync(portFile, `${p}\n`);
  process.stderr.write(JSON.stringify({ msg: 'listening', host, port: p, pid: process.pid }) + '\n');
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
