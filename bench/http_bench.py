#!/usr/bin/env python3
"""Measures HTTP servers: Spindle's apps/hello against Go's net/http and nginx.

    python3 bench/http_bench.py --build build/release [--runs 5] [--seconds 5] [--slices 5]
                                [--only W]

Servers (each alone on CPU 0: --procs 1, GOMAXPROCS=1, one nginx process):
  spindle  <build>/apps/hello --port P --procs 1
  go       bench/peers/http (net/http, stdlib only), built here into <build>/bench-peers/http
  nginx    Debian's nginx-light with bench/peers/nginx/nginx.conf.in: `return 200`
           and a static JSON; no master process, so the PID read is the worker

The load is wrk (Debian's) with one thread on CPU 1; pipelining goes through
bench/tools/pipeline.lua. For each workload wrk runs once to warm up, then
--slices times measured, for --seconds in all; the server's CPU time (utime
+ stime of all its threads, from /proc/PID/stat) around the measured runs,
divided by the requests wrk completed, is its CPU cost per request. wrk's one thread saturates near
110-130k requests/s on these machines, so for servers faster than that the
CPU per request is the fair figure and requests/s says more about wrk. p99
is wrk's --latency figure (the median slice's); pipelined, where wrk's
distribution is broken, it comes from a run of bench/echo-load --http after
each slice (each request timed alone).
A run in which wrk reports socket errors or answers with a status above 399
(wrk's count; each endpoint's status, type and body are also checked once
by hand per server start) fails that cell: it is shown as "failed", never
averaged in. Idle memory: the rise of the server's VmRSS while 10,000
keep-alive connections, each having had one answer, sit open
(bench/tools/http_idle.py on CPU 1), per connection.

Each repetition starts every server afresh and measures each row (idle
memory, then each workload) on every server in turn, in an order that
rotates per repetition, a workload slice by slice (A B C A B C ...: Sliced
in benchlib.py), so that drift hits them alike; the tables give
medians over --runs repetitions, and each ratio is the median of the
repetitions' ratios (paired_ratio in benchlib.py). They go to stdout and
<build>/http-bench-results.md, the command line at the top. Exits 1 if a
measurement failed (a missing server only marks its columns "missing");
unmet goals are reported, not turned into an exit status.
"""
from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchlib import (LOAD_CPU, PEERS, REPO, SERVER_CPU, Cells, Jobs, MeasureError, OtherLoad,
                      Part, Running, Server, Sliced, add_common_args, check_common_args,
                      cpu_per_count, fmt, fmt_against, go_program, load_note, log, mean_of,
                      measure_idle, measure_part, median_of, meson_program, new_cells, notes,
                      paired_ratio, prepare_all, publish, raise_fd_limit, rotated, run_echo_load,
                      run_repetition, shown, warm_up)

TOOLS = REPO / "bench" / "tools"


# --- What is measured ----------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    key: str  # what --only names
    name: str
    path: str
    conns: int
    depth: int  # requests per write; above 1 through pipeline.lua

    def check(self, port: int) -> None:
        """One request by hand: wrk counts only 4xx/5xx answers as errors, so
        a redirect or a wrong body would otherwise be measured as success."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", self.path)
            answer = conn.getresponse()
            body, kind = answer.read(), answer.getheader("Content-Type", "")
        except (OSError, http.client.HTTPException) as e:
            raise MeasureError(f"GET {self.path}: {e}") from None
        finally:
            conn.close()
        want_body, want_kind = EXPECTED[self.path]
        if answer.status != 200 or not kind.startswith(want_kind) or not want_body(body):
            raise MeasureError(f"GET {self.path}: {answer.status}, Content-Type {kind!r}, "
                               f"body {body[:80]!r}")

    def wrk_args(self) -> list[str]:
        args = [f"-c{self.conns}"]
        if self.depth > 1:
            args += ["-s", str(TOOLS / "pipeline.lua")]
        return args


def is_hello_json(body: bytes) -> bool:
    try:
        return json.loads(body) == {"message": "Hello, World!"}
    except ValueError:
        return False


# path -> (is the body right, the Content-Type it starts with)
EXPECTED = {
    "/plaintext": (lambda body: body == b"Hello, World!", "text/plain"),
    "/json": (is_hello_json, "application/json"),
}

WORKLOADS = (
    Workload("plaintext-64", "plaintext × 64 conns", "/plaintext", 64, 1),
    Workload("plaintext-256", "plaintext × 256 conns", "/plaintext", 256, 1),
    Workload("json-64", "JSON × 64 conns", "/json", 64, 1),
    Workload("pipelined-16", "plaintext × 64 conns × pipelined 16", "/plaintext", 64, 16),
)
PIPELINED = WORKLOADS[3]
IDLE = "idle"  # the key of the idle-memory cells, next to the workloads'


def nginx_prefix(build: Path) -> Path:
    """nginx's working dir under the build dir (configs, pid files, temp dirs)."""
    if nginx_binary() is None:
        raise MeasureError("no nginx: install nginx-light (scripts/setup bench)")
    prefix = build / "bench-peers" / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    return prefix


def nginx_binary() -> str | None:
    return shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")


def nginx_argv(prefix: Path, port: int) -> list[str]:
    """Writes the config for this port (nginx takes its port from the file) and names it."""
    conf = prefix / "nginx.conf"
    template = (PEERS / "nginx" / "nginx.conf.in").read_text()
    conf.write_text(template.replace("@PORT@", str(port)).replace("@PREFIX@", str(prefix)))
    return [nginx_binary() or "nginx", "-p", str(prefix), "-c", str(conf), "-e", "stderr"]


SERVERS = (
    Server("spindle", meson_program("apps/hello"),
           lambda path, port: [str(path), "--port", str(port), "--procs", "1"]),
    Server("go", go_program("http"), lambda path, port: [str(path), "--port", str(port)],
           env={"GOMAXPROCS": "1"}),
    Server("nginx", nginx_prefix, nginx_argv),
)
LABELS = [s.label for s in SERVERS]


@dataclass
class Sample:
    rps: float
    cpu_us_per_req: float
    p99_us: float | None  # None: wrk's distribution was broken (parse_wrk)


# --- wrk --------------------------------------------------------------------------

UNITS_US = {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def parse_wrk(out: str) -> dict[str, float]:
    """wrk's report -> requests, rps, p99_us, errors (socket errors + status > 399)."""
    def find(pattern: str) -> re.Match:
        match = re.search(pattern, out, re.MULTILINE)
        if match is None:
            raise MeasureError(f"no /{pattern}/ in wrk's output:\n{out.strip()[-600:]}")
        return match

    spread = [float(value) * UNITS_US[unit] for value, unit in re.findall(
        r"^\s+(?:50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.MULTILINE)]
    if len(spread) != 4:
        raise MeasureError(f"no latency distribution in wrk's output:\n{out.strip()[-600:]}")
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        out)
    status = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": float(find(r"^\s+(\d+) requests in ").group(1)),
        "rps": float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        # wrk's coordinated-omission correction assumes one request per
        # batch; pipelined, it files samples below its recorded minimum and
        # then reads percentiles as 0 (seen: 50% 488 us, 75% 0). A
        # distribution that falls is no measurement.
        "p99_us": spread[3] if spread == sorted(spread) and spread[3] > 0 else None,
        "errors": (sum(int(n) for n in sockets.groups()) if sockets else 0)
        + (int(status.group(1)) if status else 0),
    }


def run_wrk(port: int, work: Workload, seconds: int) -> dict[str, float]:
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", *work.wrk_args(), f"-d{seconds}s",
           "--latency", f"http://127.0.0.1:{port}{work.path}"]
    if work.depth > 1:
        cmd += ["--", str(work.depth)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                              check=False)
    except subprocess.TimeoutExpired:
        raise MeasureError(f"{shlex.join(cmd)}: no result within {seconds + 60} s") from None
    return wrk_result(done)


def wrk_result(done: subprocess.CompletedProcess) -> dict[str, float]:
    """A finished `wrk --latency` run -> parse_wrk's figures; raises on errors."""
    cmd = done.args
    if done.returncode != 0:
        raise MeasureError(f"{shlex.join(cmd)}: exit status {done.returncode}; "
                           f"{(done.stdout + done.stderr).strip()[-300:]}")
    result = parse_wrk(done.stdout)
    if result["errors"]:
        lines = [l.strip() for l in done.stdout.splitlines() if "errors" in l or "Non-2xx" in l]
        raise MeasureError(f"{shlex.join(cmd)}: {result['errors']:g} errors ({'; '.join(lines)})")
    if result["requests"] <= 0:
        raise MeasureError(f"{shlex.join(cmd)}: no request completed")
    return result


def pipelined_p99(load: Path, port: int, work: Workload, seconds: float) -> float:
    """p99 per request, pipelined, from echo-load's HTTP mode (each request
    timed on its own, `depth` kept in flight): wrk's is broken there."""
    return run_echo_load(load, port, ["--http", work.path, "--conns", str(work.conns),
                                      "--depth", str(work.depth), "--warmup", "0.5",
                                      "--seconds", f"{seconds:g}"],
                         timeout=seconds + 60)["p99_us"]


def workload_job(server: Running, work: Workload, args: argparse.Namespace,
                 load: Path) -> Sliced:
    seconds = args.seconds // args.slices  # wrk takes whole seconds (main() checks)

    def run(secs: float) -> dict[str, float]:
        return run_wrk(server.port, work, int(secs))

    def warm() -> None:
        work.check(server.port)
        warm_up(server, run, args.warmup)

    def part() -> Part:
        measured = measure_part(server, run, seconds, lambda result: result["requests"])
        if work.depth > 1:  # outside the CPU reading, which counts wrk's requests only
            measured.result["p99_us"] = pipelined_p99(load, server.port, work, seconds)
        return measured

    return Sliced(warm=warm, part=part, combine=combine, slices=args.slices)


def combine(parts: list[Part]) -> Sample:
    """Rates and CPU over all the slices; p99: the median slice's."""
    return Sample(mean_of(parts, "rps"), cpu_per_count(parts), median_of(parts, "p99_us"))


def idle_cmd(port: int, conns: int, hold: float) -> list[str]:
    # The client holds on well past the driver's wait (at most `hold` s after
    # READY), so that it is the driver's SIGUSR1 that lets go of them.
    return ["taskset", "-c", LOAD_CPU, sys.executable, str(TOOLS / "http_idle.py"),
            "--port", str(port), "--conns", str(conns), "--hold", str(hold + 30)]


# --- Running everything ----------------------------------------------------------------

def describe(sample: Sample | float) -> str:
    if isinstance(sample, Sample):
        return (f"{sample.rps:.0f} req/s, {sample.cpu_us_per_req:.3f} CPU µs/req, "
                f"p99 {fmt(sample.p99_us)} µs")
    return f"{sample:.2f} KiB per idle connection"


def run_all(build: Path, args: argparse.Namespace, workloads: list[Workload],
            idle: bool) -> Cells:
    """Returns {(workload name or IDLE, server label): Cell}."""
    if shutil.which("wrk") is None:
        raise MeasureError("no wrk on PATH: install wrk (scripts/setup)")
    load = build / "bench" / "echo-load"
    if any(w.depth > 1 for w in workloads) and not load.exists():
        raise MeasureError(f"build bench/echo-load first: meson compile -C {build}")
    paths, missing = prepare_all(SERVERS, build)
    cells = new_cells([IDLE, *(w.name for w in workloads)], SERVERS, missing)

    def jobs(running: Running) -> Jobs:
        # Idle memory first, on the fresh process, before any load has grown its heap.
        out: Jobs = [(IDLE, lambda: measure_idle(running, idle_cmd(running.port, args.idle,
                                                                   args.hold),
                                                 args.idle, args.hold))] if idle else []
        return out + [(w.name, workload_job(running, w, args, load)) for w in workloads]

    for run in range(args.runs):
        starts = [(s, paths[s.label], build / f"http-bench-{s.label}.log")
                  for s in rotated(SERVERS, run) if s.label in paths]
        run_repetition(run, starts, jobs, cells, f"run {run + 1}/{args.runs}", describe)
    return cells


# --- Reporting ------------------------------------------------------------------------

Goal = tuple[str, float]  # ("≤" or "≥", bound)


def verdict(value: float | None, goal: Goal) -> str:
    """'0.42 ≤ 0.6 met', '**1.3 ≤ 1 missed**', or '— ≤ 0.6 ?' when there is no value."""
    op, bound = goal
    text = f"{fmt_against(value, bound)} {op} {bound:g}"
    if value is None:
        return f"{text} ?"
    met = value <= bound if op == "≤" else value >= bound
    return f"{text} met" if met else f"**{text} missed**"


# The targets for apps/hello: (measure, peer) -> goal on spindle/peer.
GOALS: dict[tuple[str, str], Goal] = {
    ("rps", "go"): ("≥", 1.3), ("rps", "nginx"): ("≥", 1.0),
    ("cpu_us_per_req", "go"): ("≤", 0.6), ("cpu_us_per_req", "nginx"): ("≤", 1.0),
    ("p99_us", "go"): ("≤", 1.0), ("p99_us", "nginx"): ("≤", 1.0),
}
PIPELINED_RPS_VS_GO: Goal = ("≥", 2.0)
IDLE_VS_GO: Goal = ("≤", 0.5)
OTHERS = [label for label in LABELS if label != "spindle"]
MEASURES = (("rps", "requests/s"), ("cpu_us_per_req", "server CPU µs per request"),
            ("p99_us", "p99 latency µs"))


def measure_table(cells: Cells, workloads: list[Workload], attr: str) -> str:
    """Medians per server, then spindle/peer (paired) with its goal and whether it is met."""
    rows = ["| workload | " + " | ".join(LABELS) + " | "
            + " | ".join(f"spindle/{peer}" for peer in OTHERS) + " |",
            "|---" + "|--:" * (len(LABELS) + len(OTHERS)) + "|"]
    for w in workloads:
        mine = cells[w.name, "spindle"]
        goal = {peer: PIPELINED_RPS_VS_GO if (attr, peer, w) == ("rps", "go", PIPELINED)
                else GOALS[attr, peer] for peer in OTHERS}
        rows.append(f"| {w.name} | " + " | ".join(shown(cells, w.name, l, attr) for l in LABELS)
                    + " | " + " | ".join(verdict(paired_ratio(mine, cells[w.name, p], attr),
                                                 goal[p]) for p in OTHERS) + " |")
    return "\n".join(rows)


def idle_table(cells: Cells, conns: int) -> str:
    return "\n".join([
        "| | " + " | ".join(LABELS) + " | spindle/go |",
        "|---" + "|--:" * (len(LABELS) + 1) + "|",
        f"| RSS KiB per idle connection ({conns:,} open) | "
        + " | ".join(shown(cells, IDLE, l) for l in LABELS)
        + f" | {verdict(paired_ratio(cells[IDLE, 'spindle'], cells[IDLE, 'go']), IDLE_VS_GO)} |"])


def report(cells: Cells, args: argparse.Namespace, workloads: list[Workload], idle: bool,
           others: float, command: str) -> str:
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [f"# HTTP\n\n`{command}`\n\n{when}, {os.cpu_count()} CPUs, load average "
             f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end; server on CPU "
             f"{SERVER_CPU}, `wrk -t1` on CPU {LOAD_CPU}; median of {args.runs} runs of "
             f"{args.seconds} s (after {args.warmup} s of warm-up) per server and workload. "
             f"Each workload runs in {args.slices} slices that the servers take in turn; "
             "p99 is the median slice's; a ratio is the median of the runs' spindle/peer "
             "ratios, next to the goal. Pipelined, "
             "wrk's latency distribution is broken (its coordinated-omission correction "
             "assumes a request per batch): that p99 comes from a run of "
             "bench/echo-load --http as long as the slice right after each of wrk's, each "
             "request timed from its hand-out, 16 kept in flight per connection.\n"]
    for attr, title in MEASURES if workloads else ():
        parts += [f"## {title}\n", measure_table(cells, workloads, attr), ""]
    if idle:
        parts += ["## idle memory\n", idle_table(cells, args.idle), ""]
    if notes(cells):
        parts += [*notes(cells), ""]
    parts.append(load_note(others, "wrk"))
    return "\n".join(parts) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--seconds", type=int, default=5, help="measured s (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up s (default 1)")
    keys = [w.key for w in WORKLOADS] + [IDLE]
    parser.add_argument("--only", action="append", default=[], metavar="ROW",
                        help="run only these rows (repeatable or comma-separated): "
                             + ", ".join(keys))
    args = parser.parse_args()
    check_common_args(parser, args)
    if args.seconds % args.slices:
        parser.error("--seconds must be a multiple of --slices: wrk runs whole seconds")
    wanted = {key for keys_ in args.only for key in keys_.split(",") if key}
    if wanted - set(keys):
        parser.error(f"unknown row(s): {', '.join(sorted(wanted - set(keys)))}")
    workloads = [w for w in WORKLOADS if not wanted or w.key in wanted]
    idle = not wanted or IDLE in wanted
    build = args.build.resolve()
    raise_fd_limit()

    command = shlex.join(["python3", os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    others = OtherLoad()
    try:
        cells = run_all(build, args, workloads, idle)
    except MeasureError as e:
        log(str(e))
        return 1
    text = report(cells, args, workloads, idle, others.cpus(), command)
    return publish(text, build / "http-bench-results.md", cells)


if __name__ == "__main__":
    sys.exit(main())
