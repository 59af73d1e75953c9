// npm takes README.md from the package root whatever `files` says, and the root README is the
// server's. `npm pack` / `npm publish` therefore run this as prepack (`swap`: the client's README,
// client-wasm/npm-readme.md, takes README.md's place; the server's waits in .npm-pack/) and postpack
// (`restore`). A pack that failed between the two leaves the swap in place: the next prepack
// refuses until `node scripts/npm-readme.mjs restore` puts the server's README back.
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const readme = join(root, 'README.md');
const held = join(root, '.npm-pack', 'README.server.md');
const client = join(root, 'client-wasm', 'npm-readme.md');

const step = process.argv[2];
if (step === 'swap') {
  if (existsSync(held)) {
    console.error(`npm-readme: ${held} exists (an earlier pack did not finish); run: node scripts/npm-readme.mjs restore`);
    process.exit(1);
  }
  mkdirSync(dirname(held), { recursive: true });
  renameSync(readme, held);
  copyFileSync(client, readme);
} else if (step === 'restore') {
  if (existsSync(held)) {
    renameSync(held, readme);
    rmSync(dirname(held), { recursive: true, force: true });
  }
} else {
  console.error('usage: node scripts/npm-readme.mjs swap|restore');
  process.exit(2);
}
