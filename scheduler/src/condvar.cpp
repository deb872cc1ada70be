// CondVar: a wait list under a SpinLock (see condvar.hpp for why the user's
// mutex is released under it). A timed wait adds a runtime timer; whichever
// of the timer and a notify unlinks the waiter under lock_ wakes it, so it
// is woken exactly once.
#include "spindle/condvar.hpp"

#include <atomic>
#include <stdexcept>

#include "spindle/runtime.hpp"
#include "spindle/timer.hpp"

namespace spindle {

// A timed wait's timer, on the waiter's stack. fire() runs on a scheduler
// thread; the waiter may not return (and free this) until fire() is done
// with it, which `done` tells.
struct CondVar::Deadline : Timer {
  Deadline(CondVar* cv, Clock::time_point t) : cv(cv) {
    when = to_ns(t);
    fire = [](Timer* timer) { static_cast<Deadline*>(timer)->expire(); };
  }

  // On the timer's thread: take the waiter off the list unless a notify
  // did first.
  void expire() noexcept {
    cv->lock_.lock();
    timed_out = cv->waiters_.remove(waiter);
    cv->lock_.unlock();
    if (timed_out) waiter->wake();
    // Release: our last touch of *this; the waiter then reads timed_out.
    done.store(true, std::memory_order_release);
  }

  // On the waiter, once woken.
  void finish() {
    // Removed before it fired: a notify woke us. Else fire() has run or is
    // a few instructions from `done`.
    if (stop_timer(this)) return;
    while (!done.load(std::memory_order_acquire)) yield();
  }

  CondVar* cv;
  detail::Waiter* waiter = nullptr;
  bool timed_out = false;  // written by expire(), read by the waiter after `done`
  std::atomic<bool> done{false};
};

void CondVar::wait(std::unique_lock<Mutex>& lock) {
  block(lock, nullptr);
}

std::cv_status CondVar::wait_until(std::unique_lock<Mutex>& lock, Clock::time_point deadline) {
  Deadline timer(this, deadline);
  block(lock, &timer);
  return timer.timed_out ? std::cv_status::timeout : std::cv_status::no_timeout;
}

void CondVar::block(std::unique_lock<Mutex>& lock, Deadline* deadline) {
  if (!lock.owns_lock()) throw std::logic_error("spindle::CondVar: wait without the lock held");
  detail::Waiter self;
  lock_.lock();
  waiters_.push_back(&self);
  try {
    lock.unlock();  // throws only if another fiber unlocked our mutex
  } catch (...) {
    waiters_.remove(&self);
    lock_.unlock();
    throw;
  }
  if (deadline) {
    deadline->waiter = &self;
    start_timer(deadline);  // its fire() needs lock_, which we hold until we sleep
  }
  detail::wait_in(waiters_, self, lock_, WaitReason::condvar);
  if (deadline) deadline->finish();
  lock.lock();
}

void CondVar::notify_one() noexcept {
  lock_.lock();
  detail::Waiter* w = waiters_.pop_front();
  lock_.unlock();
  if (w) w->wake();
}

void CondVar::notify_all() noexcept {
  lock_.lock();
  detail::Waiter* all = waiters_.take_all();
  lock_.unlock();
  detail::wake_all(all);
}

}  // namespace spindle
