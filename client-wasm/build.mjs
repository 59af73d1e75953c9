// Bundles the JS client with esbuild (`npm run build`). Precondition: the wasm build is in
// client-wasm/dist/ (pushwire_core.mjs + pushwire_core.wasm; scripts/setup.sh copies them there).
//
// Outputs, all in client-wasm/dist/ next to pushwire_core.wasm (each finds it relative to itself):
//   pushwire.mjs       ES module for browsers and bundlers (package.json `browser`/`default`)
//   pushwire.js        <script> build, global `Pushwire` (finds the .wasm from document.currentScript)
//   pushwire.node.mjs  Node entry (`node` condition): may import node: modules and the optional `ws`
// and, for the server's static files (server/http/static_files.hpp), `.gz` and `.br` beside each file
// a browser loads, compressed once here at the highest levels (Node's own zlib: no tool needed).
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const dir = fileURLToPath(new URL('.', import.meta.url));
const dist = dir + 'dist/';
for (const f of ['pushwire_core.mjs', 'pushwire_core.wasm']) {
  if (!existsSync(dist + f)) {
    console.error(`build: ${dist}${f} is missing; build the wasm target pushwire_core first (scripts/setup.sh)`);
    process.exit(1);
  }
}

const common = {
  bundle: true,
  minify: true,
  target: 'es2020',
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
    // The generated glue reads import.meta.url for its own default wasm URL, which the client never
    // uses (it passes locateFile/instantiateWasm); a classic script has no import.meta.
    define: { 'import.meta.url': 'undefined' },
  }),
  esbuild.build({
    ...common, entryPoints: ['src/node.mjs'], outfile: 'dist/pushwire.node.mjs', format: 'esm', platform: 'node',
    target: 'node20', external: ['ws'],
  }),
]);
// Written after the file it compresses, so the server's "sibling not older than its file" check holds.
for (const f of ['pushwire.mjs', 'pushwire.js', 'pushwire_core.mjs', 'pushwire_core.wasm']) {
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
console.log('build: client-wasm/dist/pushwire.mjs, pushwire.js, pushwire.node.mjs (+ .gz, .br)' + (existsSync(pusherJs) ? ', pusher.min.js' : ''));
