"""redis-py's RedisCluster with read_from_replicas=True against a Shoal cluster whose first
shard has a replica: discovery lists the replica (CLUSTER SLOTS), the client sends READONLY
to it and spreads reads over primary and replica; every read returns what was written, and
the replica really served some of them (its commandstats).

usage: replica_reads.py <seed port> <protocol 2|3>; exits non-zero on the first failure."""
import sys

from redis.cluster import RedisCluster

port, proto = int(sys.argv[1]), int(sys.argv[2])
rc = RedisCluster(host="127.0.0.1", port=port, protocol=proto, socket_timeout=10, read_from_replicas=True)
replicas = rc.get_replicas()
assert len(replicas) == 1, replicas
assert len(rc.get_primaries()) == 2
for i in range(400):
    assert rc.set(f"rr:{i}", i) is True
acks = rc.execute_command("WAIT", 1, 5000, target_nodes=RedisCluster.PRIMARIES)
for i in range(400):
    assert rc.get(f"rr:{i}") == str(i).encode(), i
replica = replicas[0]
stats = rc.info("commandstats", target_nodes=replica)
gets = stats.get("cmdstat_get", {}).get("calls", 0)
assert gets > 0, f"the replica served no GET: {stats}"
print(f"redis-py read_from_replicas ok (RESP{proto}): {gets} GETs served by the replica, WAIT {acks}")
