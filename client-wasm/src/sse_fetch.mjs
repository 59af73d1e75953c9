// SSE read through fetch, for runtimes with no EventSource (Node 20): used by SseTransport
// (sse.mjs) when the entry registers it (node.mjs sets platform.openSseFetch). Browsers always have
// an EventSource, so the browser entries leave this file out of their bundles.
import { Code } from './codes.mjs';
import { refusalCode } from './http.mjs';
import { EVENT_TYPES } from './sse.mjs';

// `t`: the SseTransport this stream feeds (its onOpen, onEvent, finish, done and opened).
export function openSseFetch(t, url, fetchImpl) {
  const ctl = new AbortController();
  t.ctl = ctl;
  (async () => {
    const res = await fetchImpl(url, {
      headers: { Accept: 'text/event-stream' }, cache: 'no-store', signal: ctl.signal,
    });
    const type = res.headers.get('content-type') || '';
    if (!res.ok || !type.startsWith('text/event-stream')) {
      const body = res.ok ? '' : await res.text().catch(() => '');
      ctl.abort();
      t.finish(refusalCode(res.status, body) ?? Code.transportFailed,
        `event stream refused: HTTP ${res.status}${body ? ': ' + body.slice(0, 200) : ''}`);
      return;
    }
    t.onOpen();
    const reader = res.body.getReader();
    const parser = new EventStreamParser((type, data) => {
      if (EVENT_TYPES.includes(type)) t.onEvent(data);
    });
    const text = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done || t.done) break;
      parser.push(text.decode(value, { stream: true }));
    }
    t.finish(Code.transportClosed, 'event stream ended');
  })().catch((err) => {
    t.finish(t.opened ? Code.transportClosed : Code.transportFailed,
      'event stream failed: ' + (err?.cause?.message ?? err?.message ?? err));
  });
}

// The text/event-stream format (WHATWG HTML, "Parsing an event stream"), the parts a client needs:
// `data` lines joined by "\n", `event` names the type, a blank line dispatches; `id` and `retry`
// are the browser's reconnect aids, which the core replaces, so they are skipped.
export class EventStreamParser {
  constructor(dispatch) {
    this.dispatch = dispatch;
    this.buf = '';
    this.type = '';
    this.data = [];
  }

  push(chunk) {
    this.buf += chunk;
    let start = 0;
    for (;;) {
      const m = /\r\n|\r|\n/g;
      m.lastIndex = start;
      const hit = m.exec(this.buf);
      // A lone "\r" at the end may be the first half of "\r\n": wait for more.
      if (!hit || (hit[0] === '\r' && hit.index === this.buf.length - 1)) break;
      this.line(this.buf.slice(start, hit.index));
      start = hit.index + hit[0].length;
    }
    this.buf = this.buf.slice(start);
  }

  line(line) {
    if (line === '') {
      if (this.data.length) this.dispatch(this.type || 'message', this.data.join('\n'));
      this.type = '';
      this.data = [];
      return;
    }
    if (line[0] === ':') return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
  }
}
