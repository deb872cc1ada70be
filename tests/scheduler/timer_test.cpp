// Timers: sleeping fibers wake in deadline order, never early.
#include <doctest/doctest.h>
#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include <algorithm>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {
struct Wake {
  Clock::time_point deadline, woke;
};

std::vector<Wake> sleepers(int procs, int n) {
  std::vector<Wake> wakes;
  std::mutex mu;
  spindle::Config cfg;
  cfg.procs = procs;
  spindle::run(cfg, [&] {
    std::mt19937 rng(7);
    // Far enough ahead that every fiber is asleep before the first deadline,
    // even under a sanitizer.
    auto base = Clock::now() + 200ms;
    spindle::WaitGroup wg;
    wg.add(n);
    for (int i = 0; i < n; ++i) {
      // Distinct deadlines 0.25 ms apart, spawned in shuffled order.
      auto deadline = base + std::chrono::microseconds(250 * ((i * 7919) % n));
      spindle::go([&, deadline] {
        spindle::sleep_until(deadline);
        auto now = Clock::now();
        std::lock_guard lock(mu);
        wakes.push_back({deadline, now});
        wg.done();
      });
    }
    wg.wait();
  });
  return wakes;
}
}  // namespace

TEST_CASE("timers fire in deadline order and never early") {
  std::vector<Wake> wakes = sleepers(1, 200);
  REQUIRE(wakes.size() == 200);
  int early = 0, out_of_order = 0;
  for (std::size_t i = 0; i < wakes.size(); ++i) {
    early += wakes[i].woke < wakes[i].deadline;
    if (i) out_of_order += wakes[i].deadline < wakes[i - 1].deadline;
  }
  CHECK(early == 0);
  CHECK(out_of_order == 0);
}

TEST_CASE("timers on several Ps: none early, none lost") {
  std::vector<Wake> wakes = sleepers(2, 2000);
  REQUIRE(wakes.size() == 2000);
  int early = 0;
  for (auto& w : wakes) early += w.woke < w.deadline;
  CHECK(early == 0);
}

TEST_CASE("sleep parks the fiber, not the thread") {
  // 1000 fibers sleeping 50 ms each on one P finish in about 50 ms, not 50 s.
  auto start = Clock::now();
  spindle::Config cfg;
  cfg.procs = 1;
  spindle::run(cfg, [] {
    spindle::WaitGroup wg;
    wg.add(1000);
    for (int i = 0; i < 1000; ++i)
      spindle::go([&] {
        spindle::sleep_for(50ms);
        wg.done();
      });
    wg.wait();
  });
  CHECK(Clock::now() - start < 5s);
}

TEST_CASE("sleep outside a fiber sleeps the thread") {
  auto start = Clock::now();
  spindle::sleep_for(5ms);
  CHECK(Clock::now() - start >= 5ms);
}
