// Statistics, fiber dumps and the schedtrace line: relaxed reads of the
// counters the runtime keeps anyway; nothing here stops the world.
#include "spindle/stats.hpp"

#include <fmt/format.h>

#include "sched.hpp"

namespace spindle {

using namespace detail;

namespace {
constexpr auto relaxed = std::memory_order_relaxed;

const char* to_string(PStatus s) {
  switch (s) {
    case PStatus::idle:
      return "idle";
    case PStatus::running:
      return "running";
    case PStatus::blocking:
      return "blocking";
  }
  return "?";
}
}  // namespace

Stats stats() {
  Stats s;
  Runtime* r = rt;
  if (!r) return s;
  s.procs = r->nprocs;
  s.idle_procs = r->npidle.load(relaxed);
  s.spinning_threads = r->nmspinning.load(relaxed);
  s.global_queue_length = r->globq.size();
  s.fibers_runnable = static_cast<std::int64_t>(s.global_queue_length);
  s.fibers_waiting = -r->parked_outside.load(relaxed);
  s.fibers_alive = r->alive_outside.load(relaxed);
  s.fibers_spawned = r->spawned_outside.load(relaxed);
  for (auto& pp : r->ps) {
    ProcStats ps{pp->id,
                 to_string(pp->status.load(relaxed)),
                 pp->runq.size(),
                 pp->steals.load(relaxed),
                 pp->schedtick.load(relaxed),
                 pp->timers.size()};
    s.fibers_alive += pp->alive.load(relaxed);
    s.fibers_spawned += pp->spawned.load(relaxed);
    s.fibers_waiting += pp->parked.load(relaxed);
    s.fibers_runnable += ps.queue_length;
    s.steals += ps.steals;
    s.timers += ps.timers;
    s.per_proc.push_back(ps);
  }
  {
    std::lock_guard lock(r->lock);
    s.threads = static_cast<int>(r->allm.size());
  }
  s.thread_parks = r->thread_parks.load(relaxed);
  s.thread_unparks = r->thread_unparks.load(relaxed);
  s.preempt_requests = r->preempt_requests.load(relaxed);
  s.handoffs = r->handoffs.load(relaxed);
  s.guarded_stacks = guarded_stack_count();
  s.unguarded_stacks = unguarded_stack_count();
  s.stacks_mapped = mapped_stack_count();
  s.stacks_evicted = r->stacks_evicted.load(relaxed);
  s.stacks_restored = r->stacks_restored.load(relaxed);
  return s;
}

std::string dump_fibers() {
  Runtime* r = rt;
  if (!r) return {};
  std::string out;
  for (G* g = r->gs.all(); g; g = g->allg_next) {
    GState st = g->state.load(relaxed);
    if (st == GState::free || st == GState::dead) continue;
    char name[32];
    g->copy_name(name);
    WaitReason why = g->reason.load(relaxed);
    fmt::format_to(std::back_inserter(out), "fiber #{} '{}' [{}{}{}]\n", g->id.load(relaxed), name,
                   detail::to_string(st), why == WaitReason::none ? "" : ": ",
                   spindle::to_string(why));
  }
  return out;
}

std::string schedtrace_line() {
  Runtime* r = rt;
  if (!r) return "SCHED: no runtime";
  Stats s = stats();
  std::string out = fmt::format(
      "SCHED {}ms: procs={} idleprocs={} threads={} spinningthreads={} runqueue={} "
      "fibers={} waiting={} steals={} preempts={} handoffs={} timers={} [",
      (nanotime() - r->start_time) / 1'000'000, s.procs, s.idle_procs, s.threads,
      s.spinning_threads, s.global_queue_length, s.fibers_alive, s.fibers_waiting, s.steals,
      s.preempt_requests, s.handoffs, s.timers);
  for (std::size_t i = 0; i < s.per_proc.size(); ++i)
    fmt::format_to(std::back_inserter(out), "{}{}", i ? " " : "", s.per_proc[i].queue_length);
  out += "]";
  return out;
}

}  // namespace spindle
