// Mutex micro-benchmarks, the Spindle side of bench/peers/mutex/main.go:
// the same measurements, written the same way, so the two can be put side
// by side.
//
//   mutex-bench uncontended [N]  ns per lock/unlock pair, one fiber (procs=1)
//   mutex-bench contended [N]    ns per lock when 1,000 fibers each do N
//                                lock/increment/unlock on one mutex (procs=2)
//
// Arguments, procs and output as described in common/bench_main.hpp.

#include <spindle/mutex.hpp>
#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "common/bench_main.hpp"

namespace {

using spindle::bench::Bench;
using spindle::bench::Clock;
using spindle::bench::ns_per;
using spindle::bench::Result;

constexpr long kContenders = 1000;

// The fast path alone: one CAS to lock, one to unlock.
Result bench_uncontended(long n) {
  spindle::Mutex mu;
  long counter = 0;
  const auto start = Clock::now();
  for (long i = 0; i < n; ++i) {
    mu.lock();
    ++counter;
    mu.unlock();
  }
  const auto elapsed = Clock::now() - start;
  if (counter != n) std::abort();
  return {ns_per(elapsed, n), "ns/op"};
}

// Every fiber wants the same lock for a tiny critical section, so most
// acquisitions contend: spinning, parking, wake-ups, starvation mode.
Result bench_contended(long n) {
  spindle::Mutex mu;
  long counter = 0;
  spindle::WaitGroup wg;
  wg.add(kContenders);
  const auto start = Clock::now();
  for (long f = 0; f < kContenders; ++f) {
    spindle::go([&] {
      for (long i = 0; i < n; ++i) {
        std::lock_guard lock(mu);
        ++counter;
      }
      wg.done();
    });
  }
  wg.wait();
  const auto elapsed = Clock::now() - start;
  std::fprintf(stderr, "contended: %ld locks, starvation mode entered %u times\n", kContenders * n,
               mu.starvation_count());
  if (counter != kContenders * n) std::abort();
  return {ns_per(elapsed, kContenders * n), "ns/op"};
}

constexpr Bench kBenches[] = {
    {"uncontended", bench_uncontended, 20'000'000, 1},
    {"contended", bench_contended, 1000, 2},
};

}  // namespace

int main(int argc, char** argv) {
  return spindle::bench::run_program("mutex-bench", kBenches, argc, argv);
}
