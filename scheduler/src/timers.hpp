// Timers: one binary min-heap per P, like Go's per-P timer heaps, so adding
// a timer touches only the running P's lock. Any M may run another P's
// expired timers (thieves do, and the idle poller), hence the mutex.
// `next_` mirrors the earliest deadline so that idle Ms can compute how long
// to sleep without taking every P's lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <mutex>
#include <vector>

#include "spindle/timer.hpp"

namespace spindle::detail {

inline std::int64_t nanotime() noexcept {
  return spindle::now_ns();
}
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

using spindle::Timer;

class TimerHeap {
 public:
  // Returns true if t is now the earliest timer of this heap.
  bool add(Timer* t);
  // True if t was removed before firing (or dropped by clear()); false if
  // it fired or is firing.
  static bool cancel(Timer* t);
  // Fires every timer due at `now`; returns how many fired.
  int run_expired(std::int64_t now);
  // Drops every timer without firing it (shutdown). A dropped timer is
  // marked so that cancel() says true: its owner waits for no fire().
  void clear();

  std::int64_t next() const { return next_.load(std::memory_order_acquire); }
  std::uint32_t size() const { return count_.load(std::memory_order_relaxed); }

 private:
  static TimerHeap* dropped() noexcept;  // the mark clear() leaves in Timer::heap
  bool remove_locked(Timer* t);
  void sift_up(std::size_t i);
  void sift_down(std::size_t i);
  void place(std::size_t i, Timer* t);
  void update_next();

  std::mutex mu_;
  std::vector<Timer*> heap_;  // guarded by mu_
  // Release-stored under mu_ after each change; acquire-loaded by idle Ms.
  std::atomic<std::int64_t> next_{kNever};
  std::atomic<std::uint32_t> count_{0};
};

}  // namespace spindle::detail
