// ioredis `defineCommand` scripts against a Shoal node and a 3-shard Shoal cluster.
// Usage: node scripting.js <node-port> <cluster-seed-port>. Prints one line per part and
// exits non-zero at the first wrong result.
'use strict';
const assert = require('node:assert/strict');
const Redis = require('ioredis');

// A capped counter, the shape of a rate limiter: INCR, set a TTL on first use, refuse past the cap.
const CAPPED = {
  numberOfKeys: 1,
  lua: `
    local n = redis.call('INCR', KEYS[1])
    if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
    if n > tonumber(ARGV[1]) then return {0, n} end
    return {1, n}`,
};
// Moves a job id between two lists of one slot (hash tag), returning the new length.
const MOVE = {
  numberOfKeys: 2,
  lua: `
    local id = redis.call('RPOP', KEYS[1])
    if not id then return false end
    return redis.call('LPUSH', KEYS[2], id)`,
};

async function standalone(port) {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 2 });
  await r.connect();
  r.defineCommand('capped', CAPPED);
  r.defineCommand('move', MOVE);
  await r.flushall();
  const results = [];
  for (let i = 0; i < 12; i++) results.push(await r.capped('rl:user1', 10, 60000));
  assert.deepEqual(results.slice(0, 10).map((x) => x[0]), Array(10).fill(1));
  assert.deepEqual(results[10], [0, 11]);
  const ttl = await r.pttl('rl:user1');
  assert.ok(ttl > 0 && ttl <= 60000, `ttl ${ttl}`);
  // The script cache flushed under the client: ioredis falls back from EVALSHA to EVAL.
  await r.script('FLUSH');
  assert.deepEqual(await r.capped('rl:user2', 5, 1000), [1, 1]);
  // Custom commands in a pipeline and a transaction.
  await r.rpush('{q}:wait', 'a', 'b', 'c');
  const piped = await r.pipeline().move('{q}:wait', '{q}:active').move('{q}:wait', '{q}:active').exec();
  assert.deepEqual(piped, [[null, 1], [null, 2]]);
  const tx = await r.multi().move('{q}:wait', '{q}:active').llen('{q}:active').exec();
  assert.deepEqual(tx, [[null, 3], [null, 3]]);
  assert.equal(await r.move('{q}:wait', '{q}:active'), null);
  // A script error surfaces as a rejected promise with Valkey's text.
  r.defineCommand('broken', { numberOfKeys: 0, lua: "return redis.call('NOSUCHCMD')" });
  await assert.rejects(r.broken(), /Unknown Redis command called from script/);
  await r.quit();
  console.log('ioredis defineCommand on a node: rate limit, EVALSHA fallback, pipeline, multi ok');
}

async function cluster(seed) {
  const c = new Redis.Cluster([{ host: '127.0.0.1', port: seed }], { maxRedirections: 16 });
  c.defineCommand('capped', CAPPED);
  c.defineCommand('move', MOVE);
  const users = Array.from({ length: 200 }, (_, i) => `rl:c:${i}`);
  // 200 keys over many slots on 3 shards, 3 calls each, concurrently.
  const calls = [];
  for (const u of users) for (let k = 0; k < 3; k++) calls.push(c.capped(u, 2, 60000));
  const out = await Promise.all(calls);
  const allowed = out.filter((x) => x[0] === 1).length;
  assert.equal(allowed, users.length * 2, 'two calls per key allowed');
  const values = await Promise.all(users.map((u) => c.get(u)));
  assert.ok(values.every((v) => v === '3'), `counters: ${values.slice(0, 5)}`);
  const masters = c.nodes('master');
  assert.equal(masters.length, 3, 'three primaries discovered');
  // Two keys of one slot through the hash tag.
  await c.rpush('{jobs}:wait', 'j1', 'j2');
  assert.equal(await c.move('{jobs}:wait', '{jobs}:active'), 1);
  // Keys of two slots in one script: CROSSSLOT, as Valkey.
  await assert.rejects(c.move('a-wait', 'b-active'), /CROSSSLOT/);
  await c.quit();
  console.log(`ioredis defineCommand on a cluster: ${out.length} calls over ${users.length} keys on ${masters.length} shards ok`);
}

(async () => {
  const [nodePort, seed] = process.argv.slice(2).map(Number);
  await standalone(nodePort);
  await cluster(seed);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
