// WaitGroup, as Go's sync.WaitGroup: add(n) before starting work, done()
// when a piece finishes, wait() parks until the counter is zero. wait()
// parks a fiber (not its thread); from a plain thread it blocks the thread.
// The counter going negative is a programming error: std::logic_error.
// As in Go, a WaitGroup may be freed as soon as wait() returns, and add()
// with a positive count must not race a wait() that may be ending.
#pragma once

#include <atomic>
#include <cstdint>

#include "spindle/wait_list.hpp"

namespace spindle {

class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  void add(long n = 1);
  void done() { add(-1); }
  void wait();

 private:
  // High 32 bits: the counter. Low 32: waiters that registered while it was
  // above zero. A registered waiter always takes a token from sema_ before
  // it returns, so the add() that reaches zero may still use sema_ when it
  // hands the tokens out: nobody it counted can have freed the WaitGroup.
  // done() is one atomic add (acq_rel: releases the worker's writes to the
  // waiter, which acquires them through the chain of adds or sema_'s lock).
  // On a line of its own: fibers on other cores hit it, and a WaitGroup
  // usually lives in its owner's stack frame, whose neighbours its owner
  // keeps writing (a fan-out loop's calls): that false sharing cost
  // spawn+join ~10% of the running core's time.
  alignas(64) std::atomic<std::uint64_t> state_{0};
  detail::Sema sema_{0};
};

}  // namespace spindle
