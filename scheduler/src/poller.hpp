// Where the last idle thread waits. With nothing to run, one M (at most)
// blocks in Poller::poll until the earliest timer, an interrupt, or -- once
// net/ installs the Asio reactor here -- socket readiness; the other idle
// Ms park. This is Go's "block in netpoll" step of findrunnable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "g.hpp"

namespace spindle::detail {

class Poller {
 public:
  virtual ~Poller() = default;
  // Blocks until deadline (nanotime(); kNever: no limit; 0: don't block),
  // an interrupt() or I/O readiness. Returns fibers made runnable by I/O as
  // a schedlink chain (nullptr if none). An interrupt() that arrives before
  // poll() blocks makes it return at once: wake-ups are never lost.
  virtual G* poll(std::int64_t deadline) = 0;
  // Safe from any thread, any number of times.
  virtual void interrupt() = 0;
  // True while I/O is registered, so idle Ms must poll even without timers.
  virtual bool has_waiters() const = 0;
};

// The poller until net/ exists: timers and interrupts only.
class TimerPoller final : public Poller {
 public:
  G* poll(std::int64_t deadline) override;
  void interrupt() override;
  bool has_waiters() const override { return false; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool interrupted_ = false;  // guarded by mu_
};

}  // namespace spindle::detail
