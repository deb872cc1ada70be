// Scheduler micro-benchmarks, the Spindle side of bench/peers/sched/main.go:
// the same four measurements, written the same way, so bench/run.py can put
// the two runtimes side by side.
//
//   scheduler-bench spawn [N]   ns to spawn and finish an empty fiber (procs=2)
//   scheduler-bench yield [N]   ns per yield() between two fibers (procs=1)
//   scheduler-bench rss [N]     resident bytes per parked fiber (procs=2)
//   scheduler-bench cpu [N]     speedup of N ~1 ms tasks on 2 procs (procs=2)
//
// Arguments, procs and output as described in common/bench_main.hpp.

#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "common/bench_main.hpp"

namespace {

using spindle::bench::Bench;
using spindle::bench::Clock;
using spindle::bench::ns_per;
using spindle::bench::Result;

// Resident set size of this process in bytes, from /proc/self/status.
long vm_rss() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10) * 1024;
  }
  std::fprintf(stderr, "scheduler-bench: no VmRSS in /proc/self/status\n");
  std::exit(1);
}

// Times the whole life of N empty fibers: spawn, run, exit. The WaitGroup is
// sized up front so the loop measures only the spawns.
Result bench_spawn(long n) {
  spindle::WaitGroup wg;
  wg.add(n);
  const auto start = Clock::now();
  for (long i = 0; i < n; ++i) spindle::go([&wg] { wg.done(); });
  wg.wait();
  return {ns_per(Clock::now() - start, n), "ns/fiber"};
}

// Two fibers hand the single P back and forth, so every yield() is a real
// switch to the other one.
Result bench_yield(long n) {
  const long per = std::max(n / 2, 1L);
  spindle::WaitGroup wg;
  wg.add(2);
  const auto start = Clock::now();
  for (int f = 0; f < 2; ++f) {
    spindle::go([&wg, per] {
      for (long i = 0; i < per; ++i) spindle::yield();
      wg.done();
    });
  }
  wg.wait();
  return {ns_per(Clock::now() - start, 2 * per), "ns/switch"};
}

// Keeps N fibers alive at once, each parked in a WaitGroup wait (Spindle's
// counterpart of Go's channel receive), and charges the growth of the
// resident set to them.
Result bench_rss(long n) {
  const long before = vm_rss();
  spindle::WaitGroup release;
  release.add(1);
  spindle::WaitGroup started;
  started.add(n);
  // Unlike the Go peer this one waits for the fibers to finish: they refer to
  // WaitGroups on this stack, which must outlive them.
  spindle::WaitGroup finished;
  finished.add(n);
  for (long i = 0; i < n; ++i) {
    spindle::go([&] {
      started.done();
      release.wait();
      finished.done();
    });
  }
  started.wait();
  const long after = vm_rss();
  release.done();
  finished.wait();
  std::fprintf(stderr, "rss: before %ld kB, after %ld kB\n", before / 1024, after / 1024);
  return {static_cast<double>(after - before) / static_cast<double>(n), "bytes/fiber"};
}

// Receives every spin result so the compiler cannot drop the loops.
std::atomic<std::uint64_t> sink{0};

// The CPU task: blocks*64 rounds of xorshift64, a serial dependency chain
// with no closed form, so its cost is the same wherever it runs. Same loop
// as the Go peer; the preempt_point() per 64-round block is the price of
// cooperative preemption that Go's asynchronous preemption does not pay.
std::uint64_t spin(long blocks, std::uint64_t seed) {
  std::uint64_t x = seed | 1;
  for (long b = 0; b < blocks; ++b) {
    for (int i = 0; i < 64; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
    spindle::preempt_point();
  }
  return x;
}

Clock::duration time_spin(long blocks) {
  const auto start = Clock::now();
  sink.fetch_add(spin(blocks, static_cast<std::uint64_t>(blocks)), std::memory_order_relaxed);
  return Clock::now() - start;
}

// How many blocks of spin take about 1 ms on one core: doubles the work until
// a run lasts 20 ms (long enough for the clock), then keeps the fastest of
// three runs to discount interruptions.
long calibrate() {
  using namespace std::chrono_literals;
  long blocks = 256;
  while (time_spin(blocks) < 20ms) blocks *= 2;
  auto best = time_spin(blocks);
  for (int i = 0; i < 2; ++i) best = std::min(best, time_spin(blocks));
  const double per_ms = static_cast<double>(blocks) * (1ms / std::chrono::duration<double>(best));
  return std::max(static_cast<long>(per_ms), 1L);
}

// Runs the same N tasks serially in one fiber, then as N fibers spawned from
// one fiber, and reports serial/parallel time.
Result bench_cpu(long n) {
  const long blocks = calibrate();

  auto start = Clock::now();
  for (long i = 0; i < n; ++i) {
    sink.fetch_add(spin(blocks, static_cast<std::uint64_t>(i)), std::memory_order_relaxed);
  }
  const auto serial = Clock::now() - start;

  spindle::WaitGroup wg;
  wg.add(n);
  start = Clock::now();
  for (long i = 0; i < n; ++i) {
    spindle::go([&wg, blocks, seed = static_cast<std::uint64_t>(i)] {
      sink.fetch_add(spin(blocks, seed), std::memory_order_relaxed);
      wg.done();
    });
  }
  wg.wait();
  const auto parallel = Clock::now() - start;

  using Ms = std::chrono::duration<double, std::milli>;
  std::fprintf(stderr, "cpu: %ld blocks/task, serial %.1f ms, parallel %.1f ms\n", blocks,
               Ms(serial).count(), Ms(parallel).count());
  return {std::chrono::duration<double>(serial) / parallel, "x"};
}

constexpr Bench kBenches[] = {
    {"spawn", bench_spawn, 1'000'000, 2},
    {"yield", bench_yield, 2'000'000, 1},
    {"rss", bench_rss, 1'000'000, 2},
    {"cpu", bench_cpu, 1000, 2},
};

}  // namespace

int main(int argc, char** argv) {
  return spindle::bench::run_program("scheduler-bench", kBenches, argc, argv);
}
