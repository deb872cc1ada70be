// CondVar, a condition variable for spindle::Mutex (Go's sync.Cond, with
// the std::condition_variable interface). wait() parks the fiber (a plain
// thread blocks) and unlocks the mutex atomically with respect to
// notify_one() and notify_all(); it relocks the mutex before returning.
//
//  - notify_one() wakes the longest waiter, notify_all() every waiter that
//    started waiting before the call; either may be called with or without
//    the mutex held, and does nothing if nobody waits.
//  - Wake-ups are not spurious, but another fiber may take the mutex and
//    change the condition before the woken waiter relocks it: wait in a
//    loop, or use the predicate forms.
//  - wait_until()/wait_for() return std::cv_status::timeout once the
//    deadline (steady_clock) has passed, never earlier. A notify racing the
//    deadline wakes the waiter once, and the waiter reports whichever won;
//    if the deadline won, the notify goes to the next waiter, not lost.
//    Timed waits need a running runtime (from a fiber or a plain thread);
//    untimed waits do not.
//  - wait() without holding the lock throws std::logic_error.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>

#include "spindle/mutex.hpp"
#include "spindle/wait_list.hpp"

namespace spindle {

class CondVar {
 public:
  using Clock = std::chrono::steady_clock;

  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void wait(std::unique_lock<Mutex>& lock);
  template <class Pred>
  void wait(std::unique_lock<Mutex>& lock, Pred pred) {
    while (!pred()) wait(lock);
  }

  std::cv_status wait_until(std::unique_lock<Mutex>& lock, Clock::time_point deadline);
  // Returns pred(), as evaluated last.
  template <class Pred>
  bool wait_until(std::unique_lock<Mutex>& lock, Clock::time_point deadline, Pred pred) {
    while (!pred()) {
      if (wait_until(lock, deadline) == std::cv_status::timeout) return pred();
    }
    return true;
  }

  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<Mutex>& lock, std::chrono::duration<Rep, Period> d) {
    return wait_until(lock, deadline_after(d));
  }
  template <class Rep, class Period, class Pred>
  bool wait_for(std::unique_lock<Mutex>& lock, std::chrono::duration<Rep, Period> d, Pred pred) {
    return wait_until(lock, deadline_after(d), std::move(pred));
  }

  void notify_one() noexcept;
  void notify_all() noexcept;

 private:
  struct Deadline;  // condvar.cpp

  template <class Rep, class Period>
  static Clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(d);
  }
  void block(std::unique_lock<Mutex>& lock, Deadline* deadline);

  // Guards waiters_. A waiter links itself while it still holds the user's
  // mutex and unlocks that mutex under lock_, so a notify, which needs
  // lock_, cannot fall between the waiter's check of its condition and its
  // sleep. Mutex::unlock() never blocks, so it may run under a SpinLock.
  detail::SpinLock lock_;
  detail::WaitList waiters_;
};

}  // namespace spindle
