// Long-polling transport: the core says when to issue each GET (a `poll` action after every
// response); this file only runs one request at a time and hands back the body, a newline-delimited
// batch of frames. Aborting the request in flight is all that closing it takes.
import { Code } from './codes.mjs';
import { refusalCode } from './http.mjs';

export class PollingTransport {
  // sink: { data(text), closed(code, reason) }
  constructor(fetchImpl, sink) {
    this.fetch = fetchImpl;
    this.sink = sink;
    this.done = false;
    this.answered = false;   // a response came: later failures are losses, not failures to open
    this.ctl = null;
    if (typeof fetchImpl !== 'function') this.finish(Code.transportFailed, 'no fetch implementation');
  }

  poll(url) {
    if (this.done) return;
    const ctl = new AbortController();
    this.ctl = ctl;
    (async () => {
      const res = await this.fetch(url, {
        headers: { Accept: 'application/x-ndjson' }, cache: 'no-store', signal: ctl.signal,
      });
      const body = await res.text();
      if (this.done || ctl !== this.ctl) return;
      this.ctl = null;
      if (!res.ok) {
        this.finish(refusalCode(res.status, body) ?? (this.answered ? Code.transportClosed : Code.transportFailed),
          `long-poll refused: HTTP ${res.status}${body ? ': ' + body.slice(0, 200) : ''}`);
        return;
      }
      this.answered = true;
      this.sink.data(body);
    })().catch((err) => {
      if (ctl !== this.ctl) return;
      this.finish(this.answered ? Code.transportClosed : Code.transportFailed,
        'long-poll failed: ' + (err?.cause?.message ?? err?.message ?? err));
    });
  }

  finish(code, reason) {
    if (this.done) return;
    this.done = true;
    queueMicrotask(() => this.sink.closed(code, reason));
  }

  close() {
    this.done = true;
    this.ctl?.abort();
    this.ctl = null;
  }
}
