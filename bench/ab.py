#!/usr/bin/env python3
"""Compares two builds of a Spindle server (or one and a peer) under the same machine state.

    python3 bench/ab.py OLD NEW [--http PATH] [--conns 1000] [--depth 1]
                        [--rounds 6] [--seconds 5] [--build build/release]

OLD and NEW are server binaries that take `--port P --procs 1` (builds of
apps/tcp-echo, or of apps/hello with --http), or the name of a peer of
bench/echo_bench.py ("go", "limit") or, with --http, of
bench/http_bench.py ("go", "nginx"), started as those benchmarks start it.

On these shared machines the speed drifts by up to 2x for minutes at a time,
so two versions measured one after the other differ by more than most
changes do. Here both serve at once, each on CPU 0 with its own load client
on CPU 1 (bench/echo-load for TCP echo servers such as apps/tcp-echo, or
wrk for HTTP servers such as apps/hello with --http), so whatever state the
machine is in, both see it. Each round starts both afresh, warms them up
together for a second, then measures both together; it prints each one's
CPU per message (utime + stime from /proc, over what its client counted)
and NEW/OLD. The summary is the median of the rounds' ratios.

Both compete for one core, so each gets about half of it: batches are
larger and caches colder than in bench/echo_bench.py or http_bench.py,
whose method the issues' goals name. Use this to tell whether a change
helps (the same binary on both sides gives 1.00 +- 0.01), and, against a
peer, for a ratio that the machine's drift does not move.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from benchlib import (LOAD_CPU, MeasureError, Running, Server, cpu_us, echo_load_result, log,
                      raise_fd_limit)
from echo_bench import SERVERS as ECHO_SERVERS
from http_bench import SERVERS as HTTP_SERVERS
from http_bench import wrk_result


def server(label: str, spec: str, http: bool) -> Server:
    """A peer of the benchmark by name, or a Spindle binary."""
    peers = {s.label: s for s in (HTTP_SERVERS if http else ECHO_SERVERS) if s.label != "spindle"}
    if spec in peers:
        return dataclasses.replace(peers[spec], label=label)
    binary = Path(spec).resolve()
    return Server(label, lambda _build: binary,
                  lambda path, port: [str(path), "--port", str(port), "--procs", "1"])


def load_cmd(args: argparse.Namespace, port: int, seconds: float) -> list[str]:
    if args.http:
        return ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{args.conns}", f"-d{seconds:g}s",
                "--latency", f"http://127.0.0.1:{port}{args.http}"]
    return [str(args.build / "bench" / "echo-load"), "--port", str(port), "--cpu", LOAD_CPU,
            "--size", "64", "--conns", str(args.conns), "--depth", str(args.depth),
            "--warmup", "0", "--seconds", f"{seconds:g}"]


def load_both(args: argparse.Namespace, pair: list[Running], seconds: float) -> list[float]:
    """Loads both servers at once; returns the messages (requests) each
    client completed, checked as the benchmarks check them."""
    procs = [subprocess.Popen(load_cmd(args, r.port, seconds), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in pair]
    outs = [p.communicate(timeout=seconds + 60) for p in procs]
    done = [subprocess.CompletedProcess(p.args, p.returncode, out, err)
            for p, (out, err) in zip(procs, outs)]
    if args.http:
        return [wrk_result(d)["requests"] for d in done]
    return [echo_load_result(d)["msgs_per_s"] * seconds for d in done]


def one_round(args: argparse.Namespace, n: int) -> tuple[float, float]:
    """CPU µs per message of (old, new), both measured at once."""
    servers = [server("old", args.old, bool(args.http)), server("new", args.new, bool(args.http))]
    if n % 2:  # who starts first (and gets the lower port) alternates
        servers.reverse()
    pair = [Running(s, s.prepare(args.build), args.build / f"ab-{s.label}.log") for s in servers]
    try:
        load_both(args, pair, 1)
        before = [cpu_us(r.pid) for r in pair]
        served = load_both(args, pair, args.seconds)
        used = [cpu_us(r.pid) - b for r, b in zip(pair, before)]
        for r in pair:
            r.check_alive()
    finally:
        for r in pair:
            r.stop()
    cost = {r.label: u / n for r, u, n in zip(pair, used, served)}
    return cost["old"], cost["new"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="a server binary, or a peer's name")
    parser.add_argument("new", help="a server binary, or a peer's name")
    parser.add_argument("--http", metavar="PATH", help="HTTP server: wrk GETs PATH")
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--depth", type=int, default=1, help="echo messages in flight per conn")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--build", type=Path, default=Path("build/release"),
                        help="where bench/echo-load is (default build/release)")
    args = parser.parse_args()
    if args.http and shutil.which("wrk") is None:
        parser.error("no wrk on PATH: install wrk (scripts/setup)")
    args.build = args.build.resolve()
    raise_fd_limit()
    ratios = []
    try:
        for n in range(args.rounds):
            old, new = one_round(args, n)
            ratios.append(new / old)
            print(f"round {n + 1}: old {old:.3f} µs, new {new:.3f} µs, new/old {new / old:.4f}",
                  flush=True)
    except MeasureError as e:
        log(str(e))
        return 1
    print(f"median new/old CPU per message over {len(ratios)} rounds: "
          f"{statistics.median(ratios):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
