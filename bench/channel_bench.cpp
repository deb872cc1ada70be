// Channel micro-benchmarks, the Spindle side of bench/peers/chan/main.go:
// the same measurements, written the same way, so the two runtimes can be
// put side by side.
//
//   channel-bench pingpong1 [N]  ns per round trip over two unbuffered channels (procs=1)
//   channel-bench pingpong2 [N]  the same on 2 procs
//   channel-bench buffered [N]   ns per item, one producer and one consumer, capacity 1024
//                                (procs=2)
//
// Each prints exactly one line "RESULT <name> <value> <unit>" on stdout;
// details go to stderr. procs is fixed per benchmark here rather than taken
// from $SPINDLE_PROCS, so a run by hand measures the same thing as the runner
// (the Go peer takes GOMAXPROCS from the environment: run it with the same
// value).

#include <spindle/channel.hpp>
#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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

// A request/response pair: this fiber sends on `ping` and waits on `pong`;
// an echo fiber does the reverse. Every round trip is two hand-offs from a
// sender straight to a parked receiver.
Result bench_pingpong(long n) {
  spindle::Channel<long> ping, pong;
  spindle::WaitGroup echo_done;
  echo_done.add(1);
  spindle::go([&] {
    for (long v : ping) pong.send(v);
    echo_done.done();
  });
  const auto start = Clock::now();
  for (long i = 0; i < n; ++i) {
    ping.send(i);
    if (pong.recv() != i) std::abort();
  }
  const auto elapsed = Clock::now() - start;
  ping.close();
  echo_done.wait();
  return {ns_per(elapsed, n), "ns/roundtrip"};
}

// One producer fiber, one consumer (this fiber), a 1024-slot buffer between.
Result bench_buffered(long n) {
  spindle::Channel<long> ch(1024);
  const auto start = Clock::now();
  spindle::go([&] {
    for (long i = 0; i < n; ++i) ch.send(i);
    ch.close();
  });
  long sum = 0;
  for (long v : ch) sum += v;
  const auto elapsed = Clock::now() - start;
  if (sum != n * (n - 1) / 2) std::abort();
  return {ns_per(elapsed, n), "ns/item"};
}

struct Bench {
  std::string_view name;
  Result (*run)(long n);
  long default_n;
  int procs;
};

constexpr Bench kBenches[] = {
    {"pingpong1", bench_pingpong, 1'000'000, 1},
    {"pingpong2", bench_pingpong, 1'000'000, 2},
    {"buffered", bench_buffered, 10'000'000, 2},
};

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: channel-bench {pingpong1|pingpong2|buffered} [N]\n");
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
  std::fprintf(stderr, "channel-bench %s: N=%ld procs=%d\n", argv[1], n, cfg.procs);
  Result result{};
  spindle::run(cfg, [&] { result = bench->run(n); });
  std::printf("RESULT %s %.2f %s\n", argv[1], result.value, result.unit);
  return 0;
}
