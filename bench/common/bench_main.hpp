// The skeleton every Spindle micro-benchmark program shares with its Go peer
// (bench/peers/internal/benchmain): pick a benchmark by name, take an
// optional N, run it in the runtime on a fixed number of procs, and print
// exactly one line "RESULT <name> <value> <unit>" on stdout (details go to
// stderr). bench/run.py reads that line.
//
//   constexpr spindle::bench::Bench kBenches[] = {{"spawn", bench_spawn, 1'000'000, 2}, ...};
//   int main(int argc, char** argv) {
//     return spindle::bench::run_program("scheduler-bench", kBenches, argc, argv);
//   }
//
// procs is fixed per benchmark rather than taken from $SPINDLE_PROCS, so a
// run by hand measures the same thing as the runner (the Go peers take
// GOMAXPROCS from the environment: run them with the same value).
#pragma once

#include <spindle/runtime.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

namespace spindle::bench {

using Clock = std::chrono::steady_clock;

struct Result {
  double value;
  const char* unit;
};

inline double ns_per(Clock::duration d, long n) {
  return std::chrono::duration<double, std::nano>(d).count() / static_cast<double>(n);
}

struct Bench {
  std::string_view name;
  Result (*run)(long n);  // called on a fiber of a running runtime
  long default_n;
  int procs;
};

[[noreturn]] inline void usage(std::string_view program, std::span<const Bench> benches) {
  std::string names;
  for (const Bench& b : benches) names.append(names.empty() ? "" : "|").append(b.name);
  std::fprintf(stderr, "usage: %.*s {%s} [N]\n", static_cast<int>(program.size()), program.data(),
               names.c_str());
  std::exit(2);
}

// The whole of a benchmark program's main().
inline int run_program(std::string_view program, std::span<const Bench> benches, int argc,
                       char** argv) {
  if (argc < 2 || argc > 3) usage(program, benches);
  const auto bench = std::find_if(benches.begin(), benches.end(),
                                  [&](const Bench& b) { return b.name == argv[1]; });
  if (bench == benches.end()) usage(program, benches);
  long n = bench->default_n;
  if (argc == 3) {
    char* end = nullptr;
    n = std::strtol(argv[2], &end, 10);
    if (*end != '\0' || n < 1) usage(program, benches);
  }

  Config cfg;
  cfg.procs = bench->procs;
  std::fprintf(stderr, "%.*s %s: N=%ld procs=%d\n", static_cast<int>(program.size()),
               program.data(), argv[1], n, cfg.procs);
  Result result{};
  spindle::run(cfg, [&] { result = bench->run(n); });
  std::printf("RESULT %s %.2f %s\n", argv[1], result.value, result.unit);
  return 0;
}

}  // namespace spindle::bench
