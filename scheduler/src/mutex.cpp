// Mutex's slow paths: Go's sync.Mutex state machine (src/sync/mutex.go)
// over detail::Sema. The state word's bits are described in mutex.hpp.
//
// lock_slow() loops on one CAS of the state word. Each pass either spins
// (the holder is running elsewhere and will be done soon), takes the lock
// (it is free and not starving), or counts itself as a waiter and sleeps on
// sema_ until an unlock() wakes it, then starts over. unlock_slow() drops
// kLocked and, in the same CAS, decides whether to wake a waiter: in normal
// mode only if nobody is awake to take the lock already (kWoken); in
// starvation mode always, and the woken waiter owns the lock.
#include "spindle/mutex.hpp"

#include <cassert>
#include <stdexcept>
#include <thread>

#include "sched.hpp"
#include "spindle/runtime.hpp"
#include "spindle/timer.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace spindle {
namespace {

constexpr auto relaxed = std::memory_order_relaxed;

// A waiter that has waited this long switches the mutex to starvation
// mode (Go's starvationThresholdNs): long enough that handing off, which
// costs a switch per lock, is rare; short enough to bound tail latency.
constexpr std::int64_t kStarvationNs = 1'000'000;
// Spin passes before parking, and pause instructions per pass (Go's
// active_spin and active_spin_cnt): about a microsecond in all, less than
// a park and wake-up costs.
constexpr int kSpinPasses = 4;
constexpr int kPausesPerPass = 30;

void pause_cpu() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Go's runtime_canSpin: spinning pays only if the holder is likely running
// right now on another thread, so only on a multicore machine, with another
// P busy, and with nothing else queued on our P that we would delay. A
// plain thread (or a fiber inside blocking()) has no P and sleeps at once.
bool can_spin(int passes) {
  static const bool multicore = std::thread::hardware_concurrency() > 1;
  if (passes >= kSpinPasses || !multicore) return false;
  detail::M* m = detail::this_m();
  detail::P* pp = m ? m->p : nullptr;
  if (!pp) return false;
  int busy =
      detail::rt->nprocs - detail::rt->npidle.load(relaxed) - detail::rt->nmspinning.load(relaxed);
  return busy > 1 && pp->runq.empty();
}

void spin() {
  for (int i = 0; i < kPausesPerPass; ++i) pause_cpu();
}

}  // namespace

bool Mutex::try_lock() noexcept {
  std::uint32_t old = state_.load(relaxed);
  if (old & (kLocked | kStarving)) return false;
  // Acquire, as in lock().
  return state_.compare_exchange_strong(old, old | kLocked, std::memory_order_acquire, relaxed);
}

void Mutex::lock_slow() {
  preempt_point();
  std::int64_t wait_start = 0;  // 0: has not slept yet
  bool starving = false;        // this waiter has waited over kStarvationNs
  bool awoke = false;           // this waiter owns kWoken
  int passes = 0;
  std::uint32_t old = state_.load(relaxed);
  for (;;) {
    // No spinning in starvation mode: the lock goes to the first waiter.
    if ((old & (kLocked | kStarving)) == kLocked && can_spin(passes)) {
      // Claim kWoken so that unlock() does not wake a sleeper while we are
      // here to take the lock. Relaxed: a hint, it publishes no data.
      if (!awoke && !(old & kWoken) && (old >> kWaiterShift) != 0 &&
          state_.compare_exchange_weak(old, old | kWoken, relaxed))
        awoke = true;
      spin();
      ++passes;
      old = state_.load(relaxed);
      continue;
    }
    std::uint32_t want = old;
    if (!(old & kStarving)) want |= kLocked;  // a starving mutex is handed off, not taken
    if (old & (kLocked | kStarving)) want += kWaiter;
    // Only while locked: unlock() expects a starving mutex to have waiters.
    if (starving && (old & kLocked)) want |= kStarving;
    if (awoke) {
      assert((want & kWoken) && "spindle::Mutex: inconsistent state");
      want &= ~kWoken;  // ours to clear, whether we get the lock or sleep again
    }
    // Acquire: if this takes the lock, it pairs with unlock()'s release.
    if (!state_.compare_exchange_weak(old, want, std::memory_order_acquire, relaxed)) continue;
    if (!(old & (kLocked | kStarving))) return;  // took it
    if ((want & kStarving) && !(old & kStarving)) starvations_.fetch_add(1, relaxed);

    // A waiter that was woken and lost the race waits again at the head.
    bool again = wait_start != 0;
    if (!again) wait_start = now_ns();
    sema_.acquire(1, WaitReason::mutex, again);
    starving = starving || now_ns() - wait_start > kStarvationNs;
    // Relaxed: sema_ ordered us after the unlock() that woke us.
    old = state_.load(relaxed);
    if (old & kStarving) return take_handoff(old, starving);
    awoke = true;
    passes = 0;
  }
}

// Starvation mode: unlock() handed the lock to us, leaving kLocked clear and
// us counted as a waiter. Set the one, drop the other, and leave starvation
// mode if we waited only briefly or nobody is behind us: handing off costs
// a switch per lock, and two fibers could otherwise stay in lock-step in it
// forever.
void Mutex::take_handoff(std::uint32_t old, bool starving) {
  assert(!(old & (kLocked | kWoken)) && (old >> kWaiterShift) != 0 &&
         "spindle::Mutex: inconsistent state");
  std::uint32_t delta = kLocked - kWaiter;
  if (!starving || (old >> kWaiterShift) == 1) delta -= kStarving;
  // Acquire for symmetry with lock(); sema_ already ordered us after the
  // unlock() that handed over.
  state_.fetch_add(delta, std::memory_order_acquire);
}

void Mutex::unlock_slow(std::uint32_t old) {
  for (;;) {
    if (!(old & kLocked)) throw std::logic_error("spindle::Mutex: unlock of unlocked mutex");
    std::uint32_t want = old - kLocked;
    bool wake = true;  // starvation mode: hand the lock to the first waiter
    if (!(old & kStarving)) {
      // Normal mode: wake one waiter to compete for the lock, unless there
      // is none or one is awake already.
      wake = (old >> kWaiterShift) != 0 && !(old & kWoken);
      if (wake) want = (want - kWaiter) | kWoken;
    }
    // Release: publishes the critical section to the next holder.
    if (state_.compare_exchange_weak(old, want, std::memory_order_release, relaxed)) {
      if (wake) sema_.release(1);
      return;
    }
  }
}

}  // namespace spindle
