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
//
// Stack eviction (scheduler/README.md, "Stack eviction"): a park that passes
// ParkStack::evictable promises that, once commit has returned, nothing
// reads or writes the fiber's stack until the fiber runs again: wakers only
// call ready(). The runtime may then copy the used part of a long-parked
// fiber's stack to the heap and give its pages back to the kernel; it is
// copied back, at the same addresses, before the fiber runs. A wait whose
// waiter record (list node, timer, callback) lives on the stack must stay
// ParkStack::pinned, the default. Only fibers spawned with
// SpawnOptions::evictable_stack are ever evicted: the fiber's own code must
// not share its stack either.
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

// What a park promises about the fiber's stack while it is parked.
enum class ParkStack : std::uint8_t {
  pinned,     // others may touch it (a waiter node on the stack): stays resident
  evictable,  // nobody touches it after commit returns: may be evicted
};

using Commit = bool (*)(Fiber* self, void* arg);
// Must be called from a fiber. See the protocol above.
void park(WaitReason reason, Commit commit, void* arg, ParkStack stack = ParkStack::pinned);

// Lambda form: commit is any callable `bool(Fiber*)`.
template <class F>
void park(WaitReason reason, F&& commit, ParkStack stack = ParkStack::pinned) {
  park(
      reason, [](Fiber* self, void* arg) { return (*static_cast<F*>(arg))(self); },
      static_cast<void*>(&commit), stack);
}

// Makes a parked fiber runnable. From a fiber it goes to the front of the
// caller's P (runnext: it runs next, inheriting the time slice, which makes
// request/response hand-offs cheap); from any other thread it goes to the
// global queue.
void ready(Fiber* f) noexcept;

}  // namespace spindle
