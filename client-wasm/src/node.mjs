// Entry for Node (package.json `node` condition): reads the .wasm from disk (Node's fetch cannot read
// file: URLs) and takes WebSocket from the optional `ws` package unless one is injected or global.
// SSE goes through Node's own fetch stream unless an EventSource is injected (DECISIONS.md §17).
import { platform } from './platform.mjs';
import { openSseFetch } from './sse_fetch.mjs';

platform.defaultWasmUrl = () => new URL('./pushwire_core.wasm', import.meta.url).href;
platform.defaultWasm2jsUrl = () => new URL('./pushwire_core_wasm2js.mjs', import.meta.url).href;
platform.readWasm = async (url) => {
  const { readFile } = await import('node:fs/promises');
  return readFile(new URL(url));
};
platform.openSseFetch = openSseFetch;
let ws = null;
platform.loadWebSocket = () =>
  (ws ??= import('ws').then((m) => m.WebSocket ?? m.default, () => null));

export { Client, Subscription, PushwireError } from './client.mjs';
export { Code, codeName } from './codes.mjs';
