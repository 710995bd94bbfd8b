#!/usr/bin/env python3
"""Random commands against a debug `shoal-node`: the node must survive every one of them.

Why: the differential suite checks the replies we thought of; this throws every command in the
node's own `COMMAND LIST` at it with random arguments drawn from values that break arithmetic
and parsing (i64 bounds, huge and negative counts, NaN and infinities, option keywords in the
wrong places). A debug build has overflow checks on, so an arithmetic slip is a panic here
rather than a silently wrong figure. It found two panics the other suites missed (INFO's
`avg_ttl` over far-future deadlines; CONFIG RESETSTAT under the ops/sec sampler).

    python3 tests/python/command_fuzz.py [--bin target/debug/shoal-node] [--seeds 1 2]
                                         [--io-threads 1 2] [--seconds 10]

Exits 1, printing the node's output, if the node dies; 0 otherwise. Replies are not judged.
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Commands that end the process, change who we are, or wait on the outside world.
SKIP = {
    "shutdown", "debug", "monitor", "sync", "psync", "failover", "replicaof", "slaveof",
    "client|pause", "client|kill", "config|set", "auth", "hello",
    "subscribe", "psubscribe", "ssubscribe",
}
VALUES = [
    "0", "1", "-1", "2", "-2", "9223372036854775807", "-9223372036854775808",
    "9223372036854775808", "18446744073709551615", "4294967296", "-4294967297", "1e308",
    "-inf", "+inf", "nan", "0.5", "", "k", "k2", "k3", "{t}a", "{t}b", "x" * 100,
    "LIMIT", "COUNT", "WITHSCORES", "BYSCORE", "BYLEX", "REV", "NX", "XX", "GT", "LT", "CH",
    "INCR", "EX", "PX", "EXAT", "PXAT", "KEEPTTL", "GET", "MATCH", "*", "TYPE", "string",
    "[a", "(a", "-", "+", "(1", "LEFT", "RIGHT", "BEFORE", "AFTER", "WEIGHTS", "AGGREGATE",
    "SUM", "MIN", "MAX", "u8", "i64", "u63", "i65", "#1", "OVERFLOW", "WRAP", "SAT", "FAIL",
    "SET", "INCRBY", "BIT", "BYTE", "AND", "OR", "XOR", "NOT", "RANK", "MAXLEN", "IDLETIME",
    "FREQ", "ABSTTL", "REPLACE", "DB", "STORE", "ALPHA", "BY", "ASC", "DESC", "WITHVALUES",
    "ID", "LEN", "MINMATCHLEN", "IDX", "WITHMATCHLEN", "SLOTSRANGE", "16383", "16384",
    "100000000000", "-100000000000",
    # SORT and GEO
    "NOSORT", "#", "w_*", "*->f", "k3->", "FROMMEMBER", "FROMLONLAT", "BYRADIUS", "BYBOX", "m",
    "km", "mi", "ft", "WITHDIST", "WITHCOORD", "WITHHASH", "ANY", "STOREDIST", "180", "-180",
    "85.05112878", "-85.05112879", "0x1p3", "geo",
]
SETUP = [
    ["SET", "k", "10"], ["RPUSH", "k2", "a", "b", "c"], ["ZADD", "k3", "1", "a", "2", "b"],
    ["HSET", "{t}a", "f", "1"], ["SADD", "{t}b", "m", "n"], ["SETBIT", "x" * 100, "7", "1"],
    ["PFADD", "hll", "a"], ["SET", "t", "v", "PX", "100000"],
    ["GEOADD", "geo", "13.361389", "38.115556", "a", "-180", "-85.05112878", "b", "180", "0", "c"],
    ["MSET", "w_a", "1", "w_b", "x"],
]

# Streams: IDs at the edges, the ID forms and keywords, and a stream with a group to work on.
VALUES += [
    "st", "g", "c", "$", ">", "0-0", "1-1", "1-*", "18446744073709551615-18446744073709551615",
    "(18446744073709551615-18446744073709551615", "(0-0", "STREAMS", "GROUP", "NOACK", "BLOCK",
    "MKSTREAM", "ENTRIESREAD", "JUSTID", "FORCE", "LASTID", "RETRYCOUNT", "MINID", "NOMKSTREAM",
    "FULL", "~", "=",
]
SETUP += [
    ["XADD", "st", "1-1", "f", "v"], ["XADD", "st", "2-1", "f", "v", "g", "w"],
    ["XGROUP", "CREATE", "st", "g", "0"], ["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "st", ">"],
]


def encode(args: list[str]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Node:
    def __init__(self, binary: str, io_threads: int):
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--save", "", "--io-threads", str(io_threads)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.port = 0
        deadline = time.monotonic() + 10
        for line in self.proc.stdout:  # the port line comes first
            if "port=" in line:
                self.port = int(line.split("port=")[1].split(".")[0].split(",")[0])
                break
            if time.monotonic() > deadline:
                break
        if not self.port:
            sys.exit("shoal-node did not report its port")
        self.sock = self.connect()

    def connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.settimeout(0.5)
        return s

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, args: list[str]) -> None:
        """Sends one command and takes what comes back within 0.5 s. A connection that blocks
        (BLPOP 0), closes (QUIT) or breaks is replaced by a fresh one."""
        try:
            self.sock.sendall(encode(args))
            if self.sock.recv(1 << 20):
                return
        except OSError:
            pass
        self.sock.close()
        if self.alive():
            self.sock = self.connect()

    def command_names(self) -> list[str]:
        s = self.connect()
        s.settimeout(2)
        s.sendall(encode(["COMMAND", "LIST"]))
        raw = s.recv(1 << 20)
        total = int(raw[1:raw.index(b"\r\n")])  # `*N`, then N bulk strings: 1 + 2N lines
        while raw.count(b"\r\n") < 1 + 2 * total:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            raw += chunk
        s.close()
        return [p.decode() for p in raw.split(b"\r\n")[1:] if p and not p.startswith(b"$")]

    def stop(self) -> str:
        if self.alive():
            self.proc.kill()
        return self.proc.communicate(timeout=10)[0] or ""


def run(binary: str, seed: int, io_threads: int, seconds: float) -> bool:
    node = Node(binary, io_threads)
    names = [n for n in node.command_names() if n not in SKIP and n.split("|")[0] not in SKIP]
    rnd = random.Random(seed)
    sent, last = 0, []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and node.alive():
        if sent % 200 == 0:
            for c in SETUP:
                node.send(c)
        last = names[rnd.randrange(len(names))].split("|")
        last += [rnd.choice(VALUES) for _ in range(rnd.randint(0, 7))]
        node.send(last)
        sent += 1
    if node.alive():
        node.stop()
        print(f"seed {seed}, io-threads {io_threads}: {sent} commands "
              f"({len(names)} kinds), node alive")
        return True
    out = node.stop()
    print(f"seed {seed}, io-threads {io_threads}: node died after {sent} commands; "
          f"last sent: {last!r}\n{out[-4000:]}")
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(REPO / "target/debug/shoal-node"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--io-threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seconds", type=float, default=10.0, help="per seed and io-threads value")
    args = ap.parse_args()
    ok = True
    for seed in args.seeds:
        for n in args.io_threads:
            ok &= run(args.bin, seed, n, args.seconds)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
