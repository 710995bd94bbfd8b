#!/usr/bin/env python3
"""List benchmark: LPUSH/LPOP and RPUSH/RPOP with redis-benchmark, Shoal against Debian's
redis-server in the same run, with bench.py's servers, pinning and CSV parsing.

Each server runs alone (the other is stopped), single-threaded, pinned to bench.py's server CPU,
with redis-benchmark pinned to its client CPU. Pushes run before pops on the same key, so every
pop finds an element. Rounds are interleaved (Shoal, Redis, Shoal, Redis, ...) and the median
of each is reported. The result replaces the section between the `lists` markers of
docs/benchmarks.md (appended if missing) and is kept raw in bench/results/lists.json.

Run it through `bench/lists.sh`, which builds Shoal first.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (bench.py next to this file)

TESTS = ("lpush", "lpop", "rpush", "rpop")
PIPELINES = (1, 16)
SERVER_CPU = bench.CONFIGS["1t"][1]
BEGIN = "<!-- lists:begin (bench/lists.py writes this section) -->"
END = "<!-- lists:end -->"


def run_server(spec: bench.ServerSpec, requests: int) -> dict:
    server = bench.Server(spec, SERVER_CPU, 1)
    try:
        server.start()
        out = {}
        for p in PIPELINES:
            for t in TESTS:
                w = bench.Workload(t, 16, p)
                out[w.name] = bench.run_benchmark(server, w, requests, timeout=600)
                bench.log(f"  {spec.label:10} {w.name:14} {out[w.name]['rps']:>12,.0f} rps")
        return out
    finally:
        server.cleanup()


def median_run(rs: list[dict]) -> dict | None:
    """The run with the median throughput (the lower middle one for an even count)."""
    if not rs:
        return None
    return sorted(rs, key=lambda r: r["rps"])[(len(rs) - 1) // 2]


def spread(results: dict, server: str, name: str) -> str:
    """Lowest and highest throughput over the rounds, in thousands of requests per second."""
    rps = [r[name]["rps"] for r in results["runs"][server] if name in r]
    return f"{min(rps) / 1e3:,.0f}k-{max(rps) / 1e3:,.0f}k" if rps else ""


def load_note(results: dict) -> str:
    """The machine's 1-minute load average when the run started, if it was recorded."""
    load = results.get("loadavg_start")
    return "" if load is None else f" (1-minute load average at the start: {load:.1f})"


def report(results: dict, specs: list[bench.ServerSpec], args: argparse.Namespace) -> str:
    shoal, redis = specs
    lines = [
        BEGIN,
        "## Lists: LPUSH / LPOP / RPUSH / RPOP",
        "",
        f"Run {results['date']} on {results['machine'].get('Model name', 'an unknown CPU')}, "
        f"{results['rounds']} interleaved rounds (median), {args.requests:,} requests per run, "
        f"50 clients, 16 B elements, one list key. Server single-threaded on CPU {SERVER_CPU}, "
        f"redis-benchmark on CPU {bench.CLIENT_CPU}; the servers ran one at a time. "
        "Absolute figures depend on what else the machine runs; the min-max columns show the "
        "spread between rounds" + load_note(results) + ".",
        "",
        f"- {shoal.label}: `{shoal.version}`",
        f"- {redis.label}: `{redis.version}`",
        "",
        "| workload | Shoal rps | Redis 7.0 rps | rps ratio | Shoal min-max | Redis min-max | "
        "Shoal p50 ms | Redis p50 ms | Shoal CPU-s/1M | Redis CPU-s/1M |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in results["workloads"]:
        s = results["median"][shoal.name].get(name)
        r = results["median"][redis.name].get(name)
        if not s or not r:
            lines.append(f"| {name} | n/a | n/a | | | | | | | |")
            continue
        lines.append(
            f"| {name} | {s['rps']:,.0f} | {r['rps']:,.0f} | {s['rps'] / r['rps']:.2f} | "
            f"{spread(results, shoal.name, name)} | {spread(results, redis.name, name)} | "
            f"{s['p50_ms']:.3f} | {r['p50_ms']:.3f} | {s['cpu_s_per_1m']:.2f} | {r['cpu_s_per_1m']:.2f} |"
        )
    lines += [
        "",
        "Reproduce: `bench/lists.sh` (options: `bench/lists.sh --help`). Raw runs: "
        "`bench/results/lists.json`.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(md: Path, section: str) -> None:
    bench.write_section(md, section, BEGIN, END)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shoal", default=str(bench.REPO / "target/release/shoal-node"))
    ap.add_argument("--redis", default="redis-server")
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--md", default=str(bench.REPO / "docs/benchmarks.md"))
    ap.add_argument("--json", default=str(bench.REPO / "bench/results/lists.json"))
    ap.add_argument("--report-only", action="store_true", help="re-render the section from --json")
    args = ap.parse_args()
    if args.report_only:
        results = json.loads(Path(args.json).read_text())
        specs = [bench.ServerSpec(n, label, "", "") for n, label in (("shoal", "Shoal"), ("redis7", "Redis 7.0"))]
        for s in specs:
            s.version = results.get("versions", {}).get(s.name, "unknown")
        args.requests = results.get("requests", 0)
        write_section(Path(args.md), report(results, specs, args))
        return 0
    specs = [
        bench.ServerSpec("shoal", "Shoal", args.shoal, "shoal"),
        bench.ServerSpec("redis7", "Redis 7.0", args.redis, "redis"),
    ]
    for s in specs:
        s.version = bench.version_of(s.binary)
    runs: dict = {s.name: [] for s in specs}
    loadavg_start = os.getloadavg()[0]
    for i in range(args.rounds):
        bench.log(f"round {i + 1}/{args.rounds}")
        for s in specs:
            runs[s.name].append(run_server(s, args.requests))
    names = [bench.Workload(t, 16, p).name for p in PIPELINES for t in TESTS]
    median = {s.name: {n: median_run([r[n] for r in runs[s.name] if n in r]) for n in names} for s in specs}
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "loadavg_start": loadavg_start,
        "machine": bench.machine_info(),
        "rounds": args.rounds,
        "requests": args.requests,
        "versions": {s.name: s.version for s in specs},
        "workloads": names,
        "runs": runs,
        "median": median,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    write_section(Path(args.md), report(results, specs, args))
    bench.log(f"wrote {args.md} and {args.json}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, bench._on_signal)
    signal.signal(signal.SIGINT, bench._on_signal)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        bench.log("interrupted: stopping servers")
        sys.exit(130)
    finally:
        bench.stop_all()
