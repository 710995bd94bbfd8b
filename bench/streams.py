#!/usr/bin/env python3
"""Streams benchmark: XADD and XREADGROUP throughput, server CPU per request and memory per
entry, Shoal against Redis 7.0 and Valkey 9.1 in one run, with bench.py's servers and pinning.

Per server and round: XADD `f v` with auto IDs onto 100 streams (pipeline 1 and 16), which
leaves about 20,000 entries per stream; then a consumer group per stream and XREADGROUP
COUNT 1 `>` of those entries (pipeline 16), each entry delivered once. Memory per entry is
`used_memory` after the XADD runs, less the empty server's, over the entries stored. Rounds
are interleaved (Shoal, Redis, Valkey, Shoal, ...) and medians reported. The result replaces
the section between the `streams` markers of docs/benchmarks.md; raw runs go to
bench/results/streams.json.

Run it through `bench/streams.sh`, which builds Shoal and installs the peers.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

SERVER_CPU = bench.CONFIGS["1t"][1]
STREAMS = 100
BEGIN = "<!-- streams:begin (bench/streams.py writes this section) -->"
END = "<!-- streams:end -->"


def redis_benchmark(server: bench.Server, pipeline: int, requests: int, cmd: list[str]) -> dict:
    argv = ["taskset", "-c", bench.CLIENT_CPU, "redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port),
            "-c", "50", "-n", str(requests), "-r", str(STREAMS), "-P", str(pipeline), "--csv", *cmd]
    cpu0 = server.cpu()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    cpu = server.cpu() - cpu0
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    if res.returncode != 0 or not rows:
        raise bench.ServerError(f"redis-benchmark failed: {(res.stderr or res.stdout)[-200:]}")
    row = rows[-1]
    return {"rps": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"]),
            "p99_ms": float(row["p99_latency_ms"]), "cpu_s_per_1m": cpu / requests * 1e6}


def info_int(port: int, section: str, field: str) -> int:
    text = bench.command(port, [b"INFO", section.encode()]).decode()
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    raise bench.ServerError(f"INFO {section} has no {field}")


def one_round(spec: bench.ServerSpec, requests: int) -> dict:
    server = bench.Server(spec, SERVER_CPU, 1)
    try:
        server.start()
        empty = info_int(server.port, "memory", "used_memory")
        out = {}
        xadd = ["XADD", "s:__rand_int__", "*", "f", "v"]
        for p in (1, 16):
            out[f"XADD P{p}"] = redis_benchmark(server, p, requests, xadd)
            bench.log(f"  {spec.label:10} XADD P{p}: {out[f'XADD P{p}']['rps']:,.0f} rps")
        entries = 0
        for i in range(STREAMS):
            key = f"s:{i:012d}".encode()
            entries += int(bench.command(server.port, [b"XLEN", key])[1:])
            reply = bench.command(server.port, [b"XGROUP", b"CREATE", key, b"g", b"0"])
            if reply != b"+OK":
                raise bench.ServerError(f"XGROUP CREATE replied {reply!r}")
        used = info_int(server.port, "memory", "used_memory")
        out["bytes_per_entry"] = (used - empty) / max(entries, 1)
        out["entries"] = entries
        read = ["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s:__rand_int__", ">"]
        out["XREADGROUP P16"] = redis_benchmark(server, 16, requests, read)
        bench.log(f"  {spec.label:10} XREADGROUP P16: {out['XREADGROUP P16']['rps']:,.0f} rps, "
                  f"{out['bytes_per_entry']:.1f} B/entry over {entries:,} entries")
        return out
    finally:
        server.cleanup()


OPS = ("XADD P1", "XADD P16", "XREADGROUP P16")


def report(results: dict) -> str:
    specs = results["specs"]
    med = results["median"]
    lines = [
        BEGIN,
        "## Streams: XADD, XREADGROUP, memory per entry",
        "",
        f"Run {results['date']}, {results['rounds']} interleaved round(s) (medians), {results['requests']:,} "
        f"requests per run, 50 clients, {STREAMS} streams; XADD `f v` with auto IDs, then XREADGROUP COUNT 1 `>` "
        f"of those entries. Server single-threaded on CPU {SERVER_CPU}, redis-benchmark on CPU "
        f"{bench.CLIENT_CPU}, one server at a time.",
        "",
    ]
    lines += [f"- {s['label']}: `{s['version']}`" for s in specs]
    lines += ["", "| operation | " + " | ".join(f"{s['label']} rps" for s in specs)
              + " | Shoal / Redis | Shoal / Valkey | " + " | ".join(f"{s['label']} CPU-s/1M" for s in specs) + " |",
              "|---|" + "---:|" * (2 * len(specs) + 2)]
    for op in OPS:
        rps = [med.get(s["name"], {}).get(op, {}).get("rps", float("nan")) for s in specs]
        cpu = [med.get(s["name"], {}).get(op, {}).get("cpu_s_per_1m", float("nan")) for s in specs]
        ratio = lambda i: f"{rps[0] / rps[i]:.2f}" if len(rps) > i and rps[i] == rps[i] else "n/a"  # noqa: E731
        lines.append(f"| {op} | " + " | ".join(f"{r:,.0f}" for r in rps) + f" | {ratio(1)} | {ratio(2)} | "
                     + " | ".join(f"{c:.2f}" for c in cpu) + " |")
    mem = [med.get(s["name"], {}).get("bytes_per_entry", float("nan")) for s in specs]
    lines += ["", "| memory | " + " | ".join(s["label"] for s in specs) + " |", "|---|" + "---:|" * len(specs),
              "| bytes per entry | " + " | ".join(f"{m:.1f}" for m in mem) + " |"]
    lines += ["", "Reproduce: `bench/streams.sh`. Raw runs: `bench/results/streams.json`.", END]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shoal", default=str(bench.REPO / "target/release/shoal-node"))
    ap.add_argument("--redis", default="redis-server")
    ap.add_argument("--valkey", default=None)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--md", default=str(bench.REPO / "docs/benchmarks.md"))
    ap.add_argument("--json", default=str(bench.REPO / "bench/results/streams.json"))
    args = ap.parse_args()
    specs = bench.peers(args.shoal, args.redis, args.valkey)
    runs = bench.interleaved_rounds(specs, args.rounds, lambda s: one_round(s, args.requests))
    median = {}
    for name, rs in runs.items():
        if rs:
            median[name] = {op: bench.median_by_rps(rs, op) for op in OPS}
            median[name]["bytes_per_entry"] = sorted(r["bytes_per_entry"] for r in rs)[(len(rs) - 1) // 2]
    results = {"date": time.strftime("%Y-%m-%d"), "rounds": args.rounds, "requests": args.requests,
               "specs": [{"name": s.name, "label": s.label, "version": s.version} for s in specs],
               "runs": runs, "median": median}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    bench.write_section(Path(args.md), report(results), BEGIN, END)
    bench.log(f"wrote {args.md} and {args.json}")
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, bench._on_signal)
    signal.signal(signal.SIGINT, bench._on_signal)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        bench.stop_all()
