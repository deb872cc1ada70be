// The one primitive every fiber-aware wait (channels, mutexes, timers, the
// netpoller) builds on: park the running fiber, ready it from elsewhere.
//
// Protocol (Go's gopark/goready):
//   1. The waiter decides to wait while holding its own lock L (say a
//      channel's), and calls park(reason, commit).
//   2. The fiber's registers are saved and the thread switches to its
//      scheduler stack. Only then does commit(fiber) run there: typically it
//      enqueues the fiber on L's wait list and unlocks L. From that moment a
//      waker may call ready(fiber), on any thread, and the fiber may resume
//      elsewhere before commit even returns; commit must not touch the fiber
//      after publishing it.
//   3. If commit returns false, nothing was published and the fiber resumes
//      at once (the condition it waited for already holds).
// Each park is matched by exactly one ready(); a ready() without a park is a
// bug (asserted in debug builds).
#pragma once

#include <cstdint>
#include <utility>

namespace spindle {

class Fiber;  // opaque: the runtime's G

enum class WaitReason : std::uint8_t {
  none,
  sleep,
  chan_send,
  chan_recv,
  select,
  mutex,
  condvar,
  waitgroup,
  semaphore,
  io_read,
  io_write,
  io_accept,
  context,
  other,
};
const char* to_string(WaitReason r) noexcept;

// The running fiber, or nullptr on a thread that is not running a fiber.
Fiber* current_fiber() noexcept;

using Commit = bool (*)(Fiber* self, void* arg);
// Must be called from a fiber. See the protocol above.
void park(WaitReason reason, Commit commit, void* arg);

// Lambda form: commit is any callable `bool(Fiber*)`.
template <class F>
void park(WaitReason reason, F&& commit) {
  park(
      reason, [](Fiber* self, void* arg) { return (*static_cast<F*>(arg))(self); },
      static_cast<void*>(&commit));
}

// Makes a parked fiber runnable. From a fiber it goes to the front of the
// caller's P (runnext: it runs next, inheriting the time slice, which makes
// request/response hand-offs cheap); from any other thread it goes to the
// global queue.
void ready(Fiber* f) noexcept;

}  // namespace spindle
