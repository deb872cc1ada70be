#!/usr/bin/env python3
"""Measures TCP echo servers: Spindle's apps/tcp-echo against Go and a C floor.

    python3 bench/echo_bench.py --build build/release [--runs 5] [--seconds 5]

Servers (each alone on CPU 0, one thread or GOMAXPROCS=1):
  spindle  <build>/apps/tcp-echo --port P --procs 1
  go       bench/peers/echo, built here into <build>/bench-peers/echo
  limit    <build>/bench/echo-limit: one epoll loop, the least an echo can cost

The load client <build>/bench/echo-load runs on CPU 1. For each workload it
runs once to warm up and once measured; the server's CPU time (utime + stime
from /proc/PID/stat) around the measured run, divided by the messages echoed,
is its CPU cost per message. Idle memory: the rise of the server's VmRSS while
10,000 connections sit open, per connection.

Each repetition starts every server afresh, in a rotating order so drift hits
them alike; the tables give medians over --runs repetitions and go to stdout
and <build>/echo-bench-results.md. Exits 1 if a measurement failed (a missing
Spindle server only marks its columns "missing"); unmet goals are reported,
not turned into an exit status.
"""
from __future__ import annotations

import argparse
import datetime
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / "bench" / "peers"
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
SERVER_CPU, LOAD_CPU = "0", "1"


class MeasureError(Exception):
    """A program is missing, failed or printed no usable result."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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


@dataclass(frozen=True)
class Server:
    """How to get and start one echo server; argv(path, port) is its command line."""

    label: str
    prepare: Callable[[Path], Path]  # build dir -> the program; raises MeasureError
    argv: Callable[[Path, int], list[str]]
    env: dict[str, str] = field(default_factory=dict)


def meson_program(target: str) -> Callable[[Path], Path]:
    def prepare(build: Path) -> Path:
        path = build / target
        if not os.access(path, os.X_OK):
            raise MeasureError(f"missing {path}: build it first (meson compile -C {build})")
        return path
    return prepare


def go_env(build: Path) -> dict[str, str]:
    """As bench/run.py: Go's caches in the build dir, and no network (there is none)."""
    return {**os.environ, "GOCACHE": str(build / "go-cache"), "GOPATH": str(build / "go-path"),
            "GOPROXY": "off", "GOSUMDB": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}


def go_program(package: str) -> Callable[[Path], Path]:
    def prepare(build: Path) -> Path:
        if shutil.which("go") is None:
            raise MeasureError("no `go` on PATH: install golang-go (scripts/setup bench)")
        path = build / "bench-peers" / package
        cmd = ["go", "build", "-buildvcs=false", "-trimpath", "-o", str(path), f"./{package}"]
        done = subprocess.run(cmd, cwd=PEERS, env=go_env(build), capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise MeasureError(f"go build of bench/peers/{package} failed:\n"
                               f"{done.stdout}{done.stderr}")
        return path
    return prepare


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


@dataclass
class Cell:
    """Every sample of one server on one workload (or idle memory), or why there are none."""

    samples: list = field(default_factory=list)
    error: str | None = None  # "missing" or "failed": shown in the table
    detail: str = ""  # the reason: shown under the table

    def median(self, attr: str | None = None) -> float | None:
        if self.error or not self.samples:
            return None
        return statistics.median(s if attr is None else getattr(s, attr) for s in self.samples)


# --- The server process ----------------------------------------------------------

def free_port() -> int:
    """A port nobody listens on; a fresh one per server start, so that no
    TIME_WAIT of the previous server's connections is in the way."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_us(pid: int) -> float:
    """CPU time of the whole process (every thread, live or exited), in µs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_US  # utime, stime (fields 14, 15)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise MeasureError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Running:
    """A server started on CPU 0 and listening; stop() ends it."""

    def __init__(self, server: Server, path: Path, logfile: Path):
        self.label, self.port = server.label, free_port()
        self.log = logfile.open("w")
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, *server.argv(path, self.port)],
                                     env={**os.environ, **server.env}, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid  # taskset execs the server: same process
        self.logfile = logfile
        self._wait_listening()

    def _wait_listening(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise MeasureError(f"{self.label}: port {self.port} did not accept within {timeout:g} s")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            self.log.flush()
            tail = "".join(f"\n    {line}" for line in
                           self.logfile.read_text().strip().splitlines()[-8:])
            raise MeasureError(f"{self.label} exited with status {self.proc.returncode}; "
                               f"output ends:{tail}")

    def quiesce(self, timeout: float = 5) -> int:
        """Waits until the server's descriptor count holds still (it has closed
        the port probe's connection, say) and returns it."""
        deadline, count, since = time.monotonic() + timeout, -1, time.monotonic()
        while time.monotonic() < deadline:
            now = open_fds(self.pid)
            if now != count:
                count, since = now, time.monotonic()
            elif time.monotonic() - since >= 0.3:
                break
            time.sleep(0.05)
        return count

    def settle(self, fds: int, timeout: float = 10) -> None:
        """Waits until the server is down to `fds` descriptors (closed the last run's)."""
        deadline = time.monotonic() + timeout
        while open_fds(self.pid) > fds and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --- One measurement ------------------------------------------------------------------

def parse_result(line: str) -> dict[str, float]:
    """'RESULT a=1 b=2.5' -> {'a': 1.0, 'b': 2.5}."""
    return {k: float(v) for k, v in (word.split("=", 1) for word in line.split()[1:])}


def run_load(load: Path, port: int, args: list[str], timeout: float) -> dict[str, float]:
    cmd = [str(load), "--port", str(port), "--cpu", LOAD_CPU, *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise MeasureError(f"{' '.join(cmd)}: no result within {timeout:g} s") from None
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or len(results) != 1:
        raise MeasureError(f"{' '.join(cmd)}: exit status {done.returncode}, "
                           f"{len(results)} RESULT lines; {done.stderr.strip()[-300:]}")
    result = parse_result(results[0])
    if result["errors"]:
        raise MeasureError(f"{' '.join(cmd)}: {result['errors']:g} errors; "
                           f"{done.stderr.strip()[-300:]}")
    return result


def measure_workload(server: Running, load: Path, work: Workload, seconds: float,
                     warmup: float) -> Sample:
    base_fds = open_fds(server.pid)
    # Warm up in a run of its own, so the CPU reading can bracket the measured run exactly.
    if warmup > 0:
        run_load(load, server.port, [*work.args(), "--warmup", "0", "--seconds", str(warmup)],
                 timeout=warmup + 60)
        server.settle(base_fds)
    before = cpu_us(server.pid)
    result = run_load(load, server.port, [*work.args(), "--warmup", "0", "--seconds", str(seconds)],
                      timeout=seconds + 60)
    used = cpu_us(server.pid) - before
    server.settle(base_fds)
    server.check_alive()
    msgs = result["msgs_per_s"] * seconds
    if msgs <= 0:
        raise MeasureError(f"{server.label}: no message came back")
    return Sample(result["msgs_per_s"], used / msgs, result["p50_us"], result["p99_us"])


def measure_idle(server: Running, load: Path, conns: int, hold: float) -> float:
    """KiB of server RSS per idle connection."""
    base_fds = server.quiesce()
    before = rss_kib(server.pid)
    cmd = [str(load), "--port", str(server.port), "--cpu", LOAD_CPU, "--idle", str(conns),
           "--hold", str(hold)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = proc.stdout.readline()
    # The client is connected, but the server may still be accepting: the
    # kernel's accept queue holds 4,096 and the rest retry their handshake.
    # Wait for it to have them all, then give it a moment to set each one up
    # (a fiber, a goroutine, a buffer).
    deadline = time.monotonic() + hold
    while open_fds(server.pid) < base_fds + conns and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(min(0.5, max(deadline - time.monotonic(), 0)))
    after, accepted = rss_kib(server.pid), open_fds(server.pid) - base_fds
    proc.send_signal(signal.SIGUSR1)  # done: let go of them before --hold is up
    out, err = proc.communicate(timeout=hold + 60)
    results = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if not ready.startswith("READY") or proc.returncode != 0 or len(results) != 1:
        raise MeasureError(f"{' '.join(cmd)}: exit status {proc.returncode}; {err.strip()[-300:]}")
    errors = parse_result(results[0])["errors"] + parse_result(ready)["errors"]
    if errors:
        raise MeasureError(f"{' '.join(cmd)}: {errors:g} errors; {err.strip()[-300:]}")
    if accepted < conns:  # the rest would not have cost anything yet
        raise MeasureError(f"{server.label} accepted {accepted} of {conns} connections "
                           f"within {hold:g} s")
    server.settle(base_fds)
    return (after - before) / conns


# --- Running everything ----------------------------------------------------------------

IDLE = "idle"  # the key of the idle-memory cells, next to the workloads'


def prepare_all(build: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Returns ({label: program}, {label: why it is missing})."""
    paths, missing = {}, {}
    for server in SERVERS:
        try:
            paths[server.label] = server.prepare(build)
        except MeasureError as e:
            missing[server.label] = str(e).splitlines()[0]
            log(f"{server.label}: {e}")
    return paths, missing


def run_server(server: Server, path: Path, build: Path, args: argparse.Namespace,
               cells: dict[tuple[str, str], Cell], run: int) -> None:
    """One repetition of one server: idle memory on the fresh process, then each workload."""
    load = build / "bench" / "echo-load"
    try:
        running = Running(server, path, build / f"echo-bench-{server.label}.log")
    except MeasureError as e:
        for cell in (c for (_, label), c in cells.items() if label == server.label):
            cell.error, cell.detail = "failed", str(e)
        log(str(e))
        return
    try:
        jobs = [(IDLE, lambda: measure_idle(running, load, args.idle, args.hold))]
        jobs += [(w.name, lambda w=w: measure_workload(running, load, w, args.seconds,
                                                         args.warmup)) for w in WORKLOADS]
        for key, job in jobs:
            cell = cells[key, server.label]
            if cell.error:  # a failure would recur; don't wait for it every run
                continue
            try:
                sample = job()
            except MeasureError as e:
                cell.error, cell.detail = "failed", str(e)
                log(f"{key}: {server.label}: {e}")
                continue
            cell.samples.append(sample)
            log(f"run {run + 1}/{args.runs} {key}: {server.label}: {describe(sample)}")
    finally:
        running.stop()


def describe(sample: Sample | float) -> str:
    if isinstance(sample, Sample):
        return (f"{sample.msgs_per_s:.0f} msgs/s, {sample.cpu_us_per_msg:.3f} CPU µs/msg, "
                f"p50 {sample.p50_us:.0f} µs, p99 {sample.p99_us:.0f} µs")
    return f"{sample:.2f} KiB per idle connection"


def run_all(build: Path, args: argparse.Namespace) -> dict[tuple[str, str], Cell]:
    """Returns {(workload name or IDLE, server label): Cell}."""
    paths, missing = prepare_all(build)
    keys = [IDLE, *(w.name for w in WORKLOADS)]
    cells = {(key, s.label): Cell(error="missing" if s.label in missing else None,
                                  detail=missing.get(s.label, ""))
             for key in keys for s in SERVERS}
    if "limit" in missing or not os.access(build / "bench" / "echo-load", os.X_OK):
        raise MeasureError(f"build bench/echo-load and bench/echo-limit first: "
                           f"meson compile -C {build}")
    for run in range(args.runs):
        # Rotate who goes first, so neither drift nor a warm machine favours one server.
        order = SERVERS[run % len(SERVERS):] + SERVERS[:run % len(SERVERS)]
        for server in order:
            if server.label in paths:
                run_server(server, paths[server.label], build, args, cells, run)
    return cells


# --- Reporting ------------------------------------------------------------------------

def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 \
        else f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def shown(cells: dict, key: str, label: str, attr: str | None = None) -> str:
    cell = cells[key, label]
    return cell.error or fmt(cell.median(attr))


def load_table(cells: dict) -> str:
    labels = [s.label for s in SERVERS]
    rows = ["| workload | " + " | ".join(f"{l} msgs/s" for l in labels) + " | "
            + " | ".join(f"{l} CPU µs/msg" for l in labels)
            + " | ratio spindle/limit | ratio spindle/go | "
            + " | ".join(f"{l} p99 µs" for l in labels) + " |",
            "|---" + "|--:" * (3 * len(labels) + 2) + "|"]
    for w in WORKLOADS:
        cpu = {l: cells[w.name, l].median("cpu_us_per_msg") for l in labels}
        rows.append(f"| {w.name} | "
                    + " | ".join(shown(cells, w.name, l, "msgs_per_s") for l in labels) + " | "
                    + " | ".join(shown(cells, w.name, l, "cpu_us_per_msg") for l in labels)
                    + f" | {fmt(ratio(cpu['spindle'], cpu['limit']))}"
                    + f" | {fmt(ratio(cpu['spindle'], cpu['go']))} | "
                    + " | ".join(shown(cells, w.name, l, "p99_us") for l in labels) + " |")
    return "\n".join(rows)


def idle_table(cells: dict, conns: int) -> str:
    labels = [s.label for s in SERVERS]
    values = {l: cells[IDLE, l].median() for l in labels}
    return "\n".join([
        f"| idle memory ({conns:,} conns) | " + " | ".join(labels)
        + " | ratio spindle/go |",
        "|---" + "|--:" * (len(labels) + 1) + "|",
        "| RSS KiB per connection | " + " | ".join(shown(cells, IDLE, l) for l in labels)
        + f" | {fmt(ratio(values['spindle'], values['go']))} |"])


def goals(cells: dict) -> list[tuple[str, float | None, str, float]]:
    """(goal, measured value, op, bound): the issue's targets for apps/tcp-echo."""
    def cpu(work: Workload, label: str) -> float | None:
        return cells[work.name, label].median("cpu_us_per_msg")

    def p99(work: Workload, label: str) -> float | None:
        return cells[work.name, label].median("p99_us")

    out = []
    for w in (SMALL, PIPELINED):
        out.append((f"{w.name}: CPU/msg spindle/limit", ratio(cpu(w, "spindle"), cpu(w, "limit")),
                    "≤", 1.1))
        out.append((f"{w.name}: CPU/msg spindle/go", ratio(cpu(w, "spindle"), cpu(w, "go")),
                    "≤", 0.85))
    out.append((f"{MANY.name}: CPU/msg spindle/go", ratio(cpu(MANY, "spindle"), cpu(MANY, "go")),
                "≤", 0.8))
    for w in WORKLOADS:
        out.append((f"{w.name}: p99 spindle/go", ratio(p99(w, "spindle"), p99(w, "go")),
                    "≤", 1.0))
    out.append((f"spindle CPU/msg {LARGE.name} / {SMALL.name}",
                ratio(cpu(LARGE, "spindle"), cpu(SMALL, "spindle")), "<", 4.0))
    out.append(("idle RSS per connection spindle/go",
                ratio(cells[IDLE, "spindle"].median(), cells[IDLE, "go"].median()), "≤", 0.5))
    return out


def goal_table(cells: dict) -> str:
    rows = ["| goal | value | bound | met? |", "|---|--:|---|---|"]
    for name, value, op, bound in goals(cells):
        met = None if value is None else value <= bound if op == "≤" else value < bound
        rows.append(f"| {name} | {fmt(value)} | {op} {bound:g} | "
                    f"{'?' if met is None else 'yes' if met else '**no**'} |")
    return "\n".join(rows)


def notes(cells: dict) -> list[str]:
    """Why a cell is empty, once per distinct reason."""
    return list(dict.fromkeys(f"- {label}: {cell.detail.splitlines()[0]}"
                              for (_, label), cell in cells.items() if cell.error))


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def report(cells: dict, args: argparse.Namespace, others: float) -> str:
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [f"# TCP echo\n\n{when}, {os.cpu_count()} CPUs; server on CPU {SERVER_CPU}, "
             f"echo-load on CPU {LOAD_CPU}; median of {args.runs} runs of {args.seconds:g} s "
             f"(after {args.warmup:g} s of warm-up) per server and workload.\n",
             load_table(cells), "", idle_table(cells, args.idle), "", goal_table(cells)]
    if notes(cells):
        parts += ["", *notes(cells)]
    parts.append(f"\nProcesses other than the servers and echo-load kept {others:.2f} CPUs busy "
                 "on average" + ("; the numbers are skewed, rerun on an idle machine."
                                 if others > 0.1 else "."))
    return "\n".join(parts) + "\n"


def raise_fd_limit() -> None:
    """The servers inherit it: 10,000 idle connections need more than 1,024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, required=True, help="meson build dir")
    parser.add_argument("--runs", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--seconds", type=float, default=5, help="measured s (default 5)")
    parser.add_argument("--warmup", type=float, default=1, help="warm-up s (default 1)")
    parser.add_argument("--idle", type=int, default=10000, help="idle conns (default 10000)")
    parser.add_argument("--hold", type=float, default=10,
                        help="most s to wait for the server to accept them (default 10)")
    args = parser.parse_args()
    if args.runs < 1 or args.seconds <= 0 or args.idle < 1:
        parser.error("--runs, --seconds and --idle must be positive")
    if (os.cpu_count() or 1) < 2:
        parser.error("needs two CPUs: one for the server, one for echo-load")
    build = args.build.resolve()
    raise_fd_limit()

    start = time.monotonic(), busy_cpu_seconds(), os.times()
    try:
        cells = run_all(build, args)
    except MeasureError as e:
        log(str(e))
        return 1
    wall, busy = time.monotonic() - start[0], busy_cpu_seconds() - start[1]
    t = os.times()  # servers and echo-load are our children: their time is ours
    ours = (t.user + t.system + t.children_user + t.children_system
            - sum(start[2][:4]))
    text = report(cells, args, max(busy - ours, 0) / wall)
    print(text)
    (build / "echo-bench-results.md").write_text(text)
    log(f"written to {build / 'echo-bench-results.md'}")
    failed = any(cell.error == "failed" for cell in cells.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
