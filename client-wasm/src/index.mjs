// Entry for browsers and bundlers (package.json `browser` / `default`): no `node:` imports here.
// The .wasm (and the wasm2js fallback) are found next to this module; bundlers that understand
// `new URL(…, import.meta.url)` copy them as assets.
import { platform } from './platform.mjs';

platform.defaultWasmUrl = () => new URL('./pushwire_core.wasm', import.meta.url).href;
// Fetched only where the page's CSP refuses to compile wasm (core.mjs).
platform.defaultWasm2jsUrl = () => new URL('./pushwire_core_wasm2js.mjs', import.meta.url).href;
// Imported only by clients made with `shared: true` (one connection per browser, shared.mjs).
platform.sharedUrl = () => new URL('./pushwire_shared.mjs', import.meta.url).href;

export { Client, Subscription, PushwireError } from './client.mjs';
export { Code, codeName } from './codes.mjs';
