// Faults of the data dir (issue 17, item 4) against the real server: a disk that really fills up (a
// size-limited tmpfs) and frees up again, and a history.db cut short. The server must refuse what
// it cannot keep with 503/4022, stay up, keep serving reads and other work, say so in its log, and
// never serve wrong data: a channel whose offsets were handed out but not kept continues in a new
// epoch, which its subscribers learn as recovered:false.
// (tests/server/durable_test.cpp covers a file-size limit, a read-only mount, an unwritable data
// dir and an overwritten database.)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, open, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { FAST, durableServer, loadClient, once, tempDir, waitFor } from './durable.mjs';

const run = promisify(execFile);
const { Client } = await loadClient();
const FLAGS = ['--ping-interval-ms', '1000', '--history-size', '100', '--shutdown-timeout-ms', '1000',
  '--max-message-bytes', '70000', '--body-limit', '100000'];

let work;
before(async () => {
  work = await tempDir();
});
after(() => rm(work, { recursive: true, force: true }));

// A tmpfs of `size` on a fresh folder, or the reason it cannot be had here (mount needs root).
async function smallDisk(size) {
  const dir = join(work, `disk-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(dir);
  try {
    const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
    const [cmd, ...args] = [...sudo, 'mount', '-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir];
    await run(cmd, args);
  } catch (e) {
    return { skip: `cannot mount a tmpfs here: ${String(e.stderr || e.message).trim()}` };
  }
  return {
    dir,
    async unmount() {
      const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
      const [cmd, ...args] = [...sudo, 'umount', '-l', dir];
      await run(cmd, args).catch(() => {});
    },
  };
}

// Writes `file` until the filesystem says it is full.
async function fill(file) {
  const f = await open(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  try {
    for (;;) await f.write(chunk);
  } catch (e) {
    if (e.code !== 'ENOSPC') throw e;
  } finally {
    await f.close();
  }
}

function subscriber(c, channel) {
  const r = { got: [], notRecovered: [], gaps: [] };
  r.sub = c.subscribe(channel, {
    onMessage: (d, ctx) => r.got.push({ v: d.v, epoch: ctx.epoch, offset: ctx.offset }),
    onSubscribed: (e) => { if (e.recovered === false) r.notRecovered.push(e); },
    onGap: (g) => r.gaps.push(g),
  });
  return r;
}

test('a full disk refuses publishes with 503/4022, keeps serving, and publishes again in a new epoch once space frees up', async (t) => {
  const disk = await smallDisk('4m');
  if (disk.skip) return t.skip(disk.skip);
  const srv = await durableServer({ dataDir: join(disk.dir, 'data'), extra: FLAGS });
  const c = new Client(srv.url, { ...FAST, transports: ['websocket'] });
  try {
    const live = subscriber(c, 'full');
    await once(live.sub, 'subscribed');
    const first = await srv.api('POST', '/api/publish', { channel: 'full', data: { v: 1 } });
    assert.equal(first.status, 200, first.text);
    const keep = await srv.api('POST', '/api/publish', { channel: 'kept', data: { v: 'kept' } });
    assert.equal(keep.status, 200, keep.text);

    await fill(join(disk.dir, 'filler'));
    // The WAL may still have room in pages it already holds: publish large messages until a commit
    // needs more than the disk has.
    const big = 'x'.repeat(60000);
    let acked = 1;
    let refused = null;
    for (let i = 0; i < 200 && !refused; i++) {
      const r = await srv.api('POST', '/api/publish', { channel: 'full', data: { v: 2 + i, big } });
      if (r.status === 200) acked = r.json.offset;
      else refused = r;
    }
    assert.ok(refused, 'a publish was refused once the disk was full');
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.json?.error?.code, 4022, refused.text);
    assert.ok(srv.alive(), 'the server is still up');
    await waitFor(() => /history commit failed/.test(srv.log()), { what: 'the failure in the log' });

    // Reads and everything that does not write keep working.
    assert.equal((await srv.api('GET', '/healthz')).status, 200);
    const h = await srv.api('GET', '/api/history?channel=full');
    assert.equal(h.status, 200);
    assert.equal(h.json.offset, acked, 'history shows what was acknowledged, nothing refused');
    assert.equal(h.json.epoch, first.json.epoch);
    const kept = await srv.api('GET', '/api/history?channel=kept');
    assert.deepEqual(kept.json.publications.map((p) => p.data), [{ v: 'kept' }]);
    const other = subscriber(c, 'elsewhere');
    await once(other.sub, 'subscribed');
    await waitFor(() => live.got.length === acked, { what: `the ${acked} acknowledged messages` });

    // Space comes back: the same channel publishes again, in a new epoch (its refused offsets were
    // handed out), and the live subscriber is told recovered:false rather than shown a hole.
    await rm(join(disk.dir, 'filler'));
    const again = await waitFor(async () => {
      const r = await srv.api('POST', '/api/publish', { channel: 'full', data: { v: 'again' } });
      return r.status === 200 ? r : null;
    }, { what: 'a publish accepted after the disk freed up' });
    assert.notEqual(again.json.epoch, first.json.epoch, 'a new epoch');
    assert.equal(again.json.offset, 1);
    await waitFor(() => /history commits work again/.test(srv.log()), { what: 'the recovery in the log' });
    await waitFor(() => live.got.some((m) => m.v === 'again'), { what: 'the new epoch\'s message' });
    // A `subscribed` with recovered:false on a live subscription reaches the application as a gap
    // (protocol/client_machine.cpp): exactly one, at the new epoch.
    assert.deepEqual(live.gaps.map((g) => ({ epoch: g.epoch, reason: g.reason })),
      [{ epoch: again.json.epoch, reason: 'the server could not replay every missed message' }]);
    const before = live.got.filter((m) => m.epoch === first.json.epoch).map((m) => m.offset);
    assert.deepEqual(before, Array.from({ length: acked }, (_, i) => i + 1), 'the old epoch: exactly what was acknowledged');
    assert.ok(!live.got.some((m) => m.epoch === first.json.epoch && m.offset > acked), 'no refused publication was delivered');
    // And it lasts: after a restart the new epoch is there with its message.
    await srv.kill();
    await srv.start();
    const after = await srv.api('GET', '/api/history?channel=full');
    assert.equal(after.json.epoch, again.json.epoch);
    assert.deepEqual(after.json.publications.map((p) => p.data), [{ v: 'again' }]);
  } finally {
    c.close();
    await srv.cleanup();
    await disk.unmount();
  }
});

test('a history.db cut short: the server starts, says so in its log, and serves nothing of the lost history', async () => {
  const dataDir = join(work, 'truncated');
  const srv = await durableServer({ dataDir, extra: FLAGS });
  const c = new Client(srv.url, { ...FAST, transports: ['websocket'] });
  try {
    let epoch;
    for (let v = 1; v <= 50; v++) {
      const r = await srv.api('POST', '/api/publish', { channel: 'cut', data: { v, pad: 'p'.repeat(2000) } });
      assert.equal(r.status, 200, r.text);
      epoch = r.json.epoch;
    }
    assert.equal((await srv.term()).code, 0);   // checkpointed: everything is in history.db
    const db = join(dataDir, 'history.db');
    const { size } = await stat(db);
    assert.ok(size > 16 * 4096, `history.db holds the history (${size} bytes)`);
    await truncate(db, Math.floor(size / 3 / 4096) * 4096);   // whole pages gone, as a cut-short copy

    await srv.start();
    await waitFor(() => /damaged|integrity/.test(srv.log()), { what: 'the damage in the log' });
    const got = [];
    const notRecovered = [];
    const sub = c.subscribe('cut', {
      since: { epoch, offset: 10 },
      onMessage: (d, ctx) => got.push({ v: d.v, epoch: ctx.epoch }),
      onSubscribed: (e) => { if (e.recovered === false) notRecovered.push(e); },
    });
    await once(sub, 'subscribed');
    assert.equal(notRecovered.length, 1, 'the resuming client is told recovered:false');
    const h = await srv.api('GET', '/api/history?channel=cut');
    assert.notEqual(h.json.epoch, epoch, 'the old epoch is not served');
    assert.deepEqual(h.json.publications, []);
    const p = await srv.api('POST', '/api/publish', { channel: 'cut', data: { v: 'new' } });
    assert.equal(p.status, 200, p.text);
    assert.notEqual(p.json.epoch, epoch);
    await waitFor(() => got.length === 1, { what: 'the new publication' });
    assert.deepEqual(got, [{ v: 'new', epoch: p.json.epoch }], 'nothing of the lost history was delivered');
  } finally {
    c.close();
    await srv.cleanup();
  }
});
