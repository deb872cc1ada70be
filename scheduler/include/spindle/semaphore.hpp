// Semaphore: a counting (weighted) semaphore, as Go's
// golang.org/x/sync/semaphore.Weighted. Waiting parks the fiber (a plain
// thread blocks).
//
//  - acquire(n) takes n of the `capacity` tokens, waiting until they are
//    free; release(n) gives n back. A fiber may release what another took.
//  - FIFO: waiters are served strictly in arrival order, and a waiter
//    needing more tokens than are free holds back the smaller requests
//    behind it, so a large request is never starved. A newcomer does not
//    overtake queued waiters, even if its request would fit.
//  - try_acquire(n) takes n tokens only if it can do so at once without
//    overtaking a waiter.
//  - n < 0, or acquire(n) with n > capacity (it could never succeed),
//    throws std::invalid_argument; releasing more than was acquired throws
//    std::logic_error and changes nothing.
#pragma once

#include <stdexcept>

#include "spindle/wait_list.hpp"

namespace spindle {

class Semaphore {
 public:
  explicit Semaphore(long capacity) : capacity_(check(capacity)), sema_(capacity) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  void acquire(long n = 1) { sema_.acquire(check_request(n), WaitReason::semaphore); }
  bool try_acquire(long n = 1) { return sema_.try_acquire(check_request(n)); }
  void release(long n = 1) { sema_.release(check(n), capacity_); }

  long capacity() const noexcept { return capacity_; }

 private:
  static long check(long n) {
    if (n < 0) throw std::invalid_argument("spindle::Semaphore: negative count");
    return n;
  }
  long check_request(long n) const {
    if (check(n) > capacity_)
      throw std::invalid_argument("spindle::Semaphore: request exceeds capacity");
    return n;
  }

  const long capacity_;
  detail::Sema sema_;
};

}  // namespace spindle
