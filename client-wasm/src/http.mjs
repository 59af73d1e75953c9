// HTTP pieces shared by the one-way transports: endpoint URLs and the command POST.

// `base`: the server's origin (and optional path prefix), http(s) or ws(s).
export function endpoints(base) {
  const u = new URL(base);
  const prefix = u.pathname.replace(/\/+$/, '');
  const http = (u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol) + '//' + u.host + prefix;
  const ws = http.replace(/^http/, 'ws');
  return { ws: ws + '/ws', sse: http + '/sse', poll: http + '/poll', cmd: http + '/cmd' };
}

// Channel names and resume tokens hold only URL-safe characters (protocol/channel_name.hpp,
// position.hpp), so they go in as they are; the token is escaped to be safe.
export function withQuery(url, params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    parts.push(k + '=' + (k === 'token' ? encodeURIComponent(v) : String(v)));
  }
  return parts.length ? url + '?' + parts.join('&') : url;
}

// A refused token is answered 401 (docs/protocol.md): an SSE request with {"error":{"code":4004|4005,…}},
// a long-poll with its `error` frame. The one-way transports report that code to the core, as a
// WebSocket reports its close code; null for anything else.
export function refusalCode(status, body) {
  if (status !== 401) return null;
  try {
    const o = JSON.parse(body.split('\n', 1)[0]);
    const code = o?.error?.code ?? (o?.type === 'error' ? o.code : null);
    return Number.isInteger(code) ? code : null;
  } catch {
    return null;
  }
}

// POST a newline-delimited command batch; resolves with the reply batch text. The replies belong to
// the generation that sent it even if that transport is gone meanwhile (the core sorts that out).
export async function postCommands(fetchImpl, url, text, signal) {
  const res = await fetchImpl(url, {
    method: 'POST', body: text, signal, cache: 'no-store',
    headers: { 'Content-Type': 'application/x-ndjson', Accept: 'application/x-ndjson' },
  });
  return { ok: res.ok, status: res.status, body: await res.text() };
}
