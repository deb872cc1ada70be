// WaitGroup, as Go's sync.WaitGroup: add(n) before starting work, done()
// when a piece finishes, wait() parks until the counter is zero. wait()
// parks a fiber (not its thread); from a plain thread it blocks the thread.
// The counter going negative is a programming error: std::logic_error.
#pragma once

#include <atomic>

#include "spindle/waiter.hpp"

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
  // done() is one atomic add; the lock is taken only by waiters and by
  // the add() that brings the count to zero. Relaxed is not enough for the
  // count: the zeroing add must release the workers' writes to the waiter,
  // which acquires them (acq_rel on add, acquire in wait).
  std::atomic<long> count_{0};
  detail::SpinLock lock_;
  detail::Waiter* waiters_ = nullptr;  // guarded by lock_
};

}  // namespace spindle
