// Building blocks shared by the fiber-aware synchronisation types: a short
// spin lock for their internal state, and a wait-list node that parks a
// fiber, or blocks a plain thread, until it is woken.
//
// Why not std::mutex inside them: the park protocol releases the internal
// lock on the scheduler stack after the fiber's switch (see park.hpp),
// which std::mutex and ThreadSanitizer would see as an unlock by another
// thread. SpinLock has no owner, and its critical sections are a few
// pointer writes.
#pragma once

#include <atomic>
#include <thread>

#include "spindle/park.hpp"

namespace spindle::detail {

class SpinLock {
 public:
  void lock() noexcept {
    for (int spins = 0; locked_.exchange(true, std::memory_order_acquire); ++spins) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins > 64) std::this_thread::yield();
      }
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

// A waiter, on the waiting fiber's (or thread's) own stack, linked into the
// primitive's wait list while it waits.
//
// The rule that keeps wakers safe: the woken party may return at once and
// free both its Waiter and the primitive itself (a WaitGroup on the stack of
// the fiber that waited on it). So a waker unlinks the waiters under the
// primitive's lock, releases the lock, then calls wake() on each, reading
// `next` before the call, and touches neither the waiter nor the primitive
// after its last wake().
struct Waiter {
  Waiter* next = nullptr;
  Fiber* fiber = current_fiber();  // nullptr: a plain thread

  // Called with `lock` held, after linking this waiter; returns with `lock`
  // released, once woken.
  void wait(SpinLock& lock, WaitReason reason) {
    if (fiber) {
      park(reason, [&lock](Fiber*) {
        lock.unlock();
        return true;
      });
      return;
    }
    lock.unlock();
    // Sleep until woken, then wait out the waker's last store (a few
    // instructions) so it is done with this object before we free it.
    for (int s; (s = state_.load(std::memory_order_acquire)) != kReleased;) {
      if (s == kWaiting)
        state_.wait(kWaiting, std::memory_order_acquire);
      else
        std::this_thread::yield();
    }
  }

  // Called after unlinking this waiter, without the primitive's lock. The
  // waiter may be gone when it returns.
  void wake() noexcept {
    if (fiber) return ready(fiber);
    state_.store(kWoken, std::memory_order_relaxed);
    state_.notify_one();
    state_.store(kReleased, std::memory_order_release);  // our last touch
  }

 private:
  static constexpr int kWaiting = 0, kWoken = 1, kReleased = 2;
  std::atomic<int> state_{kWaiting};  // threads only
};

// Wakes a detached list of waiters (see the rule above).
inline void wake_all(Waiter* w) noexcept {
  while (w) {
    Waiter* next = w->next;
    w->wake();
    w = next;
  }
}

}  // namespace spindle::detail
