// sysmon: the monitor thread. It holds no P and runs no fiber. Each round
// it looks at every P:
//  - running the same slice for longer than Config::time_slice: set the P's
//    preempt flag (honoured at the fiber's next scheduling point);
//    longer than Config::stall_report: log the fiber once;
//  - in blocking() for longer than Config::blocking_handoff: take the P
//    away (CAS blocking -> idle) and hand it to another M;
// it polls the netpoller if no M has for 10 ms (every M busy running
// fibers), queueing what became ready on the global queue; it evicts the
// stacks of fibers parked long in evictable waits (evict.cpp) and unmaps
// pooled ones unused for a second (stack_pool.hpp); and it prints
// the schedtrace line when asked. It sleeps 20 us between
// rounds while there is something to watch, backing off to 10 ms when idle
// (Go's sysmon does the same).
#include <chrono>
#include <cstdio>
#include <thread>

#include "evict.hpp"
#include "log.hpp"
#include "sched.hpp"
#include "spindle/stats.hpp"

namespace spindle::detail {

namespace {
constexpr auto relaxed = std::memory_order_relaxed;
constexpr std::int64_t kMinSleep = 20'000;      // ns
constexpr std::int64_t kMaxSleep = 10'000'000;  // ns
constexpr int kIdleRoundsBeforeBackoff = 50;
constexpr std::int64_t kForceRetake = 10'000'000;     // ns: retake even with nothing queued
constexpr std::int64_t kPollStarvation = 10'000'000;  // ns: poll if nobody has for this long

std::int64_t ns(std::chrono::microseconds us) {
  return us.count() * 1000;
}

void report_stall(P* pp, std::int64_t held) {
  G* g = pp->curg.load(std::memory_order_acquire);  // pairs with execute()
  if (!g) return;
  char name[32];
  g->copy_name(name);  // G memory is type-stable: see GAllocator
  runtime_log().warn("spindle: fiber #{} '{}' has held P{} for {} ms without a scheduling point",
                     g->id.load(relaxed), name, pp->id, held / 1'000'000);
}

// Returns true if it did something (so sysmon keeps its short sleep).
bool watch_running(P* pp, std::int64_t now) {
  std::uint64_t tick = pp->schedtick.load(relaxed);
  if (tick != pp->seen_tick) {
    pp->seen_tick = tick;
    pp->seen_when = now;
    pp->stall_reported = false;
    return false;
  }
  std::int64_t held = now - pp->seen_when;
  bool acted = false;
  if (held >= ns(rt->cfg.time_slice) && !pp->preempt.load(relaxed)) {
    pp->preempt.store(true, relaxed);
    rt->preempt_requests.fetch_add(1, relaxed);
    acted = true;
  }
  if (held >= ns(rt->cfg.stall_report) && !pp->stall_reported) {
    pp->stall_reported = true;
    report_stall(pp, held);
  }
  return acted;
}

bool watch_blocking(P* pp, std::int64_t now) {
  std::uint64_t tick = pp->blocktick.load(relaxed);
  if (tick != pp->seen_blocktick) {
    pp->seen_blocktick = tick;
    pp->seen_block_when = now;
    return true;
  }
  std::int64_t held = now - pp->seen_block_when;
  if (held < ns(rt->cfg.blocking_handoff)) return true;
  // Nothing for the P to do and other threads idle: leave it, unless the
  // call has gone on for long (Go's retake makes the same trade).
  bool work = !pp->runq.empty() || !rt->globq.empty() || pp->timers.next() != kNever;
  bool others_free = rt->nmspinning.load(relaxed) + rt->npidle.load(relaxed) > 0;
  if (!work && others_free && held < kForceRetake) return true;
  PStatus expected = PStatus::blocking;
  if (!pp->status.compare_exchange_strong(expected, PStatus::idle, std::memory_order_acq_rel))
    return false;
  rt->handoffs.fetch_add(1, relaxed);
  handoffp(pp);
  return true;
}
}  // namespace

void sysmon_main() {
  std::int64_t sleep = kMinSleep;
  int idle_rounds = 0;
  std::int64_t next_trace = rt->cfg.schedtrace_ms > 0 ? nanotime() : kNever;
  StackSweep sweep;
  while (!rt->stopping.load(relaxed)) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(sleep));
    std::int64_t now = nanotime();
    bool acted = false;
    for (auto& pp : rt->ps) {
      switch (pp->status.load(std::memory_order_acquire)) {
        case PStatus::running:
          acted |= watch_running(pp.get(), now);
          break;
        case PStatus::blocking:
          acted |= watch_blocking(pp.get(), now);
          break;
        case PStatus::idle:
          break;
      }
    }
    if (poller()->has_waiters() && !rt->poller_busy.load(relaxed) &&
        now - rt->last_poll.load(relaxed) > kPollStarvation) {
      if (G* ready = netpoll(0)) {
        inject(nullptr, ready);
        acted = true;
      }
    }
    sweep.run(now);                // not an action: its own clock keeps its pace
    rt->stacks.release_idle(now);  // nor this one
    if (now >= next_trace) {
      std::fprintf(stderr, "%s\n", schedtrace_line().c_str());
      next_trace = now + std::int64_t{rt->cfg.schedtrace_ms} * 1'000'000;
    }
    idle_rounds = acted ? 0 : idle_rounds + 1;
    if (idle_rounds == 0)
      sleep = kMinSleep;
    else if (idle_rounds > kIdleRoundsBeforeBackoff)
      sleep = std::min(sleep * 2, kMaxSleep);
    // A P running fibers needs a look every half time_slice, so a fiber
    // that overruns is flagged within 1.5 slices (Go's sysmon: within 2).
    // Not finer: each round is a switch on a core that runs fibers (~400
    // rounds/s cost the echo server ~0.5% of its CPU at a quarter slice).
    for (auto& pp : rt->ps)
      if (pp->status.load(relaxed) != PStatus::idle)
        sleep = std::min(sleep, ns(rt->cfg.time_slice) / 2);
  }
}

}  // namespace spindle::detail
