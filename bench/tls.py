#!/usr/bin/env python3
"""TLS benchmark: GET over TLS with redis-benchmark --tls, Shoal against Redis 7.0 (Debian's
redis-server is built with TLS), at pipeline 1 and 16; and plain GET at pipeline 16 of a
Shoal build from before TLS support against this one, to show the plain path did not regress.

Each server runs alone, single-threaded, pinned to CPU 0, with redis-benchmark pinned to CPU 1;
50 clients, 100,000 keys of 64 bytes preloaded, server certificate from a throwaway CA made
with `openssl`, no client certificates (`tls-auth-clients no`; the handshake is not what is
measured: redis-benchmark opens its 50 connections once). Rounds are interleaved and medians
reported. The result replaces the section between the `tls` markers of docs/benchmarks.md and
is kept raw in bench/results/tls.json.

Run it through `bench/tls.sh`, which builds Shoal first.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (bench.py next to this file)

SERVER_CPU = "0"
CLIENT_CPU = "1"
KEYS = 100_000
BEGIN = "<!-- tls:begin (bench/tls.py writes this section) -->"
END = "<!-- tls:end -->"


def make_certs(d: Path) -> None:
    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
        "-out", "ca.crt", "-days", "2", "-subj", "/CN=bench CA")
    ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=bench")
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "ext")


class TlsSpec(bench.ServerSpec):
    """A server with a TLS port beside its plain one (picked free at each start)."""

    certs: Path = Path()
    tls_port: int = 0

    def argv(self, port: int, io_threads: int, workdir: Path) -> list[str]:
        self.tls_port = bench.free_port()
        return super().argv(port, io_threads, workdir) + [
            "--tls-port", str(self.tls_port),
            "--tls-cert-file", str(self.certs / "server.crt"),
            "--tls-key-file", str(self.certs / "server.key"),
            "--tls-ca-cert-file", str(self.certs / "ca.crt"),
            "--tls-auth-clients", "no",
        ]  # fmt: skip


def run(server: bench.Server, port: int, tls: Path | None, pipeline: int, requests: int) -> dict:
    argv = ["taskset", "-c", CLIENT_CPU, "redis-benchmark", "-h", "127.0.0.1", "-p", str(port)]
    if tls is not None:
        argv += ["--tls", "--cacert", str(tls / "ca.crt")]
    argv += ["-c", "50", "-n", str(requests), "-r", str(KEYS), "-d", "64", "-P", str(pipeline), "--csv", "-t", "get"]
    cpu0 = server.cpu()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    cpu = server.cpu() - cpu0
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    if res.returncode != 0 or not rows:
        raise bench.ServerError(f"redis-benchmark failed: {(res.stderr or res.stdout)[-300:]}")
    row = rows[-1]
    return {"rps": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"]),
            "p99_ms": float(row["p99_latency_ms"]), "cpu_s_per_1m": cpu / requests * 1e6}


def preload(port: int) -> None:
    argv = ["taskset", "-c", CLIENT_CPU, "redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", "50",
            "-n", str(KEYS * 4), "-r", str(KEYS), "-d", "64", "-P", "64", "-q", "-t", "set"]
    subprocess.run(argv, capture_output=True, timeout=300, check=True)


def one_round(spec: bench.ServerSpec, certs: Path, requests: int) -> dict:
    server = bench.Server(spec, SERVER_CPU, 1)
    try:
        server.start()
        preload(server.port)
        out = {}
        if isinstance(spec, TlsSpec):
            for p in (1, 16):
                out[f"TLS P{p}"] = run(server, spec.tls_port, certs, p, requests)
                bench.log(f"  {spec.label:14} TLS GET P{p}: {out[f'TLS P{p}']['rps']:,.0f} rps")
        if spec.kind == "shoal":
            out["plain P16"] = run(server, server.port, None, 16, requests)
            bench.log(f"  {spec.label:14} plain GET P16: {out['plain P16']['rps']:,.0f} rps")
        return out
    finally:
        server.cleanup()


def cell(med: dict, name: str, op: str, key: str = "rps", fmt: str = "{:,.0f}") -> str:
    v = med.get(name, {}).get(op)
    return fmt.format(v[key]) if v else "n/a"


def report(results: dict) -> str:
    med = results["median"]
    labels = {s["name"]: s for s in results["specs"]}

    def ratio(a: str, b: str, op_a: str, op_b: str) -> str:
        x, y = med.get(a, {}).get(op_a), med.get(b, {}).get(op_b)
        return f"{x['rps'] / y['rps']:.2f}" if x and y else "n/a"

    lines = [
        BEGIN,
        "## TLS: GET over TLS, and the plain path before/after",
        "",
        f"Run {results['date']}, {results['rounds']} interleaved round(s) (medians), {results['requests']:,} requests "
        f"per run: `redis-benchmark --tls -t get -d 64 -r {KEYS}` with 50 clients on {KEYS:,} preloaded keys. "
        f"Servers single-threaded on CPU {SERVER_CPU}, redis-benchmark on CPU {CLIENT_CPU}, one server at a time; "
        "ECDSA P-256 server certificate, TLS 1.3 as negotiated by default, no client certificates.",
        "",
    ]
    lines += [f"- {s['label']}: `{s['version']}`" for s in results["specs"]]
    lines += [
        "",
        "| workload | Shoal rps | Redis 7.0 rps | Shoal / Redis | Shoal p50 ms | Redis p50 ms | Shoal CPU-s/1M | Redis CPU-s/1M |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op in ("TLS P1", "TLS P16"):
        lines.append(
            f"| GET {op} | {cell(med, 'shoal', op)} | {cell(med, 'redis7', op)} | {ratio('shoal', 'redis7', op, op)} | "
            f"{cell(med, 'shoal', op, 'p50_ms', '{:.3f}')} | {cell(med, 'redis7', op, 'p50_ms', '{:.3f}')} | "
            f"{cell(med, 'shoal', op, 'cpu_s_per_1m', '{:.2f}')} | {cell(med, 'redis7', op, 'cpu_s_per_1m', '{:.2f}')} |"
        )
    before = labels.get("shoal-before", {}).get("version", "n/a")
    lines += [
        "",
        f"Plain GET P16, same method: Shoal before TLS (`{before}`, {results['before_path']}) "
        f"{cell(med, 'shoal-before', 'plain P16')} rps, with TLS support {cell(med, 'shoal', 'plain P16')} rps "
        f"(after / before {ratio('shoal', 'shoal-before', 'plain P16', 'plain P16')}; CPU-s/1M "
        f"{cell(med, 'shoal-before', 'plain P16', 'cpu_s_per_1m', '{:.2f}')} → "
        f"{cell(med, 'shoal', 'plain P16', 'cpu_s_per_1m', '{:.2f}')}).",
        "",
        "Reproduce: `bench/tls.sh --shoal-before <shoal-node built from the commit before TLS>`. "
        "Raw runs: `bench/results/tls.json`.",
        END,
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shoal", default=str(bench.REPO / "target/release/shoal-node"))
    ap.add_argument("--shoal-before", default=None, help="a shoal-node without TLS, for the plain P16 comparison")
    ap.add_argument("--redis", default="redis-server")
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--md", default=str(bench.REPO / "docs/benchmarks.md"))
    ap.add_argument("--json", default=str(bench.REPO / "bench/results/tls.json"))
    args = ap.parse_args()
    certs = Path(tempfile.mkdtemp(prefix="shoal-bench-tls-"))
    make_certs(certs)
    TlsSpec.certs = certs
    specs: list[bench.ServerSpec] = [TlsSpec("shoal", "Shoal", args.shoal, "shoal"),
                                     TlsSpec("redis7", "Redis 7.0", args.redis, "redis")]
    if args.shoal_before:
        specs.append(bench.ServerSpec("shoal-before", "Shoal before TLS", args.shoal_before, "shoal"))
    for s in specs:
        s.version = bench.version_of(s.binary)
    runs = bench.interleaved_rounds(specs, args.rounds, lambda s: one_round(s, certs, args.requests))
    median = {name: {op: bench.median_by_rps(rs, op) for op in rs[0]} for name, rs in runs.items() if rs}
    results = {"date": time.strftime("%Y-%m-%d"), "rounds": args.rounds, "requests": args.requests,
               "before_path": args.shoal_before or "not given",
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
