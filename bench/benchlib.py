"""What the server benchmarks (echo_bench.py, http_bench.py) share.

A server benchmark starts every server afresh per repetition on CPU 0,
drives one at a time from CPU 1, and reads the server's costs from /proc:
CPU time (utime + stime of every thread) around a measured run, and VmRSS
around a crowd of idle connections. A row (a workload, idle memory) is
measured on every server in turn; a workload in slices of a second taken
by the servers in turn (Sliced). Each (row, server) pair collects
its samples in a Cell, one per repetition; the report gives medians, and
ratios as the median of each repetition's pair. This module is that
machinery; a benchmark brings its servers, its load client and its goals.
"""
from __future__ import annotations

import argparse
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
from typing import Callable, Sequence, TypeVar

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / "bench" / "peers"
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
SERVER_CPU, LOAD_CPU = "0", "1"


class MeasureError(Exception):
    """A program is missing, failed or printed no usable result."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- Getting the servers -----------------------------------------------------------

@dataclass(frozen=True)
class Server:
    """How to get and start one server; argv(path, port) is its command line."""

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


def prepare_all(servers: Sequence[Server],
                build: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Returns ({label: program}, {label: why it is missing})."""
    paths, missing = {}, {}
    for server in servers:
        try:
            paths[server.label] = server.prepare(build)
        except MeasureError as e:
            missing[server.label] = str(e).splitlines()[0]
            log(f"{server.label}: {e}")
    return paths, missing


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


# --- Measurements --------------------------------------------------------------------

def parse_result(line: str) -> dict[str, float]:
    """'RESULT a=1 b=2.5' -> {'a': 1.0, 'b': 2.5}."""
    return {k: float(v) for k, v in (word.split("=", 1) for word in line.split()[1:])}


T = TypeVar("T")


def run_echo_load(load: Path, port: int, args: list[str], timeout: float) -> dict[str, float]:
    """One run of bench/echo-load on LOAD_CPU -> its RESULT line's figures; raises on errors."""
    cmd = [str(load), "--port", str(port), "--cpu", LOAD_CPU, *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise MeasureError(f"{' '.join(cmd)}: no result within {timeout:g} s") from None
    return echo_load_result(done)


def echo_load_result(done: subprocess.CompletedProcess) -> dict[str, float]:
    """A finished echo-load run -> its RESULT line's figures; raises on errors."""
    cmd = done.args
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or len(results) != 1:
        raise MeasureError(f"{' '.join(cmd)}: exit status {done.returncode}, "
                           f"{len(results)} RESULT lines; {done.stderr.strip()[-300:]}")
    result = parse_result(results[0])
    if result["errors"]:
        raise MeasureError(f"{' '.join(cmd)}: {result['errors']:g} errors; "
                           f"{done.stderr.strip()[-300:]}")
    return result


def warm_up(server: Running, run: Callable[[float], object], seconds: float) -> None:
    """run(s) loads the server for s seconds: once, unmeasured, in a run of
    its own, so that every measured slice's CPU reading brackets only itself."""
    if seconds > 0:
        base_fds = open_fds(server.pid)
        run(seconds)
        server.settle(base_fds)


# How long the connections sit idle before RSS is read, for every server
# alike. Idle means idle for a while: Spindle copies the stack of a fiber
# parked over 1 s (Config::stack_evict_after) to the heap and drops its
# pages, as Go shrinks the stacks of idle goroutines at GC; 0.5 s, the
# earlier wait, caught connections before that.
IDLE_SETTLE_S = 3.0


def measure_idle(server: Running, cmd: list[str], conns: int, hold: float) -> float:
    """KiB of server RSS per idle connection. cmd opens `conns` connections,
    prints "READY conns=N errors=N", holds them until SIGUSR1 (or `hold` s),
    then prints "RESULT idle_conns=N errors=N" (bench/tools/echo-load --idle,
    bench/tools/http_idle.py)."""
    base_fds = server.quiesce()
    before = rss_kib(server.pid)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = proc.stdout.readline()
    # The client is connected, but the server may still be accepting: the
    # kernel's accept queue holds 4,096 and the rest retry their handshake.
    # Wait for it to have them all, then let them sit idle for IDLE_SETTLE_S.
    deadline = time.monotonic() + hold
    while open_fds(server.pid) < base_fds + conns and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(min(IDLE_SETTLE_S, max(deadline - time.monotonic(), 0)))
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


@dataclass
class Cell:
    """Every sample of one server on one row (a workload, idle memory), or why there are none."""

    samples: dict[int, object] = field(default_factory=dict)  # repetition -> sample
    error: str | None = None  # "missing" or "failed": shown in the table
    detail: str = ""  # the reason: shown under the table

    def add(self, run: int, sample: object) -> None:
        self.samples[run] = sample

    def values(self, attr: str | None = None) -> dict[int, float]:
        """repetition -> the figure; a sample may lack one (None: not measured that run)."""
        if self.error:
            return {}
        figures = {run: s if attr is None else getattr(s, attr)
                   for run, s in self.samples.items()}
        return {run: v for run, v in figures.items() if v is not None}

    def median(self, attr: str | None = None) -> float | None:
        values = self.values(attr)
        return statistics.median(values.values()) if values else None


def paired_ratio(mine: Cell, peer: Cell, attr: str | None = None) -> float | None:
    """The median over repetitions of mine/peer, each measured in the same
    repetition (in turn): the machine's drift cancels in each pair."""
    a, b = mine.values(attr), peer.values(attr)
    pairs = [a[run] / b[run] for run in a.keys() & b.keys() if b[run]]
    return statistics.median(pairs) if pairs else None


@dataclass(frozen=True)
class Sliced:
    """One server's measurement of a row taken in `slices` short parts, which
    run_repetition interleaves with the other servers' parts (A B C A B C
    ...). The machine's speed changes by a quarter or more for a few seconds
    at a time (the echo bench's runs of 5 s per server swung between 4.8 and
    6.3 CPU µs per message, every server alike); parts of a second each put
    every server into every such spell, where runs back to back compared
    whichever server ran in a fast one with one that ran in a slow one."""

    warm: Callable[[], None]  # once, before the first part (warm_up)
    part: Callable[[], object]  # one slice, measured
    combine: Callable[[list], object]  # every part -> the row's sample
    slices: int


@dataclass
class Part:
    """One measured slice of a workload on one server."""

    result: dict[str, float]  # the load client's figures for the slice
    count: float  # messages or requests it completed
    cpu_us: float  # the server's CPU time during it


def measure_part(server: Running, run: Callable[[float], dict[str, float]], seconds: float,
                 count: Callable[[dict[str, float]], float]) -> Part:
    """One slice: run(seconds) loads the server; its CPU time around that,
    read once the server has closed the slice's connections; count(result)
    is what the slice completed."""
    base_fds = open_fds(server.pid)
    before = cpu_us(server.pid)
    result = run(seconds)
    used = cpu_us(server.pid) - before
    server.settle(base_fds)
    server.check_alive()
    done = count(result)
    if done <= 0:
        raise MeasureError(f"{server.label}: nothing came back")
    return Part(result, done, used)


def cpu_per_count(parts: Sequence[Part]) -> float:
    """The server's CPU µs per message or request over every slice."""
    return sum(p.cpu_us for p in parts) / sum(p.count for p in parts)


def mean_of(parts: Sequence[Part], key: str) -> float:
    """A rate over slices of equal length."""
    return statistics.fmean(p.result[key] for p in parts)


def median_of(parts: Sequence[Part], key: str) -> float | None:
    """A latency: the median slice's (None where no slice measured it)."""
    values = [p.result[key] for p in parts if p.result.get(key) is not None]
    return statistics.median(values) if values else None


Cells = dict[tuple[str, str], Cell]  # (row, server label) -> Cell
# (row, how to measure it): once, or in interleaved slices
Jobs = list[tuple[str, "Callable[[], object] | Sliced"]]


def new_cells(rows: Sequence[str], servers: Sequence[Server], missing: dict[str, str]) -> Cells:
    return {(row, s.label): Cell(error="missing" if s.label in missing else None,
                                 detail=missing.get(s.label, ""))
            for row in rows for s in servers}


def rotated(servers: Sequence[Server], run: int) -> Sequence[Server]:
    """Who goes first in a row rotates per run, so neither drift nor a warm machine
    favours one."""
    k = run % len(servers)
    return [*servers[k:], *servers[:k]]


def run_repetition(run: int, starts: Sequence[tuple[Server, Path, Path]],
                   jobs: Callable[[Running], Jobs], cells: Cells, progress: str,
                   describe: Callable[[object], str]) -> None:
    """Repetition `run`: every (server, program, log file) of `starts` started
    afresh and all kept running (each sits idle on CPU 0 while another is
    measured), then jobs(server) row by row: a row is measured on every
    server in turn, in the order of `starts` (a Sliced job part by part),
    so that the machine's drift hits the servers of one row alike instead
    of whichever ran its rows then."""
    running: list[Running] = []
    try:
        for server, path, logfile in starts:
            try:
                running.append(Running(server, path, logfile))
            except MeasureError as e:
                for cell in (c for (_, label), c in cells.items() if label == server.label):
                    cell.error, cell.detail = "failed", str(e)
                log(str(e))
        for row in zip(*(jobs(r) for r in running)):  # a (key, job) per server
            key = row[0][0]
            # A failed cell is not measured again: the failure would recur.
            todo = [(s, job) for s, (_, job) in zip(running, row) if not cells[key, s.label].error]
            for server, sample in measure_row(key, todo, cells):
                cells[key, server.label].add(run, sample)
                log(f"{progress} {key}: {server.label}: {describe(sample)}")
    finally:
        for server in running:
            server.stop()


def measure_row(key: str, todo: list, cells: Cells) -> list[tuple[Running, object]]:
    """Each (server, job) of one row -> (server, sample); a job that raises
    MeasureError marks its cell failed instead."""
    def attempt(server: Running, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except MeasureError as e:
            cells[key, server.label].error, cells[key, server.label].detail = "failed", str(e)
            log(f"{key}: {server.label}: {e}")
            return None

    def ok(server: Running) -> bool:
        return not cells[key, server.label].error

    done = [(s, attempt(s, job)) for s, job in todo if not isinstance(job, Sliced)]
    sliced = [(s, job) for s, job in todo if isinstance(job, Sliced)]
    for server, job in sliced:
        attempt(server, job.warm)
    parts: dict[str, list] = {s.label: [] for s, _ in sliced}
    for i in range(max((job.slices for _, job in sliced), default=0)):
        for server, job in sliced:
            if i < job.slices and ok(server):
                parts[server.label].append(attempt(server, job.part))
    done += [(s, attempt(s, lambda j=job, s=s: j.combine(parts[s.label])))
             for s, job in sliced if ok(s)]
    return [(s, sample) for s, sample in done if ok(s)]


# --- Reporting ------------------------------------------------------------------------

def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 \
        else f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def fmt_against(value: float | None, bound: float) -> str:
    """fmt(value), with digits enough to differ from the goal's bound it is
    set against: 0.9996 against 1 reads '0.9996', not a missed '1.000'."""
    text = fmt(value)
    if value is not None and value != bound and float(text) == bound:
        return f"{value:.4f}"
    return text


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def shown(cells: Cells, key: str, label: str, attr: str | None = None) -> str:
    cell = cells[key, label]
    return cell.error or fmt(cell.median(attr))


def notes(cells: Cells) -> list[str]:
    """Why a cell is empty, once per distinct reason."""
    return list(dict.fromkeys(f"- {label}: {cell.detail.splitlines()[0]}"
                              for (_, label), cell in cells.items() if cell.error))


class OtherLoad:
    """How many CPUs, on average, processes other than us and our children
    (the servers, the load clients) kept busy since creation."""

    def __init__(self) -> None:
        self.start = self.now()

    @staticmethod
    def now() -> tuple[float, float, float]:
        """(wall time, busy CPU time of the machine, CPU time of us and our children)."""
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
        t = os.times()
        return time.monotonic(), busy, t.user + t.system + t.children_user + t.children_system

    def cpus(self) -> float:
        wall, busy, ours = (now - then for now, then in zip(self.now(), self.start))
        return max(busy - ours, 0.0) / wall if wall > 0 else 0.0


def load_note(others: float, client: str) -> str:
    return (f"Processes other than the servers and {client} kept {others:.2f} CPUs busy "
            "on average" + ("; the numbers are skewed, rerun on an idle machine."
                            if others > 0.1 else "."))


def publish(text: str, path: Path, cells: Cells) -> int:
    """Prints the report and writes it to path; the exit status: 1 if a
    measurement failed (a missing server only marks its columns)."""
    print(text)
    path.write_text(text)
    log(f"written to {path}")
    return 1 if any(cell.error == "failed" for cell in cells.values()) else 0


# --- The command line ---------------------------------------------------------------

def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--build", type=Path, required=True, help="meson build dir")
    parser.add_argument("--runs", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--idle", type=int, default=10000, help="idle conns (default 10000)")
    parser.add_argument("--slices", type=int, default=5,
                        help="parts a workload's measured seconds are cut into, taken by the "
                             "servers in turn (default 5)")
    parser.add_argument("--hold", type=float, default=10,
                        help="most s to wait for the server to accept them (default 10)")


def check_common_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.runs < 1 or args.seconds <= 0 or args.idle < 1 or args.slices < 1:
        parser.error("--runs, --seconds, --slices and --idle must be positive")
    if (os.cpu_count() or 1) < 2:
        parser.error("needs two CPUs: one for the server, one for the load")


def raise_fd_limit() -> None:
    """The servers inherit it: 10,000 idle connections need more than 1,024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
