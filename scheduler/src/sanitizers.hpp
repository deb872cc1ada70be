// Hooks that tell AddressSanitizer and ThreadSanitizer about stack switches.
// Without them ASan reports false stack-buffer overflows and TSan mixes up
// the histories of fibers that share a thread. Compiled out otherwise.
#pragma once

#include <csignal>
#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define SPINDLE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPINDLE_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define SPINDLE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPINDLE_TSAN 1
#endif
#endif

extern "C" {
#ifdef SPINDLE_ASAN
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, std::size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                     std::size_t* size_old);
void __asan_unpoison_memory_region(void const volatile* addr, std::size_t size);
#endif
#ifdef SPINDLE_TSAN
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
#endif
}

// A frame ASan must neither instrument nor merge into its caller (see
// switch_from in proc.cpp); everywhere else it is just inlined.
#ifdef SPINDLE_ASAN
#define SPINDLE_SWITCH_FRAME [[gnu::noinline, gnu::no_sanitize_address]]
#else
#define SPINDLE_SWITCH_FRAME [[gnu::always_inline]] inline
#endif

namespace spindle::detail {

// The sanitizers' view of one execution stack (a fiber's or a thread's own).
struct SanitizerStack {
  const void* bottom = nullptr;  // lowest address, as ASan wants it
  std::size_t size = 0;
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;
};

// Call right before switching away from `from` to `to`. `from_dies` when the
// fiber being left will never run again (ASan then frees its fake stack).
inline void sanitizer_before_switch([[maybe_unused]] SanitizerStack& from,
                                    [[maybe_unused]] const SanitizerStack& to,
                                    [[maybe_unused]] bool from_dies) {
#ifdef SPINDLE_ASAN
  __sanitizer_start_switch_fiber(from_dies ? nullptr : &from.asan_fake_stack, to.bottom, to.size);
  // ASan destroys a dying fiber's fake stack; the next fiber on this G must
  // not get the stale pointer back from its first finish_switch_fiber.
  if (from_dies) from.asan_fake_stack = nullptr;
#endif
#ifdef SPINDLE_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
}

// Call first thing after a switch lands on `self`; `from` learns the bounds
// of the stack that was left (how a thread's own stack gets known).
inline void sanitizer_after_switch([[maybe_unused]] SanitizerStack& self,
                                   [[maybe_unused]] SanitizerStack* from) {
#ifdef SPINDLE_ASAN
  __sanitizer_finish_switch_fiber(self.asan_fake_stack, from ? &from->bottom : nullptr,
                                  from ? &from->size : nullptr);
#endif
}

// Call before a fiber starts on `bottom`..`bottom + size`: that memory may
// have held another fiber's frames (a reused G's stack, or a new mapping
// where an old stack was unmapped), and the frames that never returned, like
// a dead fiber's last ones, left their redzones poisoned. ASan's function
// prologues poison only redzones and assume the rest of the shadow is clear.
inline void sanitizer_stack_reset([[maybe_unused]] const void* bottom,
                                  [[maybe_unused]] std::size_t size) {
#ifdef SPINDLE_ASAN
  __asan_unpoison_memory_region(bottom, size);
#endif
}

inline void* sanitizer_new_fiber() {
#ifdef SPINDLE_TSAN
  return __tsan_create_fiber(0);
#else
  return nullptr;
#endif
}
inline void sanitizer_free_fiber([[maybe_unused]] void* tsan_fiber) {
#ifdef SPINDLE_TSAN
  if (tsan_fiber) __tsan_destroy_fiber(tsan_fiber);
#endif
}
inline void* sanitizer_thread_fiber() {
#ifdef SPINDLE_TSAN
  return __tsan_get_current_fiber();
#else
  return nullptr;
#endif
}

// Under TSan, a thread blocks asynchronous signals while it may run fibers,
// so the kernel gives process-directed ones (SIGTERM from a supervisor) to
// sysmon, which keeps the mask of run()'s caller; one sent to an M itself
// (raise() in a fiber) waits until the M ends and returns to that mask (the
// end of run() for the caller's thread). TSan defers a signal that
// interrupts running code to that code's next intercepted call, and queues
// it in the current TSan fiber state: a fiber that parks first keeps it
// until it runs again, maybe never (a server that never acted on its
// SIGTERM, about one start in 500, even with a delivery attempt at every
// switch: the switch's own bookkeeping is a window). Sysmon waits in
// intercepted calls, where TSan delivers at once. Without TSan these do
// nothing.
#ifdef SPINDLE_TSAN
inline sigset_t tsan_async_signals() noexcept {
  sigset_t set;
  sigfillset(&set);
  // Synchronous ones are the faulting thread's, and TSan runs them at once.
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGABRT, SIGPIPE})
    sigdelset(&set, sig);
  return set;
}
#endif

// On a thread about to run fibers; returns the mask it had.
inline sigset_t sanitizer_leave_signals() noexcept {
  sigset_t old;
  sigemptyset(&old);
#ifdef SPINDLE_TSAN
  sigset_t async = tsan_async_signals();
  pthread_sigmask(SIG_BLOCK, &async, &old);
#endif
  return old;
}

// When it no longer runs fibers.
inline void sanitizer_restore_signals([[maybe_unused]] const sigset_t& old) noexcept {
#ifdef SPINDLE_TSAN
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
#endif
}

}  // namespace spindle::detail
