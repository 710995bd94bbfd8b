"""Real client libraries that depend on scripting, against Shoal (run by
tests/tests/scripting.rs):

- redis-py `Lock` (SET NX PX to take it, Lua scripts to release and extend it): 8 threads
  contend for one lock and increment a counter with GET then SET inside it, 50 times each; the
  counter must end at exactly 400 (no two holders at once), and a lock released by someone
  else's token is refused (LockNotOwnedError).
- redis-py `register_script` (EVALSHA, falling back to EVAL after SCRIPT FLUSH).
- The same Lock on a cluster (RedisCluster) when a cluster port is given.

usage: scripting_clients.py <port> [<cluster seed port>]"""
import sys
import threading

import redis
from redis.exceptions import LockNotOwnedError

port = int(sys.argv[1])
r = redis.Redis(port=port, socket_timeout=30)


def contend(client, name, counter, threads=8, rounds=50):
    client.set(counter, 0)
    errors = []

    def worker():
        try:
            for _ in range(rounds):
                with client.lock(name, timeout=10, blocking_timeout=30):
                    v = int(client.get(counter))
                    client.set(counter, v + 1)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    got = int(client.get(counter))
    assert got == threads * rounds, f"lost updates under the lock: {got} != {threads * rounds}"
    return got


n = contend(r, "lock:res", "lock:counter")
lock = r.lock("lock:other", timeout=5)
assert lock.acquire(blocking=False)
stranger = r.lock("lock:other", timeout=5)
stranger.local.token = b"not-the-owner"
try:
    stranger.release()
    raise AssertionError("a lock was released with someone else's token")
except LockNotOwnedError:
    pass
assert lock.extend(5)
lock.release()
assert r.get("lock:other") is None

incr_by = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
assert incr_by(keys=["script:n"], args=[5]) == 5
r.script_flush()
assert incr_by(keys=["script:n"], args=[2]) == 7, "EVALSHA falls back to EVAL after NOSCRIPT"
print(f"redis-py Lock: {n} increments under contention, none lost; register_script ok")

if len(sys.argv) > 2:
    from redis.cluster import RedisCluster

    rc = RedisCluster(host="127.0.0.1", port=int(sys.argv[2]), socket_timeout=30)
    n = contend(rc, "{job}lock", "{job}counter", threads=4, rounds=25)
    s = rc.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert s(keys=["{job}n"], args=[3]) == 3
    print(f"redis-py Lock on a cluster: {n} increments, none lost")
