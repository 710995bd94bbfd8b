"""redis-py's client-side cache (RESP3, CacheConfig) against a node: values are served from
the local cache until another connection's write invalidates them, and FLUSHALL empties it.

redis-py 5.2 enables its cache only for servers reporting version 7.4+; Shoal reports 7.2.4
(HELLO), so the check is lowered here. Everything else is redis-py's own code: it sends
CLIENT TRACKING ON and drops entries on the invalidation pushes.

Usage: tracking_client.py <port>
"""

import sys
import time

import redis
from redis.cache import CacheConfig
from redis.connection import CacheProxyConnection

CacheProxyConnection.MIN_ALLOWED_VERSION = "7.2.0"


def eventually(check, what):
    """Polls `check` for at most 10 s: invalidations arrive asynchronously."""
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.005)


def main():
    port = int(sys.argv[1])
    r = redis.Redis(port=port, protocol=3, cache_config=CacheConfig(), single_connection_client=True)
    w = redis.Redis(port=port)
    w.set("foo", "bar")
    assert r.get("foo") == b"bar"
    cache = r.get_cache()
    assert cache.size == 1, cache.size
    calls = lambda: w.info("commandstats")["cmdstat_get"]["calls"]  # noqa: E731
    before = calls()
    for _ in range(5):
        assert r.get("foo") == b"bar"
    assert calls() == before, "reads were not served from the cache"
    info = w.client_list()
    assert any("t" in c["flags"] for c in info), info
    w.set("foo", "baz")
    eventually(lambda: r.get("foo") == b"baz", "the cached value was not invalidated by SET")
    assert r.get("foo") == b"baz"
    w.delete("foo")
    eventually(lambda: r.get("foo") is None, "the cached value was not invalidated by DEL")
    w.set("foo", "again")
    r.get("foo")
    r.mget("a", "b")
    eventually(lambda: cache.size >= 1, "nothing cached")
    w.flushall()
    eventually(lambda: (r.ping() and cache.size == 0), "FLUSHALL did not empty the cache")
    print("redis-py tracking ok")


if __name__ == "__main__":
    main()
