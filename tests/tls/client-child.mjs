// Run by tls.test.mjs as a child process with NODE_EXTRA_CA_CERTS=<test root CA>: the published Node
// entry of the client over one transport (wss, or SSE / long-poll over https) trusting the test CA
// the way an application would, without any option that weakens verification.
// Usage: node client-child.mjs <https-url> <transport> <channel>. Prints one JSON line per event:
// subscribed, message (x2), history; exits 0 after the history, 1 on an error.
import { FAST, loadClient } from '../js/helpers.mjs';

const [url, transport, channel] = process.argv.slice(2);
const { Client } = await loadClient();
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const c = new Client(url, { ...FAST, pollHoldMs: 1000, transports: [transport] });
let n = 0;
const sub = c.subscribe(channel, {
  onMessage: async (data) => {
    out({ event: 'message', data });
    if (++n < 2) return;
    try {
      const past = await sub.history({ limit: 10 });
      out({ event: 'history', data: past.map((p) => p.data) });
      c.close();
      process.exit(0);
    } catch (e) {
      out({ event: 'error', error: String(e) });
      process.exit(1);
    }
  },
});
sub.on('subscribed', () => out({ event: 'subscribed', transport: c.transport, url }));
