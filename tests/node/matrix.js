// The client matrix's scenario list for the Node.js cluster clients (ioredis, node-redis),
// run against a 3-shard cluster by tests/tests/client_matrix.rs. Each scenario uses the
// client's own cluster API, the way an application would; the driver only reads the result.
//
// Usage: node matrix.js <ioredis|node-redis> <seed-port> <resp 2|3> <hashtag>
//   <hashtag>: a tag whose slot the driver migrates during the last scenario.
// Protocol with the driver: while the migration scenario writes, this script prints
// `MIGRATE` once; the driver moves the slot and answers `MIGRATED` on stdin. At the end one
// line `RESULT {json}` holds { scenario: { ok, detail } }.
'use strict';
const readline = require('node:readline');
const common = require('./matrix_common');

const [, , client, seedArg, respArg, tag] = process.argv;
const seed = Number(seedArg);
const resp = Number(respArg);

const lines = readline.createInterface({ input: process.stdin });
const stdinLines = [];
lines.on('line', (l) => stdinLines.push(l.trim()));

function infoField(text, field) {
  const m = String(text).match(new RegExp(`^${field}:(\\d+)`, 'm'));
  return m ? Number(m[1]) : 0;
}

// ---- ioredis -------------------------------------------------------------------------------
async function ioredisAdapter() {
  const { Cluster } = require('ioredis');
  const make = (extra = {}) =>
    new Cluster([{ host: '127.0.0.1', port: seed }], { redisOptions: { protocol: resp }, ...extra });
  const c = make();
  const blocker = make();
  const sub = make();
  // Sharded pub/sub needs ioredis' per-shard subscribers: without them one subscriber
  // connection takes every SSUBSCRIBE, and a channel of another shard's slot gets MOVED until
  // ioredis gives up ("Too many Cluster redirections"), on Valkey as on Shoal.
  const ssub = make({ shardedSubscribers: true });
  const ready = (x) => new Promise((res, rej) => {
    x.once('ready', res);
    x.once('error', rej);
  });
  await Promise.all([c, blocker, sub, ssub].map(ready));
  const messages = [];
  sub.on('message', (ch, m) => messages.push(`${ch}:${m}`));
  const smessages = [];
  ssub.on('smessage', (ch, m) => smessages.push(`${ch}:${m}`));
  const masters = () => c.nodes('master');
  return {
    primaries: async () => masters().length,
    set: (k, v) => c.set(k, v),
    get: (k) => c.get(k),
    pipeline: async (keys) => {
      const p = c.pipeline();
      for (const k of keys) p.set(k, `v-${k}`);
      for (const k of keys) p.get(k);
      const res = await p.exec();
      for (const [err] of res) if (err) throw err;
      return res.slice(keys.length).map(([, v]) => v);
    },
    txIncr: async (keys) => {
      const m = c.multi();
      for (const k of keys) m.incr(k);
      const res = await m.exec();
      return res.map(([err, v]) => {
        if (err) throw err;
        return Number(v);
      });
    },
    scanAll: async (match) => {
      const found = [];
      for (const node of masters()) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 100);
          found.push(...keys);
          cursor = next;
        } while (cursor !== '0');
      }
      return found;
    },
    blpop: (key, secs) => blocker.blpop(key, secs),
    blockedClients: async () => {
      let n = 0;
      for (const node of masters()) n += infoField(await node.info('clients'), 'blocked_clients');
      return n;
    },
    rpush: (k, v) => c.rpush(k, v),
    publishOnEveryPrimary: async (ch, msg) => {
      for (const node of masters()) await node.publish(ch, msg);
      return masters().length;
    },
    subscribe: (ch) => sub.subscribe(ch),
    messages,
    ssubscribe: (ch) => ssub.ssubscribe(ch),
    spublish: (ch, m) => c.spublish(ch, m),
    smessages,
    close: async () => {
      for (const x of [c, blocker, sub, ssub]) x.disconnect();
    },
  };
}

// ---- node-redis ------------------------------------------------------------------------------
async function nodeRedisAdapter() {
  const { createCluster } = require('redis');
  const make = () => createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${seed}` }], RESP: resp });
  const c = make();
  const blocker = make();
  await c.connect();
  await blocker.connect();
  const messages = [];
  const smessages = [];
  const eachMaster = async (f) => {
    for (const m of c.masters) await f(await c.nodeClient(m));
    return c.masters.length;
  };
  return {
    primaries: async () => c.masters.length,
    set: (k, v) => c.set(k, v),
    get: (k) => c.get(k),
    pipeline: async (keys) => {
      const m = c.multi();
      for (const k of keys) m.set(k, `v-${k}`);
      for (const k of keys) m.get(k);
      const res = await m.execAsPipeline();
      return res.slice(keys.length);
    },
    txIncr: async (keys) => {
      const m = c.multi();
      for (const k of keys) m.incr(k);
      return (await m.exec()).map(Number);
    },
    scanAll: async (match) => {
      const found = [];
      await eachMaster(async (node) => {
        for await (const keys of node.scanIterator({ MATCH: match, COUNT: 100 })) found.push(...keys);
      });
      return found;
    },
    blpop: async (key, secs) => {
      const r = await blocker.blPop(key, secs);
      return r ? [r.key, r.element] : null;
    },
    blockedClients: async () => {
      let n = 0;
      await eachMaster(async (node) => {
        n += infoField(await node.info('clients'), 'blocked_clients');
      });
      return n;
    },
    rpush: (k, v) => c.rPush(k, v),
    publishOnEveryPrimary: (ch, msg) => eachMaster((node) => node.publish(ch, msg)),
    subscribe: (ch) => c.subscribe(ch, (m) => messages.push(`${ch}:${m}`)),
    messages,
    // node-redis sends one SSUBSCRIBE per call, to the owner of the first channel's slot: a
    // call with channels of several slots is CROSSSLOT (on Valkey too), so one call per slot.
    ssubscribe: (ch) => c.sSubscribe(ch, (m) => smessages.push(`${ch}:${m}`)),
    spublish: (ch, m) => c.sPublish(ch, m),
    smessages,
    close: async () => {
      await c.close();
      await blocker.close();
    },
  };
}

(async () => {
  const adapter = client === 'ioredis' ? await ioredisAdapter() : await nodeRedisAdapter();
  const results = await common.runScenarios(adapter, {
    tag,
    signalMigrate: () => console.log('MIGRATE'),
    migrated: () => stdinLines.includes('MIGRATED'),
  });
  console.log(`RESULT ${JSON.stringify(results)}`);
  await adapter.close().catch(() => {});
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
