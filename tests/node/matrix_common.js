// The client matrix's scenarios, shared by the Node.js clients (see matrix.js): each takes an
// adapter that does one thing with the client's cluster API, so ioredis and node-redis run
// exactly the same checks. Every wait is bounded; a failed scenario reports why and the next
// one still runs.
'use strict';

const WAIT_MS = 15000;

async function waitFor(pred, what, ms = WAIT_MS) {
  const started = Date.now();
  for (;;) {
    if (await pred()) return;
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function crc16(buf) {
  let crc = 0;
  for (const b of buf) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

function slotOf(key) {
  let k = key;
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) k = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(k)) & 16383;
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function runScenarios(a, { tag, signalMigrate, migrated }) {
  const results = {};
  const step = async (name, fn) => {
    try {
      const detail = await Promise.race([
        fn(),
        new Promise((_, rej) => setTimeout(() => rej(new Error(`${name}: over 60 s`)), 60000)),
      ]);
      results[name] = { ok: true, detail: String(detail ?? '') };
    } catch (e) {
      results[name] = { ok: false, detail: String((e && e.message) || e) };
    }
  };

  await step('discovery', async () => {
    const n = await a.primaries();
    check(n === 3, `discovered ${n} primaries, want 3`);
    return `${n} primaries`;
  });

  await step('keys', async () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `mx:key:${i}`);
    for (const k of keys) check((await a.set(k, `v${k}`)) === 'OK', `SET ${k}`);
    for (const k of keys) check((await a.get(k)) === `v${k}`, `GET ${k}`);
    const slots = new Set(keys.map(slotOf)).size;
    check(slots > 900, `only ${slots} slots`);
    return `1000 keys over ${slots} slots`;
  });

  await step('pipeline', async () => {
    const keys = Array.from({ length: 100 }, (_, i) => `{mx:pipe}${i}`);
    const got = await a.pipeline(keys);
    check(got.length === keys.length, `${got.length} replies`);
    keys.forEach((k, i) => check(got[i] === `v-${k}`, `pipelined GET ${k}: ${got[i]}`));
    return '100 SET + 100 GET in one pipeline';
  });

  await step('transaction', async () => {
    const keys = ['{mx:tx}a', '{mx:tx}b', '{mx:tx}c'];
    const first = await a.txIncr(keys);
    const second = await a.txIncr(keys);
    const want = JSON.stringify(first.map((x) => x + 1));
    check(first.length === 3 && first.every((x) => x === first[0]), `first EXEC ${JSON.stringify(first)}`);
    check(JSON.stringify(second) === want, `second EXEC ${JSON.stringify(second)}, want ${want}`);
    return 'MULTI/EXEC of 3 INCR twice';
  });

  await step('scan', async () => {
    const want = Array.from({ length: 300 }, (_, i) => `mx:scan:${i}`);
    for (const k of want) await a.set(k, '1');
    const got = await a.scanAll('mx:scan:*');
    check(got.length === want.length, `SCAN returned ${got.length} keys, want ${want.length}`);
    check(JSON.stringify([...new Set(got)].sort()) === JSON.stringify([...want].sort()), 'SCAN key set differs');
    return `${got.length} keys over every primary`;
  });

  await step('blpop', async () => {
    const key = '{mx:bl}list';
    const popped = a.blpop(key, 20);
    await waitFor(async () => (await a.blockedClients()) >= 1, 'the BLPOP to block');
    await a.rpush(key, 'woken');
    const r = await popped;
    check(JSON.stringify(r) === JSON.stringify([key, 'woken']), `BLPOP returned ${JSON.stringify(r)}`);
    return 'woken by RPUSH from another connection';
  });

  await step('pubsub', async () => {
    const ch = 'mx:news';
    await a.subscribe(ch);
    const n = await a.publishOnEveryPrimary(ch, 'hi');
    await waitFor(() => a.messages.length >= n, `${n} messages`);
    // Exactly once each: one more publish must be the only extra message.
    await a.publishOnEveryPrimary(ch, 'bye');
    await waitFor(() => a.messages.length >= 2 * n, `${2 * n} messages`);
    check(a.messages.length === 2 * n, `${a.messages.length} messages, want ${2 * n}`);
    return `a message published on each of ${n} primaries arrived once`;
  });

  await step('sharded_pubsub', async () => {
    const chans = Array.from({ length: 6 }, (_, i) => `mx:sch:${i}`);
    for (const ch of chans) await a.ssubscribe(ch);
    for (const ch of chans) await a.spublish(ch, 'hi');
    await waitFor(() => a.smessages.length >= chans.length, `${chans.length} smessages`);
    const got = [...a.smessages].sort();
    check(JSON.stringify(got) === JSON.stringify(chans.map((c) => `${c}:hi`).sort()), `got ${got}`);
    const slots = new Set(chans.map(slotOf)).size;
    return `6 channels over ${slots} slots`;
  });

  // A slot moves while the client writes: every acknowledged write must be readable after.
  const schan = `{${tag}}mx:moving`;
  let movingError = 'not subscribed';
  await step('migration', async () => {
    try {
      await a.ssubscribe(schan);
      movingError = null;
    } catch (e) {
      movingError = `SSUBSCRIBE before the move: ${e.message}`;
    }
    const acked = new Map();
    const errors = [];
    let n = 0;
    let signalled = false;
    let after = 0;
    const started = Date.now();
    while (after < 300) {
      const key = n % 2 === 0 ? `{${tag}}mx:w:${n % 400}` : `mx:w:${n % 997}`;
      const val = String(n);
      try {
        const r = await a.set(key, val);
        if (r === 'OK') acked.set(key, val);
        else errors.push(`SET ${key}: ${r}`);
      } catch (e) {
        errors.push(`SET ${key}: ${e.message}`);
      }
      n += 1;
      if (!signalled && n >= 300) {
        signalled = true;
        signalMigrate();
      }
      if (signalled && migrated()) after += 1;
      check(Date.now() - started < 50000, `no MIGRATED from the driver after ${n} writes`);
    }
    let lost = 0;
    for (const [k, v] of acked) if ((await a.get(k)) !== v) lost += 1;
    check(lost === 0, `${lost} of ${acked.size} acknowledged writes lost`);
    check(errors.length === 0, `${errors.length} errors: ${errors.slice(0, 3).join('; ')}`);
    return `${n} writes, ${acked.size} keys acknowledged, 0 lost, 0 errors`;
  });

  // The sharded subscriber of the moved slot's channel: Valkey and Shoal send it an
  // `sunsubscribe`; a client that resubscribes on the new owner gets the next message.
  await step('sharded_pubsub_slot_move', async () => {
    check(movingError === null, movingError);
    const before = a.smessages.length;
    let sent = 0;
    await waitFor(async () => {
      await a.spublish(schan, `after-${sent++}`);
      return a.smessages.length > before;
    }, 'a message on the moved channel (resubscribed on the new owner)');
    return `received after ${sent} SPUBLISH`;
  });

  return results;
}

module.exports = { runScenarios, waitFor, slotOf };
