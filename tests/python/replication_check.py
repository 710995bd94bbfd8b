#!/usr/bin/env python3
"""One primary and one replica, each Shoal or a real redis-server 7.0, checked the same way
(run by tests/tests/replication.rs for Shoal -> redis-server, redis-server -> Shoal and
Shoal -> Shoal).

usage: replication_check.py <primary port> <replica port> <label>

1. The primary holds every type (small and large, with TTLs); the replica is told REPLICAOF
   while a writer keeps INCRementing counters and rewriting keys *during* the full sync (on a
   Shoal primary the fork-less snapshot), so keys written ahead of the walk are checked, not
   just a quiet copy.
2. 10k more writes of every kind (SPOP, INCRBYFLOAT, EXPIRE, MULTI/EXEC, a served BLPOP,
   DEL, hash/list/set/zset writes), then WAIT: same DBSIZE and the same per-key digest
   (type, value, TTL within a bound) on both sides.
3. The replica's link is cut (CLIENT KILL TYPE master): it continues with a partial resync
   (+CONTINUE, sync_partial_ok) and converges again.
4. Promotion: REPLICAOF NO ONE on the replica, REPLICAOF <it> on the old primary, which
   continues with a partial resync (PSYNC2: the new primary kept the old id as replid2).
Every acknowledged write of the INCR writer is counted and checked on the replica: the
number lost is printed and must be 0.
"""
import hashlib
import random
import subprocess
import sys
import threading
import time

import redis

DEADLINE = 60  # seconds for any single wait
N = 20000  # keys preloaded: a snapshot of many walk steps


def wait_until(what, fn, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)  # polling a condition, bounded by `timeout`
    raise SystemExit(f"timed out waiting for {what}")


def digest(r):
    """key -> (type, canonical value, has ttl) over the whole keyspace."""
    out = {}
    for key in r.scan_iter(count=1000):
        t = r.type(key).decode()
        if t == "string":
            v = r.get(key)
        elif t == "hash":
            v = sorted(r.hgetall(key).items())
        elif t == "list":
            v = r.lrange(key, 0, -1)
        elif t == "set":
            v = sorted(r.smembers(key))
        elif t == "zset":
            v = r.zrange(key, 0, -1, withscores=True)
        else:
            v = t
        ttl = r.pttl(key)
        out[key] = (t, hashlib.sha1(repr(v).encode()).hexdigest(), ttl > 0)
    return out


def compare(p, r, when):
    """Asserts equal digests; returns the primary's."""
    dp, dr = digest(p), digest(r)
    diff = [k for k in set(dp) | set(dr) if dp.get(k) != dr.get(k)]
    assert not diff, f"{when}: {len(diff)} keys differ, e.g. {[(k, dp.get(k), dr.get(k)) for k in diff[:5]]}"
    return dp


def ttl_gaps(p, r, keys):
    """Largest |PTTL(primary) - PTTL(replica)| over keys with a TTL (absolute deadlines)."""
    gap = 0
    for k in keys:
        a, b = p.pttl(k), r.pttl(k)
        if a > 0 and b > 0:
            gap = max(gap, abs(a - b))
    return gap


def same_as(p, r):
    """The replica `r` has everything the primary `p` sent (same DBSIZE and offset)."""
    return p.dbsize() == r.dbsize() and p.info("replication")["master_repl_offset"] == \
        r.info("replication")["slave_repl_offset"]


def fill(p, n):
    pipe = p.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"s:{i}", f"value-{i}" * (1 + i % 5))
        if i % 10 == 0:
            pipe.set(f"t:{i}", i, ex=3600)
        if i % 50 == 0:
            pipe.hset(f"h:{i}", mapping={f"f{j}": j for j in range(3 if i % 100 else 300)})
            pipe.rpush(f"l:{i}", *[f"e{j}" for j in range(4 if i % 100 else 500)])
            pipe.sadd(f"set:{i}", *[j for j in range(5 if i % 100 else 600)])
            pipe.zadd(f"z:{i}", {f"m{j}": j / 3 for j in range(6 if i % 100 else 200)})
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def main():
    port, replica_port, label = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    p = redis.Redis(port=port)
    r = redis.Redis(port=replica_port)
    fill(p, N)

    # The INCR writer: runs through the full sync; every acknowledged value is recorded.
    acked = {}
    stop = threading.Event()

    def writer():
        w = redis.Redis(port=port)
        i = 0
        while not stop.is_set():
            k = f"c:{i % 500}"
            acked[k] = w.incr(k)
            if i % 7 == 0:
                w.set(f"s:{(i * 7919) % N}", f"rewritten-{i}")
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    wait_until("the writer to start", lambda: len(acked) > 50)
    try:
        assert r.execute_command("REPLICAOF", "127.0.0.1", port) == b"OK"

        def linked():
            try:
                info = r.info("replication")
            except redis.BusyLoadingError:
                return False
            return info.get("master_link_status") == "up"

        t0, incrs0 = time.monotonic(), sum(acked.values())
        wait_until("the full sync", linked)
        sync_secs = time.monotonic() - t0
        during = sum(acked.values()) - incrs0
        stop.set()
        t.join()

        # 10k more writes of every kind.
        rnd = random.Random(7)
        blocked = {}

        def blpop():
            blocked["v"] = redis.Redis(port=port).blpop("queue", timeout=30)

        bt = threading.Thread(target=blpop)
        bt.start()
        wait_until("the BLPOP to block", lambda: p.info("clients")["blocked_clients"] == 1)
        p.rpush("queue", "job-1", "job-2")
        bt.join()
        assert blocked["v"] == (b"queue", b"job-1"), blocked
        pipe = p.pipeline(transaction=False)
        for i in range(10000):
            op = i % 10
            if op == 0:
                pipe.spop(f"set:{rnd.randrange(0, N, 50)}")
            elif op == 1:
                pipe.incrbyfloat("float", 0.1)
            elif op == 2:
                pipe.expire(f"s:{rnd.randrange(N)}", rnd.randrange(5000, 50000))
            elif op == 3:
                pipe.delete(f"s:{rnd.randrange(N)}")
            elif op == 4:
                pipe.hincrbyfloat(f"h:{rnd.randrange(0, N, 50)}", "f1", 1.25)
            elif op == 5:
                pipe.lpush(f"l:{rnd.randrange(0, N, 50)}", i)
            elif op == 6:
                pipe.zincrby(f"z:{rnd.randrange(0, N, 50)}", 1, f"m{i % 7}")
            elif op == 7:
                pipe.set(f"n:{i}", i, px=rnd.randrange(5000000, 50000000))
            elif op == 8:
                pipe.getex(f"t:{rnd.randrange(0, N, 10)}", ex=50000)
            else:
                pipe.spop(f"set:{rnd.randrange(0, N, 50)}", 3)
            if i % 500 == 499:
                pipe.execute()
        pipe.execute()
        # SORT ... STORE and the GEO writes reach replicas as sent (replaying them gives the
        # same result): a set sorted BY a constant is sorted by bytes when stored.
        for i in range(0, N, 500):
            p.execute_command("SORT", f"l:{i}", "ALPHA", "DESC", "LIMIT", 1, 50, "STORE", f"sorted:{i}")
            p.execute_command("SORT", f"set:{i}", "BY", "nosort", "STORE", f"sorted-set:{i}")
            p.execute_command("GEOADD", f"geo:{i}", 13.361389, 38.115556, "a", 15.087269, 37.502669, "b",
                              -179.9, 85, f"c{i}")
            p.execute_command("GEOSEARCHSTORE", f"near:{i}", f"geo:{i}", "FROMMEMBER", "a", "BYRADIUS",
                              200, "km", "STOREDIST")
            p.execute_command("GEORADIUS", f"geo:{i}", 15, 37, 500, "km", "STORE", f"radius:{i}")
        tx = p.pipeline(transaction=True)
        tx.set("tx:a", 1).incr("tx:a").expire("tx:a", 900).execute()
        assert p.wait(1, 5000) == 1, "WAIT 1 acknowledged by the replica"

        def same():
            return same_as(p, r)
        wait_until("the replica to catch up", same)
        dp = compare(p, r, "after 10k writes")
        assert during > 0, "the writer wrote while the snapshot was taken"
        lost = sum(1 for k, v in acked.items() if int(r.get(k) or 0) < v)
        assert lost == 0, f"{lost} acknowledged INCRs missing on the replica"
        gap = ttl_gaps(p, r, [k for k, v in dp.items() if v[2]][:2000])
        assert gap < 2000, f"TTLs differ by {gap} ms: relative TTLs must replicate as absolute"
        print(f"{label}: full sync of {len(dp)} keys under a writer: {sync_secs:.2f}s; "
              f"{len(acked)} counters, {sum(acked.values())} INCRs acked ({during} during the sync), {lost} lost; "
              f"digest equal over {len(dp)} keys; largest TTL gap {gap} ms")

        # Expiry reaches the replica as DEL (a replica never expires keys by itself: without
        # the DELs its DBSIZE would keep counting them).
        for i in range(200):
            p.set(f"short:{i}", i, px=100)
        wait_until("the short keys to pass their TTL", lambda: p.pttl("short:199") == -2)
        for i in range(200):
            p.exists(f"short:{i}")  # lazy expiry on the primary
        wait_until("the replica to get the DELs", same)
        assert r.dbsize() == p.dbsize() and not r.exists("short:0"), "expired keys deleted on the replica"

        # Partial resync after a cut link.
        before = p.info("stats")["sync_partial_ok"]
        r.execute_command("CLIENT", "KILL", "TYPE", "master")
        for i in range(500):
            p.set(f"after-cut:{i}", i)
        wait_until("a partial resync", lambda: p.info("stats")["sync_partial_ok"] == before + 1)
        wait_until("the replica to catch up after the cut", same)
        compare(p, r, "after the partial resync")
        assert p.info("stats")["sync_full"] == 1, "one full sync only"
        role = p.execute_command("ROLE")
        assert role[0] == b"master" and len(role[2]) == 1, role
        print("partial resync after a cut link: +CONTINUE, digest equal")

        # Promotion, PSYNC2: the replica becomes a primary and the old primary its replica.
        # The new primary keeps the old history as its replid2, so the old primary continues
        # with a partial resync: no full sync, nothing lost.
        full_before = r.info("stats")["sync_full"]
        partial_before = r.info("stats")["sync_partial_ok"]
        assert r.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
        assert r.info("replication")["role"] == "master"
        assert p.execute_command("REPLICAOF", "127.0.0.1", replica_port) == b"OK"
        assert p.info("replication")["role"] == "slave"

        def swapped():
            return p.info("replication").get("master_link_status") == "up"
        wait_until("the old primary to follow the new one", swapped)
        stats = r.info("stats")
        assert stats["sync_full"] == full_before, f"no full sync after a promotion: {stats['sync_full']}"
        assert stats["sync_partial_ok"] == partial_before + 1, "the old primary continued with +CONTINUE"
        for i in range(500):
            r.incr("after-promotion")
        assert r.wait(1, 5000) == 1, "WAIT 1 on the new primary"
        try:
            p.set("x", 1)
            raise AssertionError("the old primary accepted a write as a replica")
        except redis.ReadOnlyError:
            pass
        wait_until("the old primary to catch up", lambda: same_as(r, p))
        compare(r, p, "after the promotion")
        assert int(p.get("after-promotion")) == 500
        print("promotion: the old primary follows with +CONTINUE (no full sync), digest equal")
        print(f"replication ok ({label})")
    finally:
        stop.set()
        if t.is_alive():
            t.join()


if __name__ == "__main__":
    main()
