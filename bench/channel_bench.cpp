// Channel micro-benchmarks, the Spindle side of bench/peers/chan/main.go:
// the same measurements, written the same way, so the two runtimes can be
// put side by side.
//
//   channel-bench pingpong1 [N]  ns per round trip over two unbuffered channels (procs=1)
//   channel-bench pingpong2 [N]  the same on 2 procs
//   channel-bench buffered [N]   ns per item, one producer and one consumer, capacity 1024
//                                (procs=2)
//
// Arguments, procs and output as described in common/bench_main.hpp.

#include <spindle/channel.hpp>
#include <spindle/runtime.hpp>
#include <spindle/stats.hpp>
#include <spindle/waitgroup.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "common/bench_main.hpp"

namespace {

using spindle::bench::Bench;
using spindle::bench::Clock;
using spindle::bench::ns_per;
using spindle::bench::Result;

// How the scheduler carried the benchmark (to stderr): how often a fiber was
// scheduled and stolen, and how often a thread went to sleep and was woken.
void report_scheduling(const char* name) {
  const spindle::Stats s = spindle::stats();
  std::uint64_t ticks = 0;
  for (const auto& p : s.per_proc) ticks += p.schedticks;
  std::fprintf(stderr, "%s: %llu fibers scheduled, %llu steals, %llu thread parks, %llu unparks\n",
               name, static_cast<unsigned long long>(ticks),
               static_cast<unsigned long long>(s.steals),
               static_cast<unsigned long long>(s.thread_parks),
               static_cast<unsigned long long>(s.thread_unparks));
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
  report_scheduling("pingpong");
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
  report_scheduling("buffered");
  return {ns_per(elapsed, n), "ns/item"};
}

constexpr Bench kBenches[] = {
    {"pingpong1", bench_pingpong, 1'000'000, 1},
    {"pingpong2", bench_pingpong, 1'000'000, 2},
    {"buffered", bench_buffered, 10'000'000, 2},
};

}  // namespace

int main(int argc, char** argv) {
  return spindle::bench::run_program("channel-bench", kBenches, argc, argv);
}
