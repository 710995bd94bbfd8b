// How ioredis and node-redis cluster clients handle SSUBSCRIBE to channels of several slots,
// the two failures issue 16's run reported ("Too many Cluster redirections" from ioredis,
// CROSSSLOT from node-redis sSubscribe). They are the clients' own behaviour: against a
// Valkey 9.1 cluster the same calls fail the same way (docs/cluster-clients.md). The test
// (tests/tests/cluster_pubsub.rs) asserts each outcome, and that the working forms get every
// message.
// Usage: node sharded_pitfalls.js <seed-port>   prints `RESULT {case: outcome}`
'use strict';
const { Cluster } = require('ioredis');
const { createCluster } = require('redis');
const { waitFor } = require('./matrix_common');

const seed = Number(process.argv[2]);
// Six channels whose slots are spread over the three shards.
const channels = ['a', 'b', 'c', 'news', 'orders', 'alerts'];

async function attempt(subscribeAll, publishAll, got) {
  try {
    await subscribeAll();
    await publishAll();
    await waitFor(() => got.length >= channels.length, `${channels.length} messages`);
    return `got ${got.length}`;
  } catch (e) {
    return `error: ${e.message}`;
  }
}

async function ioredis(sharded, oneCall) {
  const sub = new Cluster([{ host: '127.0.0.1', port: seed }], sharded ? { shardedSubscribers: true } : {});
  const pub = new Cluster([{ host: '127.0.0.1', port: seed }]);
  const got = [];
  sub.on('smessage', (ch) => got.push(ch));
  const out = await attempt(
    async () => {
      if (oneCall) await sub.ssubscribe(...channels);
      else for (const ch of channels) await sub.ssubscribe(ch);
    },
    async () => {
      for (const ch of channels) await pub.spublish(ch, 'x');
    },
    got,
  );
  sub.disconnect();
  pub.disconnect();
  return out;
}

async function nodeRedis(oneCall) {
  const sub = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${seed}` }] });
  const pub = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${seed}` }] });
  await sub.connect();
  await pub.connect();
  const got = [];
  const out = await attempt(
    async () => {
      if (oneCall) await sub.sSubscribe(channels, (m, ch) => got.push(ch));
      else for (const ch of channels) await sub.sSubscribe(ch, () => got.push(ch));
    },
    async () => {
      for (const ch of channels) await pub.sPublish(ch, 'x');
    },
    got,
  );
  await sub.close().catch(() => {});
  await pub.close().catch(() => {});
  return out;
}

(async () => {
  const r = {
    ioredis_one_call: await ioredis(false, true),
    ioredis_per_channel: await ioredis(false, false),
    ioredis_sharded_subscribers_one_call: await ioredis(true, true),
    ioredis_sharded_subscribers_per_channel: await ioredis(true, false),
    node_redis_one_call: await nodeRedis(true),
    node_redis_per_channel: await nodeRedis(false),
  };
  console.log(`RESULT ${JSON.stringify(r)}`);
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
