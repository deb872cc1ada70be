// The netpoller slot of the runtime (Go's netpoll): what an idle M blocks
// in, and what net/ plugs Asio's reactor into. The scheduler's protocol
// around it (one blocking poller at a time, non-blocking polls by Ms that
// find no work, sysmon's poll when nobody polled for 10 ms) is described in
// scheduler/README.md. Application code never uses this header.
#pragma once

#include <cstdint>
#include <memory>

namespace spindle {
class Fiber;
}

namespace spindle::detail {

// Fibers that a poll made runnable. push() takes a parked fiber and marks
// it runnable; the scheduler queues the list when poll() returns.
class ReadyList {
 public:
  void push(Fiber* f) noexcept;
  // Appends a fiber that is runnable already (the scheduler's own use).
  void append(Fiber* f) noexcept;
  Fiber* take() noexcept {
    Fiber* f = head_;
    head_ = tail_ = nullptr;
    return f;
  }

 private:
  Fiber* head_ = nullptr;
  Fiber* tail_ = nullptr;
};

class Poller {
 public:
  virtual ~Poller() = default;
  // Waits until deadline (now_ns() units; kNeverPoll: no limit; 0: don't
  // block), an interrupt() or I/O readiness, pushing readied fibers on
  // `ready`. An interrupt() that comes before the wait makes it return at
  // once: wake-ups are never lost. Several threads may call it at once.
  virtual void poll(std::int64_t deadline, ReadyList& ready) = 0;
  // Safe from any thread, any number of times.
  virtual void interrupt() = 0;
  // True while I/O waits are registered: idle Ms must poll then, timers or not.
  virtual bool has_waiters() const = 0;
};

constexpr std::int64_t kNeverPoll = INT64_MAX;

// Makes the running runtime poll through make()'s poller from now on
// (created once per run; later calls return the same one). Any M blocked in
// the previous poller is interrupted so it moves over. The runtime owns the
// poller and destroys it when run() returns, after unwinding every fiber.
Poller& install_poller(std::unique_ptr<Poller> (*make)());

}  // namespace spindle::detail
