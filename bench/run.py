#!/usr/bin/env python3
"""Runs Spindle's benchmarks side by side with their peers (`make bench`).

    python3 bench/run.py --build build/release [--runs 5] [--only sched]

Builds the Go peers into <build>/bench-peers/, then runs every benchmark of
the chosen sets --runs times, Spindle and peer alternately (who goes first
flips every run, so drift and warm caches hit both sides alike), and prints
one markdown table per set from the medians; the tables also go to
<build>/bench-results.md. The Spindle programs are built by meson, not here.

Exits 1 if a program is missing or a measurement failed; unmet goals are
reported in the table, not through the exit status.

A set is data: two programs and a list of benchmarks with their goals (or
none, for a figure that is only reported). A new set (HTTP under wrk, say)
is one more entry in SETS; one whose numbers come from something other than
a "RESULT" line brings its own `measure` function.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from benchlib import MeasureError, OtherLoad, go_program, log, meson_program, ratio


def summary(error: MeasureError) -> str:
    """The reason without the program's output: one line for the table's notes."""
    return str(error).splitlines()[0].removesuffix("; output ends:")


@dataclass(frozen=True)
class Program:
    """One side of a comparison.

    prepare(build dir) returns the program: benchlib's meson_program (built
    by meson before we run) or go_program (a package under bench/peers, built
    here). procs_env is the variable that sets how many threads the
    program's runtime uses.
    """

    label: str
    prepare: Callable[[Path], Path]  # raises MeasureError
    procs_env: str


@dataclass(frozen=True)
class Goal:
    """A bound on Spindle/peer (on="ratio") or on Spindle's own value (on="spindle")."""

    on: str
    op: str  # "<=" or ">="
    bound: float

    def met(self, spindle: float | None, peer: float | None) -> bool | None:
        value = spindle if self.on == "spindle" else ratio(spindle, peer)
        if value is None:
            return None
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        subject = "ratio" if self.on == "ratio" else "Spindle"
        return f"{subject} {'≤' if self.op == '<=' else '≥'} {self.bound:g}"


@dataclass(frozen=True)
class Bench:
    name: str
    procs: int
    goal: Goal | None  # None: reported only, nothing to meet
    args: tuple[str, ...] = ()  # after the name; empty: the programs' defaults


@dataclass
class Sample:
    value: float
    unit: str
    others: float = 0.0  # CPUs kept busy by other processes meanwhile (see OtherLoad)


def measure_result_line(program: Path, proc_env: dict[str, str], bench: Bench,
                        timeout: float) -> Sample:
    """Runs `program <bench> [args]`, which prints "RESULT <name> <value> <unit>"."""
    cmd = [str(program), bench.name, *bench.args]
    try:
        done = subprocess.run(cmd, env={**os.environ, **proc_env}, capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise MeasureError(f"{' '.join(cmd)}: no result within {timeout:g} s") from None
    except OSError as e:  # e.g. the binary vanished or is being relinked meanwhile
        raise MeasureError(f"{' '.join(cmd)}: cannot run: {e.strerror}") from None
    results = [line.split() for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    ok = len(results) == 1 and len(results[0]) == 4 and results[0][1] == bench.name
    if done.returncode != 0 or not ok:
        if done.returncode < 0:
            why = f"killed by {signal.Signals(-done.returncode).name}"
        elif done.returncode > 0:
            why = f"exit status {done.returncode}"
        else:
            why = f"no single 'RESULT {bench.name} <value> <unit>' line"
        tail = "".join(f"\n    {line}" for line in
                       (done.stdout + done.stderr).strip().splitlines()[-8:])
        raise MeasureError(f"{' '.join(cmd)}: {why}; output ends:{tail}")
    return Sample(float(results[0][2]), results[0][3])


@dataclass(frozen=True)
class BenchSet:
    name: str
    spindle: Program
    peer: Program
    benches: tuple[Bench, ...]
    measure: Callable[[Path, dict[str, str], Bench, float], Sample] = measure_result_line


GO = "GOMAXPROCS"
SP = "SPINDLE_PROCS"

SETS = (
    BenchSet(
        name="sched",
        spindle=Program("Spindle", meson_program("bench/scheduler-bench"), SP),
        peer=Program("Go", go_program("sched"), GO),
        benches=(
            Bench("spawn", procs=2, goal=Goal("ratio", "<=", 0.5)),
            Bench("yield", procs=1, goal=Goal("ratio", "<=", 0.5)),
            Bench("rss", procs=2, goal=Goal("ratio", "<=", 2.0)),
            Bench("cpu", procs=2, goal=Goal("spindle", ">=", 1.8)),
        ),
    ),
    BenchSet(
        name="chan",
        spindle=Program("Spindle", meson_program("bench/channel-bench"), SP),
        peer=Program("Go", go_program("chan"), GO),
        benches=(
            # 1M round trips over two unbuffered channels.
            Bench("pingpong1", procs=1, goal=Goal("ratio", "<=", 1.0)),
            Bench("pingpong2", procs=2, goal=Goal("ratio", "<=", 1.0)),
            # 10M items, one producer, one consumer, capacity 1024: time per
            # item, so at least Go's throughput is a ratio of at most 1.
            Bench("buffered", procs=2, goal=Goal("ratio", "<=", 1.0)),
        ),
    ),
    BenchSet(
        name="mutex",
        spindle=Program("Spindle", meson_program("bench/mutex-bench"), SP),
        peer=Program("Go", go_program("mutex"), GO),
        benches=(
            Bench("uncontended", procs=1, goal=Goal("ratio", "<=", 1.0)),
            # 1,000 fibers on one mutex: how it degrades, not a target.
            Bench("contended", procs=2, goal=None),
        ),
    ),
)


# --- Running -----------------------------------------------------------------

# More CPUs than this busy elsewhere during a sample (a build, a test run) and
# it is suspect: on 2 cores, one busy core halves a parallel speedup.
BUSY_ELSEWHERE = 0.2


@dataclass
class Cell:
    """Every sample of one program on one benchmark, or why there are none."""

    samples: list[Sample] = field(default_factory=list)
    error: str | None = None  # "missing" or "failed": shown in the table
    detail: str = ""  # the reason, up to "; output ends:": shown under the table

    def median(self) -> float | None:
        return statistics.median(s.value for s in self.samples) if self.samples else None

    def unit(self) -> str:
        return self.samples[0].unit if self.samples else ""


def run_set(bset: BenchSet, build: Path, runs: int,
            timeout: float) -> dict[tuple[str, str], Cell]:
    """Returns {(bench name, program label): Cell}."""
    programs = (bset.spindle, bset.peer)
    paths, cells = {}, {}
    for program in programs:
        why = ""
        try:
            paths[program.label] = program.prepare(build)
        except MeasureError as e:
            why = summary(e)
            log(f"{bset.name}: {program.label}: {e}")
        for bench in bset.benches:
            cells[bench.name, program.label] = Cell(error="missing" if why else None, detail=why)

    for run in range(runs):
        for bench in bset.benches:
            # Alternate who goes first so neither side always runs on a warmer machine.
            order = programs if run % 2 == 0 else programs[::-1]
            for program in order:
                cell = cells[bench.name, program.label]
                if cell.error:  # a failure would recur; don't wait for it runs times
                    continue
                load = OtherLoad()
                try:
                    sample = bset.measure(paths[program.label],
                                          {program.procs_env: str(bench.procs)}, bench, timeout)
                except MeasureError as e:
                    cell.error, cell.detail = "failed", summary(e)
                    log(f"{bset.name}/{bench.name}: {program.label}: {e}")
                    continue
                sample.others = load.cpus()
                cell.samples.append(sample)
                busy = (f" (other processes busy: {sample.others:.2f} CPUs)"
                        if sample.others > BUSY_ELSEWHERE else "")
                log(f"{bset.name}/{bench.name} run {run + 1}/{runs}: "
                    f"{program.label} {fmt(sample.value)} {sample.unit}{busy}")
    return cells


# --- Reporting ---------------------------------------------------------------

def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    # Three significant digits or so, never in exponent form.
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 \
        else f"{value:.2f}"


def value_cell(cell: Cell) -> str:
    return cell.error or fmt(cell.median())


def table(bset: BenchSet, cells: dict[tuple[str, str], Cell]) -> str:
    sp, peer = bset.spindle.label, bset.peer.label
    rows = [f"| benchmark | {sp} median | {peer} median | ratio {sp}/{peer} | goal | met? |",
            "|---|--:|--:|--:|---|---|"]
    for bench in bset.benches:
        mine, theirs = cells[bench.name, sp], cells[bench.name, peer]
        unit = mine.unit() or theirs.unit()
        if mine.unit() and theirs.unit() and mine.unit() != theirs.unit():
            unit = f"{mine.unit()} vs {theirs.unit()}!"  # the two programs disagree: say so
        # A side that failed in any run has no trustworthy median.
        spindle = None if mine.error else mine.median()
        other = None if theirs.error else theirs.median()
        if bench.goal is None:
            goal, verdict = "none (reported)", "—"
        else:
            met = bench.goal.met(spindle, other)
            goal, verdict = str(bench.goal), "?" if met is None else "yes" if met else "**no**"
        rows.append(f"| {bench.name} ({unit}) | {value_cell(mine)} | {value_cell(theirs)} | "
                    f"{fmt(ratio(spindle, other))} | {goal} | {verdict} |")
    # Why a cell is empty, once per distinct reason (a missing program is missing for all rows).
    notes = dict.fromkeys(f"- {label}: {cell.detail}" for (_, label), cell in cells.items()
                          if cell.error)
    return "\n".join(rows + ([""] + list(notes) if notes else []))


def header(runs: int) -> str:
    cpu = next((line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (f"# Spindle benchmarks\n\n{when}, {os.cpu_count()} × {cpu}; "
            f"median of {runs} runs per program, run alternately.\n")


def load_note(others: float, samples: list[Sample]) -> str:
    busy = sum(s.others > BUSY_ELSEWHERE for s in samples)
    note = (f"Other processes kept {others:.2f} of {os.cpu_count()} CPUs busy during the runs; "
            f"{busy} of {len(samples)} samples had more than {BUSY_ELSEWHERE} CPUs busy elsewhere")
    return note + (": rerun on an idle machine.\n" if busy else ".\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, required=True, help="meson build dir")
    parser.add_argument("--runs", type=int, default=5, help="runs per program (default 5)")
    parser.add_argument("--only", action="append", default=[], metavar="SET",
                        help="run only these sets (repeatable or comma-separated): "
                             + ", ".join(s.name for s in SETS))
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds one measurement may take (default 300)")
    args = parser.parse_args()

    wanted = {name for names in args.only for name in names.split(",") if name}
    unknown = wanted - {s.name for s in SETS}
    if unknown or args.runs < 1:
        parser.error(f"unknown set(s): {', '.join(sorted(unknown))}" if unknown
                     else "--runs must be at least 1")
    build = args.build.resolve()
    build.mkdir(parents=True, exist_ok=True)

    report, ok, samples = [header(args.runs)], True, []
    # Other work on the machine skews every number here: say how much there was.
    load = OtherLoad()
    for bset in SETS:
        if wanted and bset.name not in wanted:
            continue
        cells = run_set(bset, build, args.runs, args.timeout)
        ok &= not any(cell.error for cell in cells.values())
        samples += [s for cell in cells.values() for s in cell.samples]
        report.append(f"## {bset.name}\n\n{table(bset, cells)}\n")

    report.append(load_note(load.cpus(), samples))
    text = "\n".join(report)
    print(text)
    (build / "bench-results.md").write_text(text)
    log(f"written to {build / 'bench-results.md'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
