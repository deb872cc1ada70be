// Mutex, as Go's sync.Mutex: a mutual-exclusion lock that parks the waiting
// fiber, not its thread (a plain thread that waits blocks). Lockable, so
// std::lock_guard, std::unique_lock and std::scoped_lock work.
//
//  - lock() blocks until the mutex is free. Uncontended, it is one CAS;
//    contended, a fiber first spins briefly if the holder is likely running
//    on another thread, then parks. Waiters queue in FIFO order.
//  - Normal mode: unlock() wakes the first waiter, but a fiber that arrives
//    meanwhile may take the lock first (it is already running, so this is
//    fast); the woken waiter that lost queues again at the head.
//  - Starvation mode: a waiter that has waited more than 1 ms switches the
//    mutex to handing ownership straight from unlock() to the first waiter;
//    newcomers neither take the lock nor spin, they queue at the tail. It
//    ends when a waiter gets the lock with nobody behind it or after
//    waiting less than 1 ms.
//  - unlock() of an unlocked mutex throws std::logic_error (Go: a fatal
//    error). As in Go, a mutex is not owned by a fiber: one fiber may lock
//    it and another unlock it.
//  - lock() is a scheduling point when it has to wait (preempt_point());
//    unlock() never blocks or yields, so it is safe under a SpinLock.
//  - Not recursive: locking it again from the holder deadlocks.
#pragma once

#include <atomic>
#include <cstdint>

#include "spindle/wait_list.hpp"

namespace spindle {

class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() {
    std::uint32_t unlocked = 0;
    // Acquire: the critical section sees what the last holder wrote.
    if (state_.compare_exchange_strong(unlocked, kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed))
      return;
    lock_slow();
  }

  // Takes the lock only if it is free and not being handed to a waiter;
  // never waits. May fail spuriously under contention, like std::mutex.
  bool try_lock() noexcept;

  void unlock() {
    std::uint32_t locked = kLocked;
    // Release: publishes the critical section to the next holder.
    if (state_.compare_exchange_strong(locked, 0, std::memory_order_release,
                                       std::memory_order_relaxed))
      return;
    unlock_slow(locked);
  }

  // How many times this mutex has entered starvation mode: for tests and
  // diagnostics (a relaxed read).
  std::uint32_t starvation_count() const noexcept {
    return starvations_.load(std::memory_order_relaxed);
  }

 private:
  // state_: kLocked | kWoken | kStarving | waiters << kWaiterShift.
  //  kLocked: held (in starvation mode it is clear while ownership is
  //  being handed to the first waiter; kStarving alone keeps others out).
  //  kWoken: a waiter was woken or a spinner is awake, so unlock() need not
  //  wake another.
  //  waiters: fibers and threads that have committed to sleeping on sema_.
  static constexpr std::uint32_t kLocked = 1, kWoken = 2, kStarving = 4;
  static constexpr int kWaiterShift = 3;
  static constexpr std::uint32_t kWaiter = 1u << kWaiterShift;

  void lock_slow();
  void take_handoff(std::uint32_t old, bool starving);
  void unlock_slow(std::uint32_t old);

  std::atomic<std::uint32_t> state_{0};
  std::atomic<std::uint32_t> starvations_{0};  // statistics only: relaxed
  // Where waiters sleep. A token in it is the right to retry (normal mode)
  // or the lock itself (starvation mode).
  detail::Sema sema_;
};

}  // namespace spindle
