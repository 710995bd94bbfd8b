// Pub/sub through ioredis and node-redis cluster clients on a 3-shard Shoal cluster, the
// scenario of issue 16: a subscriber to 6 channels must receive every message published
// through another cluster connection (clients subscribe on one node, publish on any).
// Usage: node pubsub.js <cluster-seed-port>
'use strict';
const assert = require('node:assert/strict');
const { Cluster } = require('ioredis');
const { createCluster } = require('redis');

const seed = Number(process.argv[2]);
const channels = ['a', 'b', 'c', 'news', 'orders', 'alerts'];

function waitFor(pred, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() - started > 10000) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

async function ioredis() {
  const sub = new Cluster([{ host: '127.0.0.1', port: seed }]);
  const pub = new Cluster([{ host: '127.0.0.1', port: seed }]);
  const got = [];
  sub.on('message', (ch, msg) => got.push(`${ch}:${msg}`));
  await sub.subscribe(...channels);
  for (const ch of channels) await pub.publish(ch, `io-${ch}`);
  await waitFor(() => got.length >= channels.length, 'ioredis messages');
  assert.deepEqual(got.sort(), channels.map((c) => `${c}:io-${c}`).sort());
  sub.disconnect();
  pub.disconnect();
  return got.length;
}

async function nodeRedis() {
  const sub = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${seed}` }] });
  const pub = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${seed}` }] });
  await sub.connect();
  await pub.connect();
  const got = [];
  for (const ch of channels) await sub.subscribe(ch, (msg) => got.push(`${ch}:${msg}`));
  for (const ch of channels) await pub.publish(ch, `nr-${ch}`);
  await waitFor(() => got.length >= channels.length, 'node-redis messages');
  assert.deepEqual(got.sort(), channels.map((c) => `${c}:nr-${c}`).sort());
  await sub.quit();
  await pub.quit();
  return got.length;
}

(async () => {
  const a = await ioredis();
  const b = await nodeRedis();
  console.log(`pubsub: ioredis ${a}/${channels.length}, node-redis ${b}/${channels.length} messages`);
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
