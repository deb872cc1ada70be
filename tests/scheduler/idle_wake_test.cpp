// Idle Ps must wake for work readied on a busy P: a fiber queued behind a
// spinner, and a timer added on a P whose thread then spins. Each round
// asserts an order (the readied work ran while the spinner still spun),
// never a duration; the spinner gives up after kSpinBound so a lost
// wake-up fails the round instead of hanging the test. The bound is far
// above the OS's wake-up latency even on a loaded machine under TSan (tens
// of ms seen), and a test stops at its first failed round, so a real lost
// wake-up costs one bound, not 300.
//
// The time slice is longer than kSpinBound: a preempted spinner would let
// its own P run the work, which would hide a lost wake-up.
#include <doctest/doctest.h>
#include <spindle/runtime.hpp>
#include <spindle/timer.hpp>
#include <spindle/waitgroup.hpp>

#include <atomic>
#include <chrono>

using namespace std::chrono_literals;

namespace {

constexpr int kRounds = 300;
constexpr auto kSpinBound = 1s;

spindle::Config two_procs() {
  spindle::Config cfg;
  cfg.procs = 2;
  cfg.time_slice = 10s;
  cfg.stall_report = 100s;
  return cfg;
}

// Spins until `flag` is set or `bound` passes; returns whether the flag
// came first. With preempt_points, calls spindle::preempt_point() each turn.
bool spin_until(const std::atomic<bool>& flag, bool preempt_points,
                std::chrono::nanoseconds bound = kSpinBound) {
  auto give_up = std::chrono::steady_clock::now() + bound;
  while (!flag.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    if (preempt_points) spindle::preempt_point();
  }
  return true;
}

// Each first_round_where_* below runs up to kRounds rounds and returns the
// first one in which the readied work waited until the spinner gave up, or
// -1 if there was none.

// A fiber that sleeps for the whole test, so that an idle M blocks in the
// poller until a deadline far past kSpinBound instead of parking: then only
// a wake-up sent to the poller (or wakep) can help, never the deadline.
void hold_far_timer() {
  spindle::go([] { spindle::sleep_for(1h); });  // unwound at shutdown
}

// main spawns A then B: B takes runnext and runs on main's P once main
// parks, A waits in that P's ring. The other P must steal A while B spins.
int first_round_where_queued_fiber_waited(bool preempt_points, bool far_timer) {
  int first_miss = -1;
  spindle::run(two_procs(), [&] {
    if (far_timer) hold_far_timer();
    for (int round = 0; round < kRounds && first_miss < 0; ++round) {
      std::atomic<bool> a_ran{false};
      bool b_saw_a = false;
      spindle::WaitGroup wg;
      wg.add(2);
      spindle::go([&] {
        a_ran.store(true, std::memory_order_release);
        wg.done();
      });
      spindle::go([&] {
        b_saw_a = spin_until(a_ran, preempt_points);
        wg.done();
      });
      wg.wait();
      if (!b_saw_a) first_miss = round;
      spindle::sleep_for(1ms);
    }
  });
  return first_miss;
}

// main spawns H, then sleeps: H runs on main's P (next fiber, no detour)
// and spins, and main's timer is added to that P. Another M must fire it
// (from the poller, or by running the busy P's timers) while H spins.
int first_round_where_sleeper_waited(bool far_timer) {
  int first_miss = -1;
  spindle::run(two_procs(), [&] {
    if (far_timer) hold_far_timer();
    for (int round = 0; round < kRounds && first_miss < 0; ++round) {
      std::atomic<bool> woke{false};
      bool h_saw_wake = false;
      spindle::WaitGroup wg;
      wg.add(1);
      spindle::go([&] {
        h_saw_wake = spin_until(woke, false);
        wg.done();
      });
      spindle::sleep_for(500us);
      woke.store(true, std::memory_order_release);
      wg.wait();
      if (!h_saw_wake) first_miss = round;
      spindle::sleep_for(1ms);
    }
  });
  return first_miss;
}

struct FlagTimer : spindle::Timer {
  std::atomic<bool> fired{false};
};

// A fiber spins until the other M has had time to go idle (nothing to
// steal; with no timer pending it parks, else it blocks in the poller), then
// starts a timer on its own P and spins until it fires. Only the wake-up
// that adding the timer sends can make another M fire it in time.
int first_round_where_own_timer_waited(bool far_timer) {
  int first_miss = -1;
  spindle::run(two_procs(), [&] {
    if (far_timer) hold_far_timer();
    for (int round = 0; round < kRounds && first_miss < 0; ++round) {
      bool fired_while_spinning = false;
      spindle::WaitGroup wg;
      wg.add(1);
      spindle::go([&] {
        std::atomic<bool> never{false};
        spin_until(never, false, 1ms);  // let the other M go idle
        FlagTimer t;
        t.when = spindle::now_ns() + 100'000;
        t.fire = [](spindle::Timer* timer) {
          static_cast<FlagTimer*>(timer)->fired.store(true, std::memory_order_release);
        };
        spindle::start_timer(&t);
        fired_while_spinning = spin_until(t.fired, false);
        // Stranded: take it back, or wait out a firing already under way.
        if (!fired_while_spinning && !spindle::stop_timer(&t))
          while (!t.fired.load(std::memory_order_acquire)) {
          }
        wg.done();
      });
      wg.wait();
      if (!fired_while_spinning) first_miss = round;
      spindle::sleep_for(1ms);
    }
  });
  return first_miss;
}

}  // namespace

TEST_CASE("idle wake: a fiber queued behind a spinner is stolen while it spins") {
  SUBCASE("spinner without scheduling points, idle M parked") {
    CHECK(first_round_where_queued_fiber_waited(false, false) == -1);
  }
  SUBCASE("spinner with preempt points, idle M parked") {
    CHECK(first_round_where_queued_fiber_waited(true, false) == -1);
  }
  SUBCASE("idle M blocked in the poller on a far timer") {
    CHECK(first_round_where_queued_fiber_waited(false, true) == -1);
  }
}

TEST_CASE("idle wake: a sleeper whose P then spins is woken by another M") {
  SUBCASE("idle M parked") {
    CHECK(first_round_where_sleeper_waited(false) == -1);
  }
  SUBCASE("idle M blocked in the poller on a far timer") {
    CHECK(first_round_where_sleeper_waited(true) == -1);
  }
}

TEST_CASE("idle wake: a timer started by a spinning fiber fires while it spins") {
  SUBCASE("idle M parked") {
    CHECK(first_round_where_own_timer_waited(false) == -1);
  }
  SUBCASE("idle M blocked in the poller on a far timer") {
    CHECK(first_round_where_own_timer_waited(true) == -1);
  }
}
