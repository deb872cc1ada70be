#!/usr/bin/env python3
"""Measures TCP echo servers: Spindle's apps/tcp-echo against Go and a C floor.

    python3 bench/echo_bench.py --build build/release [--runs 5] [--seconds 5] [--slices 5]

Servers (each alone on CPU 0, one thread or GOMAXPROCS=1):
  spindle  <build>/apps/tcp-echo --port P --procs 1
  go       bench/peers/echo, built here into <build>/bench-peers/echo
  limit    <build>/bench/echo-limit: one epoll loop, the least an echo can cost

The load client <build>/bench/echo-load runs on CPU 1. For each workload it
runs once to warm up, then --slices times measured, for --seconds in all;
the server's CPU time (utime + stime from /proc/PID/stat) around the measured
runs, divided by the messages echoed, is its CPU cost per message; p50 and
p99 are the median slice's. Idle memory: the rise of the server's VmRSS while
10,000 connections sit open, per connection.

Each repetition starts every server afresh and measures each row (idle
memory, then each workload) on every server in turn, in an order that
rotates per repetition, a workload slice by slice (A B C A B C ...: Sliced
in benchlib.py), so that drift hits them alike; the tables give
medians over --runs repetitions, and each ratio is the median of the
repetitions' ratios (paired_ratio in benchlib.py). They go to stdout and
<build>/echo-bench-results.md. Exits 1 if a measurement failed (a missing
Spindle server only marks its columns "missing"); unmet goals are reported,
not turned into an exit status.
"""
from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchlib import (LOAD_CPU, SERVER_CPU, Cells, Jobs, MeasureError, OtherLoad, Part, Running,
                      Server, Sliced, add_common_args, check_common_args, cpu_per_count, fmt,
                      fmt_against, go_program, load_note, log, mean_of, measure_idle, measure_part,
                      median_of, meson_program, new_cells, notes, paired_ratio, prepare_all,
                      publish, raise_fd_limit, rotated, run_echo_load, run_repetition, shown,
                      warm_up)


# --- What is measured ----------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    name: str
    size: int
    conns: int
    depth: int

    def args(self) -> list[str]:
        return ["--size", str(self.size), "--conns", str(self.conns), "--depth", str(self.depth)]


WORKLOADS = (
    Workload("64 B × 64 conns × depth 1", 64, 64, 1),
    Workload("64 B × 1,000 conns × depth 1", 64, 1000, 1),
    Workload("64 B × 64 conns × depth 16", 64, 64, 16),
    Workload("16 KiB × 64 conns × depth 1", 16384, 64, 1),
)
SMALL, MANY, PIPELINED, LARGE = WORKLOADS


SERVERS = (
    Server("spindle", meson_program("apps/tcp-echo"),
           lambda path, port: [str(path), "--port", str(port), "--procs", "1"]),
    Server("go", go_program("echo"), lambda path, port: [str(path), "-port", str(port)],
           env={"GOMAXPROCS": "1"}),
    Server("limit", meson_program("bench/echo-limit"),
           lambda path, port: [str(path), "--port", str(port)]),
)


@dataclass
class Sample:
    msgs_per_s: float
    cpu_us_per_msg: float
    p50_us: float
    p99_us: float


# --- One measurement ------------------------------------------------------------------

def workload_job(server: Running, load: Path, work: Workload, args: argparse.Namespace) -> Sliced:
    def run(secs: float) -> dict[str, float]:
        return run_echo_load(load, server.port,
                             [*work.args(), "--warmup", "0", "--seconds", str(secs)],
                             timeout=secs + 60)

    seconds = args.seconds / args.slices
    return Sliced(warm=lambda: warm_up(server, run, args.warmup),
                  part=lambda: measure_part(server, run, seconds,
                                            lambda result: result["msgs_per_s"] * seconds),
                  combine=combine, slices=args.slices)


def combine(parts: list[Part]) -> Sample:
    """Rates and CPU over all the slices; latencies: the median slice's."""
    return Sample(mean_of(parts, "msgs_per_s"), cpu_per_count(parts),
                  median_of(parts, "p50_us"), median_of(parts, "p99_us"))


# --- Running everything ----------------------------------------------------------------

IDLE = "idle"  # the key of the idle-memory cells, next to the workloads'


def describe(sample: Sample | float) -> str:
    if isinstance(sample, Sample):
        return (f"{sample.msgs_per_s:.0f} msgs/s, {sample.cpu_us_per_msg:.3f} CPU µs/msg, "
                f"p50 {sample.p50_us:.0f} µs, p99 {sample.p99_us:.0f} µs")
    return f"{sample:.2f} KiB per idle connection"


def run_all(build: Path, args: argparse.Namespace) -> Cells:
    """Returns {(workload name or IDLE, server label): Cell}."""
    paths, missing = prepare_all(SERVERS, build)
    cells = new_cells([IDLE, *(w.name for w in WORKLOADS)], SERVERS, missing)
    load = build / "bench" / "echo-load"
    if "limit" in missing or not os.access(load, os.X_OK):
        raise MeasureError(f"build bench/echo-load and bench/echo-limit first: "
                           f"meson compile -C {build}")

    def jobs(running: Running) -> Jobs:
        """Idle memory on the fresh process, then each workload."""
        idle = [str(load), "--port", str(running.port), "--cpu", LOAD_CPU, "--idle",
                str(args.idle), "--hold", str(args.hold)]
        return [(IDLE, lambda: measure_idle(running, idle, args.idle, args.hold))] + [
            (w.name, workload_job(running, load, w, args)) for w in WORKLOADS]

    for run in range(args.runs):
        starts = [(s, paths[s.label], build / f"echo-bench-{s.label}.log")
                  for s in rotated(SERVERS, run) if s.label in paths]
        run_repetition(run, starts, jobs, cells, f"run {run + 1}/{args.runs}", describe)
    return cells


# --- Reporting ------------------------------------------------------------------------

def load_table(cells: Cells) -> str:
    labels = [s.label for s in SERVERS]
    rows = ["| workload | " + " | ".join(f"{l} msgs/s" for l in labels) + " | "
            + " | ".join(f"{l} CPU µs/msg" for l in labels)
            + " | ratio spindle/limit | ratio spindle/go | ratio limit/go | "
            + " | ".join(f"{l} p99 µs" for l in labels) + " |",
            "|---" + "|--:" * (3 * len(labels) + 3) + "|"]
    for w in WORKLOADS:
        rows.append(f"| {w.name} | "
                    + " | ".join(shown(cells, w.name, l, "msgs_per_s") for l in labels) + " | "
                    + " | ".join(shown(cells, w.name, l, "cpu_us_per_msg") for l in labels)
                    + f" | {fmt(cpu_ratio(cells, w, 'limit'))}"
                    + f" | {fmt(cpu_ratio(cells, w, 'go'))}"
                    + f" | {fmt(cpu_ratio(cells, w, 'go', mine='limit'))} | "
                    + " | ".join(shown(cells, w.name, l, "p99_us") for l in labels) + " |")
    return "\n".join(rows)


def cpu_ratio(cells: Cells, work: Workload, peer: str, mine: str = "spindle") -> float | None:
    """mine's CPU per message over peer's; limit over go is the C floor's
    distance below Go, which bounds what any server can show against Go."""
    return paired_ratio(cells[work.name, mine], cells[work.name, peer], "cpu_us_per_msg")


def idle_ratio(cells: Cells) -> float | None:
    return paired_ratio(cells[IDLE, "spindle"], cells[IDLE, "go"])


def idle_table(cells: Cells, conns: int) -> str:
    labels = [s.label for s in SERVERS]
    return "\n".join([
        f"| idle memory ({conns:,} conns) | " + " | ".join(labels)
        + " | ratio spindle/go |",
        "|---" + "|--:" * (len(labels) + 1) + "|",
        "| RSS KiB per connection | " + " | ".join(shown(cells, IDLE, l) for l in labels)
        + f" | {fmt(idle_ratio(cells))} |"])


def goals(cells: Cells) -> list[tuple[str, float | None, str, float]]:
    """(goal, measured value, op, bound): the issue's targets for apps/tcp-echo."""
    def p99(work: Workload) -> float | None:
        return paired_ratio(cells[work.name, "spindle"], cells[work.name, "go"], "p99_us")

    out = []
    for w in (SMALL, PIPELINED):
        out.append((f"{w.name}: CPU/msg spindle/limit", cpu_ratio(cells, w, "limit"), "≤", 1.1))
        out.append((f"{w.name}: CPU/msg spindle/go", cpu_ratio(cells, w, "go"), "≤", 0.85))
    out.append((f"{MANY.name}: CPU/msg spindle/go", cpu_ratio(cells, MANY, "go"), "≤", 0.8))
    for w in WORKLOADS:
        out.append((f"{w.name}: p99 spindle/go", p99(w), "≤", 1.0))
    small, large = cells[SMALL.name, "spindle"], cells[LARGE.name, "spindle"]
    out.append((f"spindle CPU/msg {LARGE.name} / {SMALL.name}",
                paired_ratio(large, small, "cpu_us_per_msg"), "<", 4.0))
    out.append(("idle RSS per connection spindle/go", idle_ratio(cells), "≤", 0.5))
    return out


def goal_table(cells: Cells) -> str:
    rows = ["| goal | value | bound | met? |", "|---|--:|---|---|"]
    for name, value, op, bound in goals(cells):
        met = None if value is None else value <= bound if op == "≤" else value < bound
        rows.append(f"| {name} | {fmt_against(value, bound)} | {op} {bound:g} | "
                    f"{'?' if met is None else 'yes' if met else '**no**'} |")
    return "\n".join(rows)


def report(cells: Cells, args: argparse.Namespace, others: float) -> str:
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [f"# TCP echo\n\n{when}, {os.cpu_count()} CPUs; server on CPU {SERVER_CPU}, "
             f"echo-load on CPU {LOAD_CPU}; median of {args.runs} runs of {args.seconds:g} s "
             f"(after {args.warmup:g} s of warm-up) per server and workload, each workload "
             f"run in {args.slices} slices that the servers take in turn; a ratio is the "
             "median of the runs' ratios.\n",
             load_table(cells), "", idle_table(cells, args.idle), "", goal_table(cells)]
    if notes(cells):
        parts += ["", *notes(cells)]
    parts.append("\n" + load_note(others, "echo-load"))
    return "\n".join(parts) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--seconds", type=float, default=5, help="measured s (default 5)")
    parser.add_argument("--warmup", type=float, default=1, help="warm-up s (default 1)")
    args = parser.parse_args()
    check_common_args(parser, args)
    build = args.build.resolve()
    raise_fd_limit()

    others = OtherLoad()  # servers and echo-load are our children: their time is ours
    try:
        cells = run_all(build, args)
    except MeasureError as e:
        log(str(e))
        return 1
    return publish(report(cells, args, others.cpus()), build / "echo-bench-results.md", cells)


if __name__ == "__main__":
    sys.exit(main())
