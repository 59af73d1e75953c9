// The documented snippets type-check against the shipped .d.ts: every ```js block of docs/client.md
// and README.md is compiled with `tsc --strict` as a module of an app that installed `pushwire`
// (node_modules/pushwire links to this repository, so package.json `exports` and its `types`
// conditions are what resolves). Names a snippet uses without defining (the app's own `render`,
// `token`, a `client` from an earlier snippet) are declared with the types the docs imply.
// A few checks of API surface no snippet shows follow the snippets.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { repo } from './helpers.mjs';

const run = promisify(execFile);

function jsBlocks(markdown) {
  return [...markdown.matchAll(/^```js\n([\s\S]*?)^```/gm)].map((m) => m[1]);
}

// name -> declaration, used when a snippet refers to the name without declaring or importing it.
const AMBIENT = {
  Client: "import { Client } from 'pushwire';",
  PushwireError: "import { PushwireError } from 'pushwire';",
  Code: "import { Code } from 'pushwire';",
  client: "declare const client: import('pushwire').Client;",
  sub: "declare const sub: import('pushwire').Subscription;",
  token: 'declare const token: string;',
  since: "declare const since: import('pushwire').Position;",
  render: 'declare function render(data: unknown): void;',
  reload: 'declare function reload(): void;',
  reloadFromBackend: 'declare function reloadFromBackend(channel: string): void;',
  showLogin: 'declare function showLogin(): void;',
  onMessage: "declare const onMessage: NonNullable<import('pushwire').SubscriptionHandlers['onMessage']>;",
  onGap: "declare const onGap: NonNullable<import('pushwire').SubscriptionHandlers['onGap']>;",
  onJoin: "declare const onJoin: NonNullable<import('pushwire').SubscriptionHandlers['onJoin']>;",
  onLeave: "declare const onLeave: NonNullable<import('pushwire').SubscriptionHandlers['onLeave']>;",
  onSubscribed: "declare const onSubscribed: NonNullable<import('pushwire').SubscriptionHandlers['onSubscribed']>;",
  onUnsubscribed: "declare const onUnsubscribed: NonNullable<import('pushwire').SubscriptionHandlers['onUnsubscribed']>;",
  onError: "declare const onError: NonNullable<import('pushwire').SubscriptionHandlers['onError']>;",
};

function declares(src, name) {
  return new RegExp(`(?:const|let|var|function|class)\\s+${name}\\b|import\\s*(?:\\{[^}]*\\b${name}\\b[^}]*\\}|${name}\\b)`).test(src);
}

function asModule(src) {
  const pre = Object.entries(AMBIENT)
    .filter(([name]) => !declares(src, name) && new RegExp(`\\b${name}\\b`).test(src))
    .map(([, decl]) => decl);
  return `${pre.join('\n')}\n${src}\nexport {};\n`;
}

// API surface that the snippets do not show.
const EXTRA = `
import { Client, Code, PushwireError, codeName, type StateEvent, type CoreKind } from 'pushwire';
import wasmUrl from 'pushwire/pushwire_core.wasm';
import createCore from 'pushwire/pushwire_core_wasm2js.mjs';
import 'pushwire/pushwire.js';
const u: string = wasmUrl;
const g: typeof Client = Pushwire.Client;
const gc: number = Pushwire.Code.sseBuffered;
void g; void gc;
const err = new PushwireError(Code.tokenExpired);
const err2 = new PushwireError(4004, 'bad token');
const code: number = err.code + err2.code;
const name: string = codeName(code);
const c = new Client('https://example.com', { wasmUrl: u, getToken: async () => 'jwt' });
const c2 = new Client('https://example.com', { getToken: () => 'jwt' });
c.on('state', (e: StateEvent) => { const t: 'websocket' | 'sse' | 'polling' | null = e.transport; void t; });
c.on('state', (e: StateEvent) => { const k: 'wasm' | 'wasm2js' | null = e.core; const r: string | undefined = e.coreReason; void k; void r; });
const k2: CoreKind | null = c.core;
const c3 = new Client('https://example.com', { wasm2jsUrl: new URL('https://example.com/x.mjs') });
void k2; void c3;
const f2: (m?: object) => Promise<object> = createCore;
void f2;
c2.subscribe('x', { onSubscribed(e) { const r: boolean | undefined = e.recovered; void r; } });
void name;
export {};
`;

test('every subpath the package exports has types, and they are shipped', async () => {
  const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8'));
  for (const [sub, target] of Object.entries(pkg.exports)) {
    if (sub === './package.json') continue;   // JSON: TypeScript types it itself
    assert.equal(typeof target, 'object', `${sub} has conditions, with types first`);
    assert.equal(Object.keys(target)[0], 'types', `${sub}: types is its first condition`);
    assert.ok(pkg.files.includes(target.types.slice(2)), `${sub}: ${target.types} is in files`);
  }
});

test('the documented snippets type-check against the .d.ts with tsc --strict', { timeout: 120000 }, async () => {
  const docs = [
    ['client', jsBlocks(await readFile(join(repo, 'docs/client.md'), 'utf8'))],
    ['readme', jsBlocks(await readFile(join(repo, 'README.md'), 'utf8'))],
  ];
  assert.ok(docs[0][1].length >= 4, 'docs/client.md has js snippets');
  assert.ok(docs[1][1].length >= 1, 'README.md has a js snippet');
  const dir = await mkdtemp(join(tmpdir(), 'pushwire-types-'));
  try {
    await mkdir(join(dir, 'node_modules'), { recursive: true });
    await symlink(repo, join(dir, 'node_modules/pushwire'), 'dir');
    const files = [];
    for (const [doc, blocks] of docs) {
      for (const [i, src] of blocks.entries()) {
        const f = `${doc}-${i + 1}.ts`;
        await writeFile(join(dir, f), asModule(src));
        files.push(f);
      }
    }
    await writeFile(join(dir, 'extra.ts'), EXTRA);
    files.push('extra.ts');
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, target: 'es2022', module: 'esnext', moduleResolution: 'bundler',
        lib: ['es2022', 'dom'], types: [], skipLibCheck: false,
      },
      files,
    }));
    const tsc = join(repo, 'node_modules/typescript/bin/tsc');
    const r = await run(process.execPath, [tsc, '-p', dir], { cwd: dir }).catch((e) => e);
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    let shown = out;
    // On failure, show the generated files next to tsc's messages.
    if (r.code) for (const f of files) shown += `\n--- ${f}\n${await readFile(join(dir, f), 'utf8')}`;
    assert.equal(r.code ?? 0, 0, shown);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
