"""redis-py's stream API against Shoal (run by tests/tests/streams.rs), in RESP2 and RESP3:

- a producer XADDs 600 jobs with `*` and MAXLEN ~ while three consumers of one group read
  with XREADGROUP BLOCK and XACK; every job must be delivered exactly once and acknowledged;
- one consumer dies holding jobs: XPENDING (summary and range), XCLAIM and XAUTOCLAIM take
  them over, and redis-py's reply parsers read every answer (XINFO STREAM/GROUPS/CONSUMERS,
  XRANGE/XREVRANGE, XREAD).

usage: streams_client.py <port>"""
import sys
import threading
import time

import redis

port = int(sys.argv[1])


def entries_of(reply, key):
    """XREAD/XREADGROUP entries of `key`: RESP3 replies are maps (keyed by bytes), RESP2
    replies lists of [key, entries]."""
    if isinstance(reply, dict):
        got = reply.get(key.encode(), reply.get(key))
        return got[0] if got and isinstance(got[0], list) and got[0] and isinstance(got[0][0], tuple) else got
    return reply[0][1]


def run(protocol):
    r = redis.Redis(port=port, socket_timeout=30, protocol=protocol)
    key, group = f"jobs:{protocol}", "workers"
    r.delete(key)
    r.xgroup_create(key, group, id="$", mkstream=True)
    seen, errors, lock = {}, [], threading.Lock()
    done = threading.Event()

    def consumer(name):
        c = redis.Redis(port=port, socket_timeout=30, protocol=protocol)
        try:
            while True:
                reply = c.xreadgroup(group, name, {key: ">"}, count=10, block=200)
                if not reply:
                    if done.is_set():
                        return
                    continue
                entries = entries_of(reply, key)
                for entry_id, fields in entries:
                    with lock:
                        seen.setdefault(entry_id, []).append(name)
                    assert fields[b"n"].isdigit(), fields
                    assert c.xack(key, group, entry_id) == 1
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=consumer, args=(f"c{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    ids = [r.xadd(key, {"n": i, "body": "x" * 20}, maxlen=10_000, approximate=True) for i in range(600)]
    deadline = time.time() + 60
    while len(seen) < len(ids) and time.time() < deadline:
        time.sleep(0.05)
    done.set()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(seen) == sorted(ids), f"{len(seen)} of {len(ids)} delivered"
    twice = {k: v for k, v in seen.items() if len(v) != 1}
    assert not twice, f"delivered more than once: {list(twice.items())[:5]}"
    assert r.xpending(key, group)["pending"] == 0
    assert r.xlen(key) == 600

    # A consumer that dies holding entries; another takes them over.
    r.xadd(key, {"n": 1000}, id="*")
    r.xadd(key, {"n": 1001}, id="*")
    r.xadd(key, {"n": 1002}, id="*")
    got = r.xreadgroup(group, "doomed", {key: ">"}, count=3)
    held = [e[0] for e in entries_of(got, key)]
    summary = r.xpending(key, group)
    assert summary["pending"] == 3 and summary["min"] == held[0] and summary["max"] == held[-1], summary
    assert summary["consumers"] == [{"name": b"doomed", "pending": 3}], summary
    rows = r.xpending_range(key, group, min="-", max="+", count=10, consumername="doomed")
    assert [row["message_id"] for row in rows] == held and all(row["times_delivered"] == 1 for row in rows)
    claimed = r.xclaim(key, group, "rescuer", min_idle_time=0, message_ids=[held[0]])
    assert claimed[0][0] == held[0] and claimed[0][1] == {b"n": b"1000"}, claimed
    # With JUSTID redis-py hands back only the claimed IDs.
    taken = r.xautoclaim(key, group, "rescuer", min_idle_time=0, start_id="0-0", justid=True)
    assert taken == held, taken
    consumers = {c["name"]: c for c in r.xinfo_consumers(key, group)}
    assert consumers[b"rescuer"]["pending"] == 3 and consumers[b"doomed"]["pending"] == 0, consumers
    assert r.xgroup_delconsumer(key, group, "doomed") == 0
    assert r.xack(key, group, *held) == 3

    info = r.xinfo_stream(key)
    assert info["length"] == 603 and info["last-generated-id"] == held[-1], info
    assert info["first-entry"][0] == ids[0] and info["last-entry"][0] == held[-1]
    full = r.xinfo_stream(key, full=True)
    assert full["groups"][0]["name"] == b"workers" and full["groups"][0]["pel-count"] == 0, full["groups"]
    groups = r.xinfo_groups(key)
    assert groups[0]["last-delivered-id"] == held[-1] and groups[0]["lag"] == 0, groups
    assert [e[0] for e in r.xrange(key, count=2)] == ids[:2]
    assert [e[0] for e in r.xrevrange(key, count=1)] == [held[-1]]
    tail = r.xread({key: held[1]})
    entries = entries_of(tail, key)
    assert [e[0] for e in entries] == [held[2]]
    assert r.xtrim(key, maxlen=3) == 600 and r.xlen(key) == 3
    assert r.xdel(key, held[0]) == 1
    print(f"RESP{protocol}: 600 jobs to 3 consumers exactly once; claims and XINFO parsed")


for proto in (2, 3):
    run(proto)
print("streams ok")
