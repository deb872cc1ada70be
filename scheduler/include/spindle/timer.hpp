// Runtime timers, for code that builds waits on the scheduler (select
// timeouts, context deadlines, I/O deadlines). Application code wants
// spindle::sleep_for or a Context deadline instead.
//
// A Timer lives in the caller's memory (often the waiting fiber's stack);
// start_timer() puts it in the current P's heap. When `when` passes, a
// scheduler thread holding a P calls fire(timer) outside any lock: it must
// not block and typically ready()s a fiber. From the moment fire() starts,
// the Timer belongs to the callback.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace spindle {

namespace detail {
class TimerHeap;
}

struct Timer {
  std::int64_t when = 0;  // deadline, in now_ns() units
  void (*fire)(Timer*) = nullptr;

  // Owned by the heap the timer is in (nullptr: in none).
  std::atomic<detail::TimerHeap*> heap{nullptr};
  std::size_t index = 0;
};

// The runtime's clock: steady_clock, in nanoseconds.
std::int64_t now_ns() noexcept;
inline std::int64_t to_ns(std::chrono::steady_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// Must be called with a runtime running (from a fiber, a park commit, or a
// plain thread). The timer must not be in a heap already.
void start_timer(Timer* t);
// True if t was removed before firing, or will never fire because the
// runtime's shutdown dropped it; false if it fired, is firing, or was never
// started.
bool stop_timer(Timer* t) noexcept;

}  // namespace spindle
