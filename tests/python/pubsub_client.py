"""redis-py's PubSub against a Shoal node: SUBSCRIBE/PSUBSCRIBE confirmations, messages and
pattern messages, message handlers on a worker thread, PUBSUB introspection, UNSUBSCRIBE, and
keyspace notifications, in RESP2 or RESP3 (push frames).

usage: pubsub_client.py <port> <protocol 2|3>; exits non-zero on the first failure."""
import sys
import threading
import time

import redis

port, proto = int(sys.argv[1]), int(sys.argv[2])
r = redis.Redis(host="127.0.0.1", port=port, protocol=proto, socket_timeout=10)
p = r.pubsub()


def next_message(ps, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = ps.get_message(timeout=0.5)
        if m is not None:
            return m
    raise AssertionError("no message within the timeout")


p.subscribe("chan")
m = next_message(p)
assert m["type"] == "subscribe" and m["channel"] == b"chan" and m["data"] == 1, m
p.psubscribe("ch*")
m = next_message(p)
assert m["type"] == "psubscribe" and m["channel"] == b"ch*" and m["data"] == 2, m
assert r.pubsub_numsub("chan") == [(b"chan", 1)], r.pubsub_numsub("chan")
assert r.pubsub_numpat() == 1
assert r.pubsub_channels() == [b"chan"], r.pubsub_channels()
assert r.publish("chan", "hello") == 2
got = sorted([next_message(p), next_message(p)], key=lambda m: m["type"])
assert got[0]["type"] == "message" and got[0]["data"] == b"hello", got
assert got[1]["type"] == "pmessage" and got[1]["pattern"] == b"ch*", got
p.unsubscribe("chan")
m = next_message(p)
assert m["type"] == "unsubscribe" and m["data"] == 1, m
p.punsubscribe()
m = next_message(p)
assert m["type"] == "punsubscribe" and m["data"] == 0, m
assert r.publish("chan", "nobody") == 0

# A handler running on redis-py's worker thread.
received = []
done = threading.Event()


def handler(message):
    received.append(message["data"])
    if len(received) == 100:
        done.set()


p2 = r.pubsub(ignore_subscribe_messages=True)
p2.subscribe(**{"work": handler})
worker = p2.run_in_thread(sleep_time=0.01, daemon=True)
deadline = time.monotonic() + 10
while r.pubsub_numsub("work") != [(b"work", 1)]:
    assert time.monotonic() < deadline, "worker did not subscribe"
    time.sleep(0.01)
for i in range(100):
    assert r.publish("work", str(i)) == 1
assert done.wait(10), f"handler got {len(received)} messages"
assert received == [str(i).encode() for i in range(100)], received
worker.stop()
worker.join(10)

# Keyspace notifications.
r.config_set("notify-keyspace-events", "KEA")
assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "AKE"}
p3 = r.pubsub(ignore_subscribe_messages=True)
p3.psubscribe("__keyevent@0__:*")
deadline = time.monotonic() + 10
while r.pubsub_numpat() != 1:
    assert time.monotonic() < deadline
    time.sleep(0.01)
r.set("pykey", "v")
m = next_message(p3)
assert m["channel"] == b"__keyevent@0__:set" and m["data"] == b"pykey", m
r.config_set("notify-keyspace-events", "")
p.close()
p2.close()
p3.close()
print("redis-py pubsub ok")
