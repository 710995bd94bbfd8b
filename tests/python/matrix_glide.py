"""The client matrix with valkey-glide's GlideClusterClient (asyncio API; see
matrix_common.py for the scenarios and the protocol with tests/tests/client_matrix.rs).

Usage: matrix_glide.py <seed-port> <resp 2|3> <hashtag>

GLIDE keeps its own slot map (CLUSTER SLOTS from several nodes, which must agree), sends
HELLO 3 by default, and routes per command: pipelines are non-atomic ClusterBatches, MULTI/EXEC
an atomic one, SCAN its cluster-wide cursor, publish-on-a-node a custom command with a
ByAddressRoute. Exact and sharded subscriptions use one client each so their messages stay
apart; subscriptions are dynamic (`subscribe`/`ssubscribe`, GLIDE 2.x).
"""

import asyncio
import sys

from glide import (
    AllPrimaries,
    ByAddressRoute,
    ClusterBatch,
    ClusterScanCursor,
    GlideClusterClient,
    GlideClusterClientConfiguration,
    InfoSection,
    NodeAddress,
    ProtocolVersion,
)

import matrix_common as mc


def text(v):
    return v.decode() if isinstance(v, bytes) else v


class Adapter:
    @classmethod
    async def create(cls, port, resp):
        a = cls()
        proto = ProtocolVersion.RESP3 if resp == 3 else ProtocolVersion.RESP2

        async def make():
            cfg = GlideClusterClientConfiguration(
                [NodeAddress("127.0.0.1", port)], protocol=proto, request_timeout=5000
            )
            return await GlideClusterClient.create(cfg)

        a.c, a.blocker, a.sub, a.ssub = [await make() for _ in range(4)]
        a.messages, a.smessages = [], []
        return a

    async def _primaries(self):
        infos = await self.c.info([InfoSection.SERVER], route=AllPrimaries())
        return sorted(text(k) for k in infos)

    async def primaries(self):
        return len(await self._primaries())

    async def set(self, k, v):
        return text(await self.c.set(k, v)) == "OK"

    async def get(self, k):
        return text(await self.c.get(k))

    async def pipeline(self, keys):
        b = ClusterBatch(is_atomic=False)
        for k in keys:
            b.set(k, f"v-{k}")
        for k in keys:
            b.get(k)
        res = await self.c.exec(b, raise_on_error=True)
        return [text(v) for v in res[len(keys):]]

    async def tx_incr(self, keys):
        b = ClusterBatch(is_atomic=True)
        for k in keys:
            b.incr(k)
        return list(await self.c.exec(b, raise_on_error=True))

    async def scan_all(self, match):
        cursor, found = ClusterScanCursor(), []
        while not cursor.is_finished():
            cursor, keys = await self.c.scan(cursor, match=match, count=100)
            found.extend(text(k) for k in keys)
        return found

    async def blpop(self, key, secs):
        r = await self.blocker.blpop([key], secs)
        return [text(x) for x in r] if r else None

    async def blocked_clients_at_least(self, n):
        infos = await self.c.info([InfoSection.CLIENTS], route=AllPrimaries())
        total = 0
        for v in infos.values():
            for line in text(v).splitlines():
                if line.startswith("blocked_clients:"):
                    total += int(line.split(":")[1])
        return total >= n

    async def rpush(self, k, v):
        await self.c.rpush(k, [v])

    async def publish_on_every_primary(self, ch, msg):
        addrs = await self._primaries()
        for addr in addrs:
            host, port = addr.rsplit(":", 1)
            await self.c.custom_command(["PUBLISH", ch, msg], route=ByAddressRoute(host, int(port)))
        return len(addrs)

    async def subscribe(self, ch):
        await self.sub.subscribe({ch}, timeout_ms=5000)

    @staticmethod
    def _drain(client, into):
        while (m := client.try_get_pubsub_message()) is not None:
            into.append(f"{text(m.channel)}:{text(m.message)}")

    async def count_messages(self, n):
        self._drain(self.sub, self.messages)
        return len(self.messages) >= n

    async def ssubscribe(self, ch):
        await self.ssub.ssubscribe({ch}, timeout_ms=5000)

    async def spublish(self, ch, msg):
        await self.c.publish(msg, ch, sharded=True)

    async def count_smessages(self, n):
        self._drain(self.ssub, self.smessages)
        return len(self.smessages) >= n


async def main():
    port, resp, tag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    stdin = mc.Stdin()
    a = await Adapter.create(port, resp)
    # GLIDE's pub/sub needs RESP3 pushes: with RESP2 a subscribe is never confirmed (it times
    # out, on Valkey 9.1 as on Shoal), so those scenarios are skipped.
    skip = {}
    if resp == 2:
        why = "GLIDE has pub/sub over RESP3 only"
        skip = {s: why for s in ("pubsub", "sharded_pubsub", "sharded_pubsub_slot_move")}
    mc.report(await mc.run_scenarios(a, tag, stdin, skip))


if __name__ == "__main__":
    asyncio.run(main())
