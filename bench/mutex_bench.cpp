// Mutex micro-benchmarks, the Spindle side of bench/peers/mutex/main.go:
// the same measurements, written the same way, so the two can be put side
// by side.
//
//   mutex-bench uncontended [N]  ns per lock/unlock pair, one fiber (procs=1)
//   mutex-bench contended [N]    ns per lock when 1,000 fibers each do N
//                                lock/increment/unlock on one mutex (procs=2)
//
// Each prints exactly one line "RESULT <name> <value> <unit>" on stdout;
// details go to stderr. procs is fixed per benchmark, as in
// scheduler_bench.cpp.

#include <spindle/mutex.hpp>
#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string_view>

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  double value;
  const char* unit;
};

double ns_per(Clock::duration d, long n) {
  return std::chrono::duration<double, std::nano>(d).count() / static_cast<double>(n);
}

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

struct Bench {
  std::string_view name;
  Result (*run)(long n);
  long default_n;
  int procs;
};

constexpr Bench kBenches[] = {
    {"uncontended", bench_uncontended, 20'000'000, 1},
    {"contended", bench_contended, 1000, 2},
};

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: mutex-bench {uncontended|contended} [N]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) usage();
  const auto* bench = std::find_if(std::begin(kBenches), std::end(kBenches),
                                   [&](const Bench& b) { return b.name == argv[1]; });
  if (bench == std::end(kBenches)) usage();
  long n = bench->default_n;
  if (argc == 3) {
    char* end = nullptr;
    n = std::strtol(argv[2], &end, 10);
    if (*end != '\0' || n < 1) usage();
  }

  spindle::Config cfg;
  cfg.procs = bench->procs;
  std::fprintf(stderr, "mutex-bench %s: N=%ld procs=%d\n", argv[1], n, cfg.procs);
  Result result{};
  spindle::run(cfg, [&] { result = bench->run(n); });
  std::printf("RESULT %s %.2f %s\n", argv[1], result.value, result.unit);
  return 0;
}
