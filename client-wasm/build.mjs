// Bundles the JS client with esbuild (`npm run build`). Precondition: the wasm build is in
// client-wasm/dist/ (pushwire_core.mjs + pushwire_core.wasm; scripts/setup.sh copies them there).
//
// Outputs, all in client-wasm/dist/ next to pushwire_core.wasm and pushwire_core_wasm2js.mjs (each
// finds them relative to itself):
//   pushwire.mjs       ES module for browsers and bundlers (package.json `browser`/`default`)
//   pushwire.js        <script> build, global `Pushwire` (finds the .wasm from document.currentScript)
//   pushwire.node.mjs  Node entry (`node` condition): may import node: modules and the optional `ws`
//   pushwire_shared.mjs  `shared: true` only (src/shared.mjs): imported by such clients, and the script
//                      of the SharedWorker that holds the one connection; self-contained (its own copy
//                      of the client), so a bundler that copies it as an asset needs nothing else
// and, for the server's static files (server/http/static_files.hpp), `.gz` and `.br` beside each file
// a browser loads, compressed once here at the highest levels (Node's own zlib: no tool needed).
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const dir = fileURLToPath(new URL('.', import.meta.url));
const dist = dir + 'dist/';
for (const f of ['pushwire_core.mjs', 'pushwire_core.wasm', 'pushwire_core_wasm2js.mjs']) {
  if (!existsSync(dist + f)) {
    console.error(`build: ${dist}${f} is missing; build the wasm targets pushwire_core and pushwire_core_wasm2js first (scripts/setup.sh)`);
    process.exit(1);
  }
}

// The driver instantiates pushwire_core.wasm itself (src/core.mjs) instead of shipping Emscripten's
// generated glue. The glue is still the one place that knows the wasm's minified import and export
// names, so they are read from it here into dist/pushwire_core_abi.json. Any change in the glue's
// shape (another Emscripten, a new import) stops the build rather than loading a broken core.
function coreAbi(glue) {
  const fail = (what) => {
    console.error(`build: cannot read ${what} from dist/pushwire_core.mjs (Emscripten's glue changed shape?)`);
    process.exit(1);
  };
  const lib = /var asmLibraryArg=\{([^}]*)\}/.exec(glue) ?? fail('the imports');
  const imports = Object.fromEntries([...lib[1].matchAll(/"(\w+)":(\w+)/g)].map((m) => [m[2], m[1]]));
  const known = ['_abort', '_emscripten_resize_heap'];
  for (const f of Object.keys(imports)) if (!known.includes(f)) fail(`a known import (the wasm now imports ${f})`);
  const module = /var info=\{"(\w+)":asmLibraryArg\}/.exec(glue) ?? fail('the import module');
  const memory = /wasmMemory=Module\["asm"\]\["(\w+)"\]/.exec(glue) ?? fail('the memory export');
  const ctors = /addOnInit\(Module\["asm"\]\["(\w+)"\]\)/.exec(glue) ?? fail('the constructors export');
  const exports = {};
  for (const m of glue.matchAll(/Module\["(_\w+)"\]=function\(\)\{return\(\1=Module\["\1"\]=Module\["asm"\]\["(\w+)"\]\)/g))
    if (m[1] !== '___wasm_call_ctors') exports[m[1]] = m[2];
  const wanted = readFileSync(dir + 'exports.txt', 'utf8').split(/\s+/).filter(Boolean);
  for (const name of wanted) if (!exports[name]) fail(`the export ${name}`);
  return { module: module[1], abort: imports._abort, resize: imports._emscripten_resize_heap,
    memory: memory[1], ctors: ctors[1], exports };
}
writeFileSync(dist + 'pushwire_core_abi.json', JSON.stringify(coreAbi(readFileSync(dist + 'pushwire_core.mjs', 'utf8'))) + '\n');

const common = {
  bundle: true,
  minify: true,
  // ES2022 keeps class private fields (#x) native; lowered to es2020 they become WeakMap helpers
  // (+0.4 KB gzip). Browsers: Chrome/Edge 84, Firefox 90, Safari 15 and later.
  target: 'es2022',
  legalComments: 'none',
  logLevel: 'warning',
  absWorkingDir: dir,
};

await Promise.all([
  esbuild.build({
    ...common, entryPoints: ['src/index.mjs'], outfile: 'dist/pushwire.mjs', format: 'esm', platform: 'browser',
  }),
  esbuild.build({
    ...common, entryPoints: ['src/global.mjs'], outfile: 'dist/pushwire.js', format: 'iife', platform: 'browser',
    globalName: 'Pushwire',
  }),
  esbuild.build({
    ...common, entryPoints: ['src/shared.mjs'], outfile: 'dist/pushwire_shared.mjs', format: 'esm', platform: 'browser',
  }),
  esbuild.build({
    ...common, entryPoints: ['src/node.mjs'], outfile: 'dist/pushwire.node.mjs', format: 'esm', platform: 'node',
    target: 'node20', external: ['ws'],
  }),
]);
// The wasm2js fallback and pushwire_shared.mjs are loaded with import(url) (src/core.mjs importUrl). esbuild's minifier drops the comments
// that tell an app's bundler to leave that import alone (webpack would otherwise replace it with an
// empty context that always rejects; Vite warns), so they are put back here.
for (const f of ['pushwire.mjs', 'pushwire.js', 'pushwire_shared.mjs']) {
  const text = readFileSync(dist + f, 'utf8');
  const found = text.match(/\bimport\((\w+)\)/g) ?? [];
  if (found.length !== 1) {
    console.error(`build: expected one dynamic import(url) in dist/${f}, found ${found.length}`);
    process.exit(1);
  }
  writeFileSync(dist + f, text.replace(/\bimport\((\w+)\)/, 'import(/* webpackIgnore: true */ /* @vite-ignore */ $1)'));
}
// Written after the file it compresses, so the server's "sibling not older than its file" check holds.
for (const f of ['pushwire.mjs', 'pushwire.js', 'pushwire_shared.mjs', 'pushwire_core.wasm', 'pushwire_core_wasm2js.mjs']) {
  const raw = readFileSync(dist + f);
  writeFileSync(dist + f + '.gz', gzipSync(raw, { level: 9 }));
  writeFileSync(dist + f + '.br', brotliCompressSync(raw, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_MODE]: f.endsWith('.wasm') ? constants.BROTLI_MODE_GENERIC : constants.BROTLI_MODE_TEXT,
      [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
    },
  }));
}
// web/pusher.html loads pusher-js's browser build (a devDependency) from /pushwire/pusher.min.js.
const pusherJs = dir + '../node_modules/pusher-js/dist/web/pusher.min.js';
if (existsSync(pusherJs)) copyFileSync(pusherJs, dist + 'pusher.min.js');
console.log('build: client-wasm/dist/pushwire_core_abi.json, pushwire.mjs, pushwire.js, pushwire_shared.mjs, pushwire.node.mjs (+ .gz, .br)' + (existsSync(pusherJs) ? ', pusher.min.js' : ''));
