// WebSocket transport: adapts one WebSocket (the browser's, `ws` under Node, or an injected one) to
// the driver's four callbacks. It decides nothing: the core reads every close code.
import { Code } from './codes.mjs';

const noop = () => {};
const decoder = new TextDecoder();

// sink: { open(), data(text|Uint8Array), closed(code, reason) }, each called at most as the socket says.
export class WebSocketTransport {
  constructor(url, WebSocketImpl, sink) {
    this.opened = false;
    this.done = false;
    this.sink = sink;
    if (typeof WebSocketImpl !== 'function') {
      this.finish(Code.transportFailed, 'no WebSocket implementation (install the ws package or pass options.WebSocket)');
      return;
    }
    let ws;
    try {
      ws = new WebSocketImpl(url);
    } catch (err) {
      this.finish(Code.transportFailed, 'WebSocket constructor failed: ' + (err?.message ?? err));
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.opened = true;
      if (!this.done) sink.open();
    };
    ws.onmessage = (e) => {
      if (this.done) return;
      const d = e.data;
      // Text frames arrive as strings; tolerate binary ones carrying the same UTF-8 batch.
      if (typeof d === 'string') sink.data(d);
      else if (d instanceof ArrayBuffer || ArrayBuffer.isView(d)) sink.data(decoder.decode(d));
      else if (d && typeof d.text === 'function') d.text().then((t) => { if (!this.done) sink.data(t); });
    };
    // Every error is followed by a close event, which carries the code; nothing to do here, but a
    // listener must stay attached (ws throws on an 'error' nobody listens to).
    ws.onerror = noop;
    ws.onclose = (e) => {
      // Before the opening handshake completed the socket *failed* (browsers say 1006 then).
      if (!this.opened) this.finish(Code.transportFailed, 'WebSocket could not open' + (e.reason ? ': ' + e.reason : ''));
      else this.finish(e.code || Code.transportClosed, e.reason || '');
    };
    try { ws.binaryType = 'arraybuffer'; } catch { /* not every implementation has it */ }
  }

  finish(code, reason) {
    if (this.done) return;
    this.done = true;
    // Asynchronously, so that the driver never sees a close while it is still opening this transport.
    queueMicrotask(() => this.sink.closed(code, reason));
  }

  send(text) {
    if (this.done || !this.ws) return;
    try {
      this.ws.send(text);
    } catch (err) {
      this.abort(Code.transportClosed, 'send failed: ' + (err?.message ?? err));
    }
  }

  abort(code, reason) {
    this.close();
    this.done = false;   // report this one: the transport died under us
    this.finish(code, reason);
  }

  // Close on the core's order: silently, and no late callback.
  close() {
    this.done = true;
    const ws = this.ws;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = noop;
    ws.onerror = noop;
    try {
      ws.close(1000);
    } catch {
      /* already closing */
    }
  }
}
