"""redis-py's RedisCluster against a Shoal cluster: discovery from CLUSTER SLOTS (RESP3 or
RESP2 as asked; redis-py 5.2 as pinned in requirements.txt, or newer), COMMAND-driven key
routing, MOVED handling, hash-tag multi-key commands, and CROSSSLOT for cross-slot ones.

usage: cluster_client.py <seed port> <protocol 2|3>; exits non-zero on the first failure."""
import sys

import redis
from redis.cluster import RedisCluster

port, proto = int(sys.argv[1]), int(sys.argv[2])
rc = RedisCluster(host="127.0.0.1", port=port, protocol=proto, socket_timeout=10)
nodes = rc.get_primaries()
assert len(nodes) == 3, nodes
for i in range(300):
    assert rc.set(f"py:{i}", i) is True
for i in range(300):
    assert rc.get(f"py:{i}") == str(i).encode(), i
assert rc.mset({"{user}a": "1", "{user}b": "2"}) is True
assert rc.mget("{user}a", "{user}b") == [b"1", b"2"]
# Routed per slot by the client.
assert rc.mget_nonatomic("py:1", "py:2", "py:3") == [b"1", b"2", b"3"]
pipe = rc.pipeline()
for i in range(50):
    pipe.incr(f"py:ctr:{proto}:{i}")
assert pipe.execute() == [1] * 50
try:
    rc.execute_command("MSET", "a", "1", "b", "2")
    raise AssertionError("cross-slot MSET succeeded")
except redis.exceptions.RedisClusterException as e:
    # redis-py refuses it before sending; the server's own reply is checked below.
    assert "same key slot" in str(e), e
node = rc.get_node_from_key("a")
try:
    rc.execute_command("MSET", "{a}x", "1", "b", "2", target_nodes=node)
    raise AssertionError("cross-slot MSET succeeded")
except redis.exceptions.ResponseError as e:
    # redis-py 5 keeps the error code in the text, 6+ strips it.
    assert str(e).removeprefix("CROSSSLOT ").startswith("Keys in request don't hash to the same slot"), e
info = rc.cluster_info()
assert info["cluster_state"] == "ok", info
assert rc.delete("py:1") == 1
print("redis-py cluster ok", proto)
