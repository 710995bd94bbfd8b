#!/usr/bin/env python3
"""ACL benchmark: what the per-command ACL check costs. GET and SET with redis-benchmark for
Shoal as the default user (unrestricted: one branch), Shoal as a restricted user with key
patterns (the command bit, the keys against two patterns) and Redis 7.0 as the same
restricted user, with bench.py's servers, pinning and CSV parsing.

Each server runs alone, single-threaded, pinned to bench.py's server CPU, with
redis-benchmark on its client CPU; 50 clients, pipeline 1 and 16, keys drawn from 100,000.
Rounds are interleaved and medians reported. The result replaces the section between the
`acl` markers of docs/benchmarks.md and is kept raw in bench/results/acl.json.

Run it through `bench/acl.sh`, which builds Shoal and installs the peers.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (bench.py next to this file)

SERVER_CPU = bench.CONFIGS["1t"][1]
USER, PASSWORD = b"bench", b"bench-pw"
RULES = [b"on", b">" + PASSWORD, b"~cache:*", b"~key:*", b"resetchannels", b"+@all", b"-@dangerous"]
OPS = ("GET", "SET")
BEGIN = "<!-- acl:begin (bench/acl.py writes this section) -->"
END = "<!-- acl:end -->"


def restricted(spec: bench.ServerSpec) -> bool:
    return spec.name.endswith("-acl")


def run(server: bench.Server, spec: bench.ServerSpec, pipeline: int, requests: int) -> dict:
    argv = [
        "taskset", "-c", bench.CLIENT_CPU, "redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port),
        "-c", "50", "-n", str(requests), "-r", "100000", "-P", str(pipeline), "--csv", "-t", "get,set",
    ]  # fmt: skip
    if restricted(spec):
        argv += ["--user", USER.decode(), "-a", PASSWORD.decode()]
    cpu0 = server.cpu()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    cpu = server.cpu() - cpu0
    rows = {r["test"]: r for r in csv.DictReader(io.StringIO(res.stdout))}
    if res.returncode != 0 or not all(op in rows for op in OPS):
        raise bench.ServerError(f"redis-benchmark failed: {(res.stderr or res.stdout)[-200:]}")
    out = {op: {"rps": float(rows[op]["rps"]), "p50_ms": float(rows[op]["p50_latency_ms"])} for op in OPS}
    out["cpu_s_per_1m"] = cpu / (2 * requests) * 1e6
    return out


def one_round(spec: bench.ServerSpec, requests: int) -> dict:
    server = bench.Server(spec, SERVER_CPU, 1)
    try:
        server.start()
        if restricted(spec):
            reply = bench.command(server.port, [b"ACL", b"SETUSER", USER, *RULES])
            if reply != b"+OK":
                raise bench.ServerError(f"ACL SETUSER replied {reply!r}")
        out = {}
        for p in (1, 16):
            r = run(server, spec, p, requests)
            for op in OPS:
                out[f"{op} P{p}"] = r[op]
                bench.log(f"  {spec.label:28} {op} P{p}: {r[op]['rps']:,.0f} rps")
        return out
    finally:
        server.cleanup()


def report(results: dict) -> str:
    specs = results["specs"]
    med = results["median"]
    rules = " ".join(r.decode() for r in RULES if not r.startswith(b">"))
    lines = [
        BEGIN,
        "## ACL: the cost of the permission check",
        "",
        f"Run {results['date']}, {results['rounds']} interleaved round(s) (medians), {results['requests']:,} "
        f"requests per test: redis-benchmark `-t get,set` on keys `key:` + 100,000 random, 50 clients. "
        f"Server single-threaded on CPU {SERVER_CPU}, redis-benchmark on CPU {bench.CLIENT_CPU}, one server "
        f"at a time. The restricted user is `{rules}` (every command a bit test, every key matched "
        "against two patterns); the default user is `on nopass ~* &* +@all` (one branch).",
        "",
    ]
    lines += [f"- {s['label']}: `{s['version']}`" for s in specs]
    lines += ["", "| test | " + " | ".join(f"{s['label']} rps" for s in specs)
              + " | restricted / default (Shoal) | Shoal / Redis (restricted) |",
              "|---|" + "---:|" * (len(specs) + 2)]
    for op in [f"{o} P{p}" for p in (1, 16) for o in OPS]:
        rps = {s["name"]: med.get(s["name"], {}).get(op, {}).get("rps", float("nan")) for s in specs}
        own = rps.get("shoal-acl", float("nan")) / rps.get("shoal", float("nan"))
        peer = rps.get("shoal-acl", float("nan")) / rps.get("redis7-acl", float("nan"))
        lines.append(f"| {op} | " + " | ".join(f"{rps[s['name']]:,.0f}" for s in specs)
                     + f" | {own:.3f} | {peer:.2f} |")
    lines += ["", "Reproduce: `bench/acl.sh`. Raw runs: `bench/results/acl.json`.", END]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shoal", default=str(bench.REPO / "target/release/shoal-node"))
    ap.add_argument("--redis", default="redis-server")
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--md", default=str(bench.REPO / "docs/benchmarks.md"))
    ap.add_argument("--json", default=str(bench.REPO / "bench/results/acl.json"))
    args = ap.parse_args()
    specs = [
        bench.ServerSpec("shoal", "Shoal, default user", args.shoal, "shoal"),
        bench.ServerSpec("shoal-acl", "Shoal, restricted user", args.shoal, "shoal"),
        bench.ServerSpec("redis7-acl", "Redis 7.0, restricted user", args.redis, "redis"),
    ]
    for s in specs:
        s.version = bench.version_of(s.binary)
    runs = bench.interleaved_rounds(specs, args.rounds, lambda s: one_round(s, args.requests))
    ops = [f"{o} P{p}" for p in (1, 16) for o in OPS]
    median = {name: {op: bench.median_by_rps(rs, op) for op in ops} for name, rs in runs.items() if rs}
    results = {"date": time.strftime("%Y-%m-%d"), "rounds": args.rounds, "requests": args.requests,
               "specs": [{"name": s.name, "label": s.label, "version": s.version} for s in specs],
               "runs": runs, "median": median}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    bench.write_section(Path(args.md), report(results), BEGIN, END)
    bench.log(f"wrote {args.md} and {args.json}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, bench._on_signal)
    signal.signal(signal.SIGINT, bench._on_signal)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        bench.stop_all()
