// Once, as Go's sync.Once with std::call_once's contract:
//
//   spindle::Once once;
//   spindle::call_once(once, [] { init(); });
//
//  - The first call runs f; calls made while it runs park (a plain thread
//    blocks) until it has finished, and return without running f. Every
//    call returns after f's effects are visible.
//  - If f throws, the exception reaches its caller and the Once stays
//    unset: the next caller (a parked one, or a later one) runs its own f.
//    Go's Once instead counts a panicking f as done.
//  - Calling call_once on the same Once from inside f deadlocks.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <utility>

#include "spindle/mutex.hpp"

namespace spindle {

class Once {
 public:
  Once() = default;
  Once(const Once&) = delete;
  Once& operator=(const Once&) = delete;

 private:
  template <class F, class... Args>
  friend void call_once(Once& once, F&& f, Args&&... args);

  // Release-stored after f returns, acquire-loaded by the fast path: a
  // caller that sees it set sees f's effects.
  std::atomic<bool> done_{false};
  Mutex mu_;  // held while f runs; the other callers wait on it
};

template <class F, class... Args>
void call_once(Once& once, F&& f, Args&&... args) {
  if (once.done_.load(std::memory_order_acquire)) return;
  std::lock_guard lock(once.mu_);
  // Relaxed: the mutex ordered us after whoever set it.
  if (once.done_.load(std::memory_order_relaxed)) return;
  std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
  once.done_.store(true, std::memory_order_release);
}

}  // namespace spindle
