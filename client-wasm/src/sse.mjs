// Server-Sent Events transport: one EventSource (the browser's or an injected one), or, where there is
// none (Node 20), the same stream read through fetch. Every SSE event's data is one protocol frame.
//
// The browser's EventSource reconnects by itself after an error; that would fight the core's backoff
// and resume, so on the first error the stream is closed at once and reported closed to the core,
// which decides what comes next (DECISIONS.md §5, docs/protocol.md "Server-Sent Events").
import { Code } from './codes.mjs';
import { refusalCode } from './http.mjs';
import { platform } from './platform.mjs';

// Frames come as `message` (publications), `control` (every other frame) and `ping` events.
const EVENT_TYPES = ['message', 'control', 'ping'];

export class SseTransport {
  // sink: { open(), data(text), closed(code, reason) }
  constructor(url, { EventSource, fetch }, sink) {
    this.sink = sink;
    this.opened = false;
    this.done = false;
    this.fetch = fetch;
    if (typeof EventSource === 'function') this.openEventSource(url, EventSource);
    else if (platform.sseOverFetch && typeof fetch === 'function') this.openFetch(url, fetch);
    else this.finish(Code.transportFailed, 'no EventSource in this environment');
  }

  openEventSource(url, EventSourceImpl) {
    let es;
    try {
      es = new EventSourceImpl(url);
    } catch (err) {
      this.finish(Code.transportFailed, 'EventSource constructor failed: ' + (err?.message ?? err));
      return;
    }
    this.es = es;
    es.onopen = () => this.onOpen();
    const onEvent = (e) => this.onEvent(e.data);
    for (const t of EVENT_TYPES) es.addEventListener(t, onEvent);
    es.onerror = () => {
      // Close before the browser schedules its own reconnect.
      es.close();
      if (this.opened) this.finish(Code.transportClosed, 'event stream ended');
      else this.probe(url);
    };
  }

  // An EventSource that cannot open hides the HTTP status. One plain request of the same URL tells a
  // refused token (401, whose code the core must see) from the rest, which stay `transportFailed`.
  probe(url) {
    const failed = () => this.finish(Code.transportFailed, 'event stream could not open');
    if (typeof this.fetch !== 'function' || this.done) return failed();
    const ctl = new AbortController();
    this.ctl = ctl;
    this.fetch(url, { headers: { Accept: 'text/event-stream' }, cache: 'no-store', signal: ctl.signal })
      .then(async (res) => {
        const code = refusalCode(res.status, res.ok ? '' : await res.text());
        ctl.abort();
        if (code === null) failed();
        else this.finish(code, `event stream refused: HTTP ${res.status}`);
      })
      .catch(failed);
  }

  openFetch(url, fetchImpl) {
    const ctl = new AbortController();
    this.ctl = ctl;
    (async () => {
      const res = await fetchImpl(url, {
        headers: { Accept: 'text/event-stream' }, cache: 'no-store', signal: ctl.signal,
      });
      const type = res.headers.get('content-type') || '';
      if (!res.ok || !type.startsWith('text/event-stream')) {
        const body = res.ok ? '' : await res.text().catch(() => '');
        ctl.abort();
        this.finish(refusalCode(res.status, body) ?? Code.transportFailed,
          `event stream refused: HTTP ${res.status}${body ? ': ' + body.slice(0, 200) : ''}`);
        return;
      }
      this.onOpen();
      const reader = res.body.getReader();
      const parser = new EventStreamParser((type, data) => {
        if (EVENT_TYPES.includes(type)) this.onEvent(data);
      });
      const text = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.done) break;
        parser.push(text.decode(value, { stream: true }));
      }
      this.finish(Code.transportClosed, 'event stream ended');
    })().catch((err) => {
      this.finish(this.opened ? Code.transportClosed : Code.transportFailed,
        'event stream failed: ' + (err?.cause?.message ?? err?.message ?? err));
    });
  }

  onOpen() {
    this.opened = true;
    if (!this.done) this.sink.open();
  }

  onEvent(data) {
    if (!this.done && typeof data === 'string') this.sink.data(data);
  }

  finish(code, reason) {
    if (this.done) return;
    this.done = true;
    queueMicrotask(() => this.sink.closed(code, reason));
  }

  close() {
    this.done = true;
    this.es?.close();
    this.ctl?.abort();
  }
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
