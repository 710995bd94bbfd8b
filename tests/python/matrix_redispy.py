"""The client matrix with redis-py's RedisCluster (see matrix_common.py for the scenarios and
the protocol with tests/tests/client_matrix.rs).

Usage: matrix_redispy.py <seed-port> <resp 2|3> <hashtag>

redis-py's cluster API is synchronous: each adapter call runs inline, except BLPOP, which
runs on a thread so the scenario can watch it block and wake it from another connection.
MULTI/EXEC goes through the key's node connection (redis-py 5's ClusterPipeline has no
transactions).
"""

import asyncio
import sys

from redis.cluster import ClusterNode, RedisCluster

import matrix_common as mc


class Adapter:
    def __init__(self, port, resp):
        def make():
            return RedisCluster(
                startup_nodes=[ClusterNode("127.0.0.1", port)],
                protocol=resp,
                decode_responses=True,
                socket_timeout=30,
            )

        self.c = make()
        self.blocker = make()
        self.ps = self.c.pubsub()
        self.sps = self.c.pubsub()
        self.messages = []
        self.smessages = []

    async def primaries(self):
        return len(self.c.get_primaries())

    async def set(self, k, v):
        return self.c.set(k, v) is True

    async def get(self, k):
        return self.c.get(k)

    async def pipeline(self, keys):
        p = self.c.pipeline()
        for k in keys:
            p.set(k, f"v-{k}")
        for k in keys:
            p.get(k)
        return p.execute()[len(keys):]

    async def tx_incr(self, keys):
        node = self.c.get_node_from_key(keys[0])
        p = self.c.get_redis_connection(node).pipeline(transaction=True)
        for k in keys:
            p.incr(k)
        return p.execute()

    async def scan_all(self, match):
        return list(self.c.scan_iter(match=match, count=100))

    async def blpop(self, key, secs):
        r = await asyncio.to_thread(self.blocker.blpop, [key], secs)
        return list(r) if r else None

    async def blocked_clients_at_least(self, n):
        infos = self.c.info("clients", target_nodes=RedisCluster.PRIMARIES)
        return sum(int(i.get("blocked_clients", 0)) for i in infos.values()) >= n

    async def rpush(self, k, v):
        self.c.rpush(k, v)

    async def publish_on_every_primary(self, ch, msg):
        primaries = self.c.get_primaries()
        for node in primaries:
            self.c.execute_command("PUBLISH", ch, msg, target_nodes=node)
        return len(primaries)

    async def subscribe(self, ch):
        self.ps.subscribe(ch)

    async def count_messages(self, n):
        while (m := self.ps.get_message(ignore_subscribe_messages=True, timeout=0.01)) is not None:
            self.messages.append(f"{m['channel']}:{m['data']}")
        return len(self.messages) >= n

    async def ssubscribe(self, ch):
        self.sps.ssubscribe(ch)

    async def spublish(self, ch, msg):
        self.c.spublish(ch, msg)

    async def count_smessages(self, n):
        # One call reads at most one message, None also for a (s)subscribe confirmation.
        for _ in range(64):
            m = self.sps.get_sharded_message()
            if m is not None and m["type"] == "smessage":
                self.smessages.append(f"{m['channel']}:{m['data']}")
        return len(self.smessages) >= n


async def main():
    port, resp, tag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    stdin = mc.Stdin()
    a = Adapter(port, resp)
    mc.report(await mc.run_scenarios(a, tag, stdin))


if __name__ == "__main__":
    asyncio.run(main())
