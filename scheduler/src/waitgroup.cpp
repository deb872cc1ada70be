#include "spindle/waitgroup.hpp"

#include <stdexcept>

namespace spindle {

void WaitGroup::add(long n) {
  long now = count_.fetch_add(n, std::memory_order_acq_rel) + n;
  if (now > 0) return;
  if (now < 0) {
    count_.fetch_sub(n, std::memory_order_relaxed);
    throw std::logic_error("spindle::WaitGroup: negative counter");
  }
  // Zero: wake everyone who linked in before us. A waiter that links after
  // takes the lock after us and sees the zero itself. Wake after unlocking:
  // a woken waiter may free this WaitGroup (waiter.hpp).
  lock_.lock();
  detail::Waiter* w = waiters_;
  waiters_ = nullptr;
  lock_.unlock();
  detail::wake_all(w);
}

void WaitGroup::wait() {
  if (count_.load(std::memory_order_acquire) == 0) return;
  lock_.lock();
  if (count_.load(std::memory_order_acquire) == 0) return lock_.unlock();
  detail::Waiter self;
  self.next = waiters_;
  waiters_ = &self;
  self.wait(lock_, WaitReason::waitgroup);
}

}  // namespace spindle
