"""The client matrix's scenarios for the Python cluster clients (matrix_redispy.py,
matrix_glide.py), the same list as tests/node/matrix_common.js, run by
tests/tests/client_matrix.rs against a 3-shard cluster.

Each scenario goes through an adapter doing one thing with the client's own cluster API, so
every client runs exactly the same checks. Every wait is bounded; a failed scenario reports
why and the next one still runs. Protocol with the driver: during the migration scenario the
script prints `MIGRATE` once, the driver moves the slot of `tag` and answers `MIGRATED` on
stdin; the last line is `RESULT {json}` with {scenario: {ok, detail}}.
"""

import asyncio
import json
import sys
import threading
import time
import traceback

WAIT_S = 15.0


class Stdin:
    """Lines from the driver, read on a thread so the writers never wait on stdin."""

    def __init__(self):
        self.migrated = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in sys.stdin:
            if line.strip() == "MIGRATED":
                self.migrated.set()


async def wait_for(pred, what, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        if await pred():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def slot_of(key: str) -> int:
    k = key
    i = key.find("{")
    if i >= 0:
        j = key.find("}", i + 1)
        if j > i + 1:
            k = key[i + 1 : j]
    return crc16(k.encode()) & 16383


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


async def run_scenarios(a, tag, stdin: Stdin, skip=()):
    """Runs every scenario with adapter `a`; `skip` maps scenario -> reason for those the
    client has no API for (reported as not ok, with the reason, for the driver to judge)."""
    results = {}
    skip = dict(skip)

    async def step(name, fn):
        if name in skip:
            results[name] = {"ok": False, "skipped": True, "detail": skip[name]}
            return
        try:
            detail = await asyncio.wait_for(fn(), 60)
            results[name] = {"ok": True, "detail": str(detail or "")}
        except Exception as e:  # noqa: BLE001 - every failure is reported
            frames = [f for f in traceback.extract_tb(e.__traceback__) if "matrix" in f.filename]
            where = " <- ".join(f"{f.name}:{f.lineno}" for f in reversed(frames[-3:]))
            results[name] = {"ok": False, "detail": f"{type(e).__name__}: {e} (at {where})"[:600]}

    async def discovery():
        n = await a.primaries()
        check(n == 3, f"discovered {n} primaries, want 3")
        return f"{n} primaries"

    async def keys():
        ks = [f"mx:key:{i}" for i in range(1000)]
        for k in ks:
            check(await a.set(k, "v" + k), f"SET {k}")
        for k in ks:
            got = await a.get(k)
            check(got == "v" + k, f"GET {k}: {got!r}")
        slots = len({slot_of(k) for k in ks})
        check(slots > 900, f"only {slots} slots")
        return f"1000 keys over {slots} slots"

    async def pipeline():
        ks = [f"{{mx:pipe}}{i}" for i in range(100)]
        got = await a.pipeline(ks)
        check(got == [f"v-{k}" for k in ks], f"pipelined GETs: {got[:3]}...")
        return "100 SET + 100 GET in one pipeline"

    async def transaction():
        ks = ["{mx:tx}a", "{mx:tx}b", "{mx:tx}c"]
        first = await a.tx_incr(ks)
        second = await a.tx_incr(ks)
        check(len(first) == 3 and len(set(first)) == 1, f"first EXEC {first}")
        check(second == [x + 1 for x in first], f"second EXEC {second} after {first}")
        return "MULTI/EXEC of 3 INCR twice"

    async def scan():
        want = [f"mx:scan:{i}" for i in range(300)]
        for k in want:
            await a.set(k, "1")
        got = await a.scan_all("mx:scan:*")
        check(len(got) == len(want), f"SCAN returned {len(got)} keys, want {len(want)}")
        check(sorted(set(got)) == sorted(want), "SCAN key set differs")
        return f"{len(got)} keys over every primary"

    async def blpop():
        key = "{mx:bl}list"
        popped = asyncio.ensure_future(a.blpop(key, 20))
        await wait_for(lambda: a.blocked_clients_at_least(1), "the BLPOP to block")
        await a.rpush(key, "woken")
        r = await asyncio.wait_for(popped, 30)
        check(r == [key, "woken"], f"BLPOP returned {r!r}")
        return "woken by RPUSH from another connection"

    async def pubsub():
        ch = "mx:news"
        await a.subscribe(ch)
        n = await a.publish_on_every_primary(ch, "hi")
        await wait_for(lambda: a.count_messages(n), f"{n} messages")
        await a.publish_on_every_primary(ch, "bye")
        await wait_for(lambda: a.count_messages(2 * n), f"{2 * n} messages")
        check(len(a.messages) == 2 * n, f"{len(a.messages)} messages, want {2 * n}")
        return f"a message published on each of {n} primaries arrived once"

    async def sharded_pubsub():
        chans = [f"mx:sch:{i}" for i in range(6)]
        for ch in chans:
            await a.ssubscribe(ch)
        for ch in chans:
            await a.spublish(ch, "hi")
        await wait_for(lambda: a.count_smessages(len(chans)), f"{len(chans)} smessages")
        got = sorted(a.smessages)
        check(got == sorted(f"{c}:hi" for c in chans), f"got {got}")
        return f"6 channels over {len({slot_of(c) for c in chans})} slots"

    schan = f"{{{tag}}}mx:moving"
    moving = {"error": "not subscribed"}

    async def migration():
        if "sharded_pubsub_slot_move" not in skip:
            try:
                await a.ssubscribe(schan)
                moving["error"] = None
            except Exception as e:  # noqa: BLE001 - reported by the next scenario
                moving["error"] = f"SSUBSCRIBE before the move: {type(e).__name__}: {e}"
        acked, errors = {}, []
        n, after, signalled = 0, 0, False
        started = time.monotonic()
        while after < 300:
            key = f"{{{tag}}}mx:w:{n % 400}" if n % 2 == 0 else f"mx:w:{n % 997}"
            val = str(n)
            try:
                if await a.set(key, val):
                    acked[key] = val
                else:
                    errors.append(f"SET {key}: not OK")
            except Exception as e:  # noqa: BLE001
                errors.append(f"SET {key}: {type(e).__name__}: {e}")
            n += 1
            if not signalled and n >= 300:
                signalled = True
                print("MIGRATE", flush=True)
            if signalled and stdin.migrated.is_set():
                after += 1
            check(time.monotonic() - started < 50, f"no MIGRATED from the driver after {n} writes")
        lost = 0
        for k, v in acked.items():
            if await a.get(k) != v:
                lost += 1
        check(lost == 0, f"{lost} of {len(acked)} acknowledged writes lost")
        check(not errors, f"{len(errors)} errors: {'; '.join(errors[:3])}")
        return f"{n} writes, {len(acked)} keys acknowledged, 0 lost, 0 errors"

    async def sharded_pubsub_slot_move():
        check(moving["error"] is None, moving["error"])
        before = len(a.smessages)
        sent = [0]

        async def arrived():
            await a.spublish(schan, f"after-{sent[0]}")
            sent[0] += 1
            return await a.count_smessages(before + 1)

        await wait_for(arrived, "a message on the moved channel (resubscribed on the new owner)")
        return f"received after {sent[0]} SPUBLISH"

    for name, fn in [
        ("discovery", discovery),
        ("keys", keys),
        ("pipeline", pipeline),
        ("transaction", transaction),
        ("scan", scan),
        ("blpop", blpop),
        ("pubsub", pubsub),
        ("sharded_pubsub", sharded_pubsub),
        ("migration", migration),
        ("sharded_pubsub_slot_move", sharded_pubsub_slot_move),
    ]:
        await step(name, fn)
    return results


def report(results):
    print("RESULT " + json.dumps(results), flush=True)
