#!/usr/bin/env python3
"""Scripting benchmark: EVALSHA of a small script (GET then INCR of one key) with
redis-benchmark, Shoal against Redis 7.0 and Valkey 9.1 in one run, with bench.py's servers,
pinning and CSV parsing.

Each server runs alone, single-threaded, pinned to bench.py's server CPU, with
redis-benchmark on its client CPU; 50 clients, pipeline 1 and 16, keys drawn from 100,000.
Rounds are interleaved (Shoal, Redis, Valkey, Shoal, ...) and medians reported. The result
replaces the section between the `scripting` markers of docs/benchmarks.md and is kept raw
in bench/results/scripting.json.

Run it through `bench/scripting.sh`, which builds Shoal and installs the peers.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (bench.py next to this file)

SCRIPT = b"redis.call('GET', KEYS[1]) return redis.call('INCR', KEYS[1])"
SERVER_CPU = bench.CONFIGS["1t"][1]
BEGIN = "<!-- scripting:begin (bench/scripting.py writes this section) -->"
END = "<!-- scripting:end -->"


def run(server: bench.Server, sha: str, pipeline: int, requests: int) -> dict:
    argv = [
        "taskset", "-c", bench.CLIENT_CPU, "redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port),
        "-c", "50", "-n", str(requests), "-r", "100000", "-P", str(pipeline), "--csv",
        "evalsha", sha, "1", "key:__rand_int__",
    ]  # fmt: skip
    cpu0 = server.cpu()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    cpu = server.cpu() - cpu0
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    if res.returncode != 0 or not rows:
        raise bench.ServerError(f"redis-benchmark failed: {(res.stderr or res.stdout)[-200:]}")
    row = rows[-1]
    return {"rps": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"]),
            "p99_ms": float(row["p99_latency_ms"]), "cpu_s_per_1m": cpu / requests * 1e6}


def one_round(spec: bench.ServerSpec, requests: int) -> dict:
    server = bench.Server(spec, SERVER_CPU, 1)
    try:
        server.start()
        sha = bench.command(server.port, [b"SCRIPT", b"LOAD", SCRIPT]).decode()
        # Correctness first: the script must answer an integer.
        reply = bench.command(server.port, [b"EVALSHA", sha.encode(), b"1", b"probe"])
        if not reply.startswith(b":"):
            raise bench.ServerError(f"EVALSHA replied {reply!r}")
        out = {}
        for p in (1, 16):
            out[f"P{p}"] = run(server, sha, p, requests)
            bench.log(f"  {spec.label:10} EVALSHA P{p}: {out[f'P{p}']['rps']:,.0f} rps")
        return out
    finally:
        server.cleanup()


def report(results: dict) -> str:
    specs = results["specs"]
    med = results["median"]
    lines = [
        BEGIN,
        "## Scripting: EVALSHA",
        "",
        f"Run {results['date']}, {results['rounds']} interleaved round(s) (medians), {results['requests']:,} "
        f"requests per run: `EVALSHA` of `{SCRIPT.decode()}` on keys drawn from 100,000, 50 clients. Server "
        f"single-threaded on CPU {SERVER_CPU}, redis-benchmark on CPU {bench.CLIENT_CPU}, one server at a time.",
        "",
    ]
    lines += [f"- {s['label']}: `{s['version']}`" for s in specs]
    lines += ["", "| pipeline | " + " | ".join(f"{s['label']} rps" for s in specs)
              + " | Shoal / Redis | Shoal / Valkey | " + " | ".join(f"{s['label']} CPU-s/1M" for s in specs) + " |",
              "|---|" + "---:|" * (2 * len(specs) + 2)]
    for p in ("P1", "P16"):
        rps = [med.get(s["name"], {}).get(p, {}).get("rps", float("nan")) for s in specs]
        cpu = [med.get(s["name"], {}).get(p, {}).get("cpu_s_per_1m", float("nan")) for s in specs]
        ratio = lambda i: f"{rps[0] / rps[i]:.2f}" if len(rps) > i and rps[i] == rps[i] else "n/a"  # noqa: E731
        lines.append(f"| {p} | " + " | ".join(f"{r:,.0f}" for r in rps) + f" | {ratio(1)} | {ratio(2)} | "
                     + " | ".join(f"{c:.2f}" for c in cpu) + " |")
    lines += ["", "Reproduce: `bench/scripting.sh`. Raw runs: `bench/results/scripting.json`.", END]
    return "\n".join(lines) + "\n"


def write_section(md: Path, section: str) -> None:
    bench.write_section(md, section, BEGIN, END)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shoal", default=str(bench.REPO / "target/release/shoal-node"))
    ap.add_argument("--redis", default="redis-server")
    ap.add_argument("--valkey", default=None)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--md", default=str(bench.REPO / "docs/benchmarks.md"))
    ap.add_argument("--json", default=str(bench.REPO / "bench/results/scripting.json"))
    args = ap.parse_args()
    specs = bench.peers(args.shoal, args.redis, args.valkey)
    runs = bench.interleaved_rounds(specs, args.rounds, lambda s: one_round(s, args.requests))
    median = {name: {p: bench.median_by_rps(rs, p) for p in ("P1", "P16")} for name, rs in runs.items() if rs}
    results = {"date": time.strftime("%Y-%m-%d"), "rounds": args.rounds, "requests": args.requests,
               "specs": [{"name": s.name, "label": s.label, "version": s.version} for s in specs],
               "runs": runs, "median": median}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    write_section(Path(args.md), report(results))
    bench.log(f"wrote {args.md} and {args.json}; median Shoal/peers: "
              + ", ".join(f"{n} {statistics.fmean([m['P1']['rps'], m['P16']['rps']]):,.0f}" for n, m in median.items()))
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
