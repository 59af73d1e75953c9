// Server-Sent Events transport: one EventSource (the browser's or an injected one), or, where there is
// none (Node 20), the same stream read through fetch (sse_fetch.mjs, which only the Node entry
// loads, so browsers do not download it). Every SSE event's data is one protocol frame.
//
// The browser's EventSource reconnects by itself after an error; that would fight the core's backoff
// and resume, so on the first error the stream is closed at once and reported closed to the core,
// which decides what comes next (DECISIONS.md §5, docs/protocol.md "Server-Sent Events").
import { Code } from './codes.mjs';
import { refusalCode } from './http.mjs';
import { platform } from './platform.mjs';

// Frames come as `message` (publications), `control` (every other frame) and `ping` events.
export const EVENT_TYPES = ['message', 'control', 'ping'];

export class SseTransport {
  // sink: { open(), data(text), closed(code, reason) }
  constructor(url, { EventSource, fetch }, sink) {
    this.sink = sink;
    this.opened = false;
    this.done = false;
    this.fetch = fetch;
    if (typeof EventSource === 'function') this.openEventSource(url, EventSource);
    else if (platform.openSseFetch && typeof fetch === 'function') platform.openSseFetch(this, url, fetch);
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
