// Entry for browsers and bundlers (package.json `browser` / `default`): no `node:` imports here.
// The .wasm is found next to this module; bundlers that understand `new URL(…, import.meta.url)`
// copy it as an asset.
import { platform } from './platform.mjs';

platform.defaultWasmUrl = () => new URL('./pushwire_core.wasm', import.meta.url).href;

export { Client, Subscription, PushwireError } from './client.mjs';
export { Code, codeName } from './codes.mjs';
