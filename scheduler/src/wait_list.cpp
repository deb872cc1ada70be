#include "spindle/wait_list.hpp"

#include <stdexcept>

namespace spindle::detail {

void WaitList::push_back(Waiter* w) noexcept {
  w->next = nullptr;
  if (tail_)
    tail_->next = w;
  else
    head_ = w;
  tail_ = w;
}

void WaitList::push_front(Waiter* w) noexcept {
  w->next = head_;
  head_ = w;
  if (!tail_) tail_ = w;
}

Waiter* WaitList::pop_front() noexcept {
  Waiter* w = head_;
  if (!w) return nullptr;
  head_ = w->next;
  if (!head_) tail_ = nullptr;
  return w;
}

bool WaitList::remove(Waiter* w) noexcept {
  Waiter* prev = nullptr;
  for (Waiter* it = head_; it; prev = it, it = it->next) {
    if (it != w) continue;
    (prev ? prev->next : head_) = w->next;
    if (tail_ == w) tail_ = prev;
    return true;
  }
  return false;
}

Waiter* WaitList::take_all() noexcept {
  Waiter* all = head_;
  head_ = tail_ = nullptr;
  return all;
}

void wait_in(WaitList& list, Waiter& w, SpinLock& lock, WaitReason reason) {
  try {
    w.wait(lock, reason);
  } catch (...) {
    lock.lock();
    list.remove(&w);
    lock.unlock();
    throw;
  }
}

namespace {
struct SemaWaiter : Waiter {
  explicit SemaWaiter(long n) : n(n) {}
  long n;  // tokens wanted
};
long wants(const Waiter* w) noexcept {
  return static_cast<const SemaWaiter*>(w)->n;
}
}  // namespace

bool Sema::take_locked(long n) noexcept {
  // Only when nobody is queued: a newcomer must not overtake the head.
  if (!waiters_.empty() || tokens_ < n) return false;
  tokens_ -= n;
  return true;
}

void Sema::acquire(long n, WaitReason reason, bool front) {
  lock_.lock();
  if (take_locked(n)) return lock_.unlock();
  SemaWaiter self(n);
  if (front)
    waiters_.push_front(&self);
  else
    waiters_.push_back(&self);
  // grant_locked() took our tokens for us before waking us.
  wait_in(waiters_, self, lock_, reason);
}

bool Sema::try_acquire(long n) noexcept {
  lock_.lock();
  bool ok = take_locked(n);
  lock_.unlock();
  return ok;
}

void Sema::release(long n, long limit) {
  lock_.lock();
  if (tokens_ > limit - n) {
    lock_.unlock();
    throw std::logic_error("spindle: semaphore released more than acquired");
  }
  tokens_ += n;
  Waiter* woken = grant_locked();
  lock_.unlock();
  wake_all(woken);  // after unlocking: a woken waiter may free *this (waiter.hpp)
}

// Gives tokens to the longest-waiting waiters while the head's request fits
// and returns them as a detached list.
Waiter* Sema::grant_locked() noexcept {
  WaitList granted;
  while (Waiter* w = waiters_.front()) {
    if (wants(w) > tokens_) break;
    tokens_ -= wants(w);
    granted.push_back(waiters_.pop_front());
  }
  return granted.take_all();
}

}  // namespace spindle::detail
