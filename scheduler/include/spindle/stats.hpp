// Runtime statistics, readable at any time from any thread without stopping
// the world: each figure is read with a relaxed load, so a snapshot is
// approximate while the runtime runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace spindle {

struct ProcStats {
  int id;
  const char* status;          // "idle", "running", "blocking"
  std::uint32_t queue_length;  // local run queue, runnext included
  std::uint64_t steals;        // fibers this P stole from others
  std::uint64_t schedticks;    // fibers scheduled (a time slice each)
  std::uint32_t timers;        // pending timers on this P
};

struct Stats {
  std::int64_t fibers_alive = 0;     // spawned and not yet finished
  std::int64_t fibers_waiting = 0;   // parked
  std::int64_t fibers_runnable = 0;  // in a run queue (global + local)
  std::uint64_t fibers_spawned = 0;
  std::uint64_t global_queue_length = 0;
  int procs = 0;
  int idle_procs = 0;
  int threads = 0;  // Ms created, blocked ones included
  int spinning_threads = 0;
  std::uint64_t thread_parks = 0;
  std::uint64_t thread_unparks = 0;
  std::uint64_t steals = 0;
  std::uint64_t preempt_requests = 0;  // time-slice overruns flagged by sysmon
  std::uint64_t handoffs = 0;          // Ps retaken from blocking() calls
  std::uint64_t timers = 0;
  std::uint64_t guarded_stacks = 0;    // stacks with a guard page
  std::uint64_t unguarded_stacks = 0;  // over the mapping budget (canary only)
  std::uint64_t stacks_mapped = 0;     // stacks ever mapped (reuse keeps it flat)
  std::uint64_t stacks_evicted = 0;    // idle stacks copied out, pages given back
  std::uint64_t stacks_restored = 0;   // evicted stacks copied back to run
  std::vector<ProcStats> per_proc;
};

// Zeroes when no runtime is running.
Stats stats();

// One line per fiber: id, name, state and wait reason (like Go's
// goroutine dump). Takes a lock that spawning fibers may briefly contend on.
std::string dump_fibers();

// Go's schedtrace line: "SCHED 1003ms: procs=2 idle=1 threads=3 ...".
std::string schedtrace_line();

}  // namespace spindle
