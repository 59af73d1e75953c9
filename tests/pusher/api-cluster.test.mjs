// The Pusher HTTP API across nodes on the Redis engine (issue 14 item 5): a channel subscribed on
// node A is listed and counted when node B is asked (this node's live counts plus the others' last
// report, at most a node heartbeat old), presence users come from the shared presence store, and an
// event triggered on B reaches a subscriber on A.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openSse, startNode, startRedis, waitFor } from '../cluster/cluster.mjs';
import { APP, Pusher, TOKEN_SECRET, token } from './api-server.mjs';

let redis;
let dir;
const nodes = [];
const streams = [];
before(async () => {
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), 'pushwire-papi-cluster-'));
  const config = join(dir, 'config.json');
  await writeFile(config, JSON.stringify({ pusher_apps: [APP] }));
  for (const id of ['pa', 'pb'])
    nodes.push(await startNode({ redis, id, extra: ['--config', config, '--token-secret', TOKEN_SECRET, '--node-heartbeat-ms', '200'] }));
});
after(async () => {
  for (const s of streams) s.close();
  for (const n of nodes) await n.cleanup();
  await redis?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const sdk = (n) => new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1',
  port: String(n.port), useTLS: false, timeout: 5000 });

async function reader(n, name, user) {
  const s = openSse(`${n.url}/sse?channels=${APP.namespace}:${name}${user ? `&token=${token(user)}` : ''}`);
  streams.push(s);
  await s.ready;
  await waitFor(() => s.controls('subscribed').length > 0, { what: `subscribed to ${name}` });
  return s;
}

test('channels, counts and users of node A are seen through node B; B triggers to A', async () => {
  const [A, B] = nodes;
  const s = await reader(A, 'presence-far', 'frank');
  await reader(B, 'presence-far', 'gina');
  const b = sdk(B);
  // A's subscription reaches B's count with A's next report.
  await waitFor(async () => {
    const info = await (await b.get({ path: '/channels/presence-far', params: { info: 'subscription_count,user_count' } })).json();
    return info.subscription_count === 2 && info.user_count === 2;
  }, { what: 'both subscriptions counted on B' });
  const list = await (await b.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } })).json();
  assert.deepEqual(list, { channels: { 'presence-far': { user_count: 2 } } });
  const users = await (await b.get({ path: '/channels/presence-far/users' })).json();
  assert.deepEqual(users, { users: [{ id: 'frank' }, { id: 'gina' }] });
  // Only subscribed on A (never published): listed on B too.
  await reader(A, 'only-on-a');
  await waitFor(async () => (await (await b.get({ path: '/channels' })).json()).channels['only-on-a'],
    { what: 'only-on-a listed on B' });
  await b.trigger('presence-far', 'hello', { from: 'B' });
  const [m] = await waitFor(() => s.messages().length && s.messages(), { what: "the event on A's reader" });
  assert.deepEqual(m.data, { event: 'hello', data: { from: 'B' } });
});
