// The wait-list code the sync types share (mutex.hpp, rwmutex.hpp,
// condvar.hpp, semaphore.hpp): a FIFO list of detail::Waiter, and Sema, a
// counting semaphore that parks fibers (or blocks plain threads) on it.
// Sema is Go's runtime semaphore (runtime/sema.go) in spirit: Mutex and
// RWMutex keep their state in an atomic word and only come here to sleep.
#pragma once

#include <climits>

#include "spindle/waiter.hpp"

namespace spindle::detail {

// An intrusive singly linked FIFO of waiters; each lives on its waiter's
// stack (waiter.hpp). Not synchronised: the owning primitive's SpinLock
// guards it. remove() walks the list, so it is for rare paths only (a
// timeout, an unwinding fiber).
class WaitList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  Waiter* front() const noexcept { return head_; }

  void push_back(Waiter* w) noexcept;
  void push_front(Waiter* w) noexcept;
  Waiter* pop_front() noexcept;  // nullptr if empty
  // False if w is not in the list (a waker took it first).
  bool remove(Waiter* w) noexcept;
  // Detaches the whole list, for wake_all() once the lock is released.
  Waiter* take_all() noexcept;

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

// With `lock` held and w in `list`: waits until woken (Waiter::wait) and
// returns with `lock` released. If the wait ends in an exception (the
// runtime's shutdown Unwind), unlinks w first so that no later waker finds
// a dead waiter in the list.
void wait_in(WaitList& list, Waiter& w, SpinLock& lock, WaitReason reason);

// A counting semaphore with a FIFO wait list. acquire(n) takes n tokens if
// nobody is queued and n are free, else queues and parks. release(n) hands
// tokens to waiters in queue order, stopping at the first whose request
// does not fit: a large request at the head holds back smaller ones behind
// it, so it cannot be starved by them (Go's x/sync/semaphore). A woken
// waiter owns its tokens already; it never competes for them again.
class Sema {
 public:
  explicit Sema(long tokens = 0) noexcept : tokens_(tokens) {}
  Sema(const Sema&) = delete;
  Sema& operator=(const Sema&) = delete;

  // front: queue at the head, for a waiter that was woken, lost a race for
  // what it waited for (a mutex, to a newcomer) and waits again (Go's
  // queueLifo).
  void acquire(long n, WaitReason reason, bool front = false);
  bool try_acquire(long n) noexcept;
  // Throws std::logic_error, changing nothing, if the free tokens would
  // exceed `limit` (more released than acquired).
  void release(long n, long limit = LONG_MAX);

 private:
  bool take_locked(long n) noexcept;
  Waiter* grant_locked() noexcept;

  SpinLock lock_;
  long tokens_;       // free tokens; guarded by lock_
  WaitList waiters_;  // guarded by lock_; each a SemaWaiter (wait_list.cpp)
};

}  // namespace spindle::detail
