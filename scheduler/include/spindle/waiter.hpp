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
// primitive's wait list while it waits. The lock passed to wait() guards
// the list and is released once the waiter is safely asleep.
struct Waiter {
  Waiter* next = nullptr;
  Fiber* fiber = current_fiber();  // nullptr: a plain thread
  std::atomic<bool> woken{false};  // threads only

  // Called with `lock` held, after linking this waiter; returns with `lock`
  // released and the waiter woken.
  void wait(SpinLock& lock, WaitReason reason) {
    if (fiber) {
      park(reason, [&lock](Fiber*) {
        lock.unlock();
        return true;
      });
      return;
    }
    lock.unlock();
    while (!woken.load(std::memory_order_acquire)) woken.wait(false, std::memory_order_acquire);
    // The waker notifies under `lock`; taking it once means it is done with
    // this waiter before the waiter's stack frame goes away.
    lock.lock();
    lock.unlock();
  }

  // Called with the primitive's lock held, after unlinking this waiter.
  void wake() noexcept {
    if (fiber) return ready(fiber);
    woken.store(true, std::memory_order_release);
    woken.notify_one();
  }
};

}  // namespace spindle::detail
