// Spindle's runtime: fibers (G) multiplexed onto OS threads (M) through
// logical processors (P), in the manner of Go's runtime. See
// scheduler/README.md for the design.
//
//   spindle::run(cfg, [] {                 // like Go's main
//     spindle::go([] { ... });             // like `go f()`
//   });                                    // returns when main_fn returns
//
// Everything here may be called from any fiber. go() may also be called from
// a plain thread while a runtime is running.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace spindle {

struct Config {
  // Logical processors: how many fibers run in parallel. 0 means
  // $SPINDLE_PROCS if set, else the number of hardware threads.
  int procs = 0;
  // Default usable stack size of a fiber (committed lazily, page by page).
  std::size_t stack_size = 64 * 1024;
  // A fiber that runs longer than this without a scheduling point is asked
  // to yield at its next preempt_point().
  std::chrono::microseconds time_slice{10'000};
  // A fiber that holds its thread this long is logged once, by id and name.
  std::chrono::microseconds stall_report{100'000};
  // A blocking() call that lasts longer than this loses its P to another
  // thread so the P's other fibers keep running.
  std::chrono::microseconds blocking_handoff{20};
  // A fiber spawned with SpawnOptions::evictable_stack and parked this long
  // in an evictable wait (the netpoller's: an idle connection) has its
  // stack copied to the heap and its pages given back until it runs again
  // (scheduler/README.md, "Stack eviction"). 0: never. -1 means
  // $SPINDLE_STACK_EVICT_MS if set, else 1 s.
  std::chrono::milliseconds stack_evict_after{-1};
  // Print a scheduler trace line every N ms (0: off). -1 means
  // $SPINDLE_SCHEDTRACE if set, else off.
  int schedtrace_ms = -1;
  // Slots in each P's local run queue (a power of two). Tests shrink it.
  std::uint32_t local_queue_slots = 256;
  // Stress mode: every yield() sends the fiber through the global queue to
  // whichever P takes it, so migration bugs show up.
  bool migrate_on_yield = false;
};

// Starts the runtime, runs main_fn as the first fiber and returns when it
// returns. Fibers still alive then are unwound (their destructors run; see
// README). One runtime per process at a time; exceptions escaping any fiber,
// main_fn included, terminate the process after logging.
void run(const Config& cfg, std::function<void()> main_fn);

struct SpawnOptions {
  std::string_view name{};     // shown in dumps and stall reports (truncated to 31 bytes)
  std::size_t stack_size = 0;  // 0: the runtime's Config::stack_size
  // Lets the runtime evict this fiber's stack while it waits long on the
  // network (Config::stack_evict_after; scheduler/README.md, "Stack
  // eviction"). The fiber promises that nothing outside it reads or writes
  // objects on its stack during such a wait: no other fiber or thread holds
  // a pointer into its frames (share through the heap, as Go's escape
  // analysis does). Off by default, since C++ code often shares a stack
  // object by reference (`go([&] { ... })`) and a write to an evicted stack
  // is lost.
  bool evictable_stack = false;
};

namespace detail {
struct Spawn {
  void* g;
  void* storage;  // where the callable is to be constructed
};
Spawn prepare_spawn(const SpawnOptions& opts, std::size_t size, std::size_t align);
void launch(void* g, void (*invoke)(void*), void (*destroy)(void*)) noexcept;
void abandon_spawn(void* g) noexcept;
}  // namespace detail

// Starts f in a new fiber. A callable of up to 32 bytes is stored in the
// fiber's descriptor, a larger one at the top of its stack: spawning
// allocates nothing from the heap and makes no syscall once fibers and
// stacks are pooled.
template <class F>
void go(const SpawnOptions& opts, F&& f) {
  using Fn = std::decay_t<F>;
  detail::Spawn s = detail::prepare_spawn(opts, sizeof(Fn), alignof(Fn));
  try {
    ::new (s.storage) Fn(std::forward<F>(f));
  } catch (...) {
    detail::abandon_spawn(s.g);
    throw;
  }
  detail::launch(
      s.g, [](void* p) { (*static_cast<Fn*>(p))(); }, [](void* p) { static_cast<Fn*>(p)->~Fn(); });
}

template <class F>
void go(F&& f) {
  go(SpawnOptions{}, std::forward<F>(f));
}

// Lets other fibers run; the caller goes to the back of its P's queue.
void yield();

// A cheap check (one load) to call inside long CPU loops: yields if the
// monitor has flagged the current fiber for overrunning its time slice.
void preempt_point();

void sleep_until(std::chrono::steady_clock::time_point deadline);
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  sleep_until(std::chrono::steady_clock::now() +
              std::chrono::duration_cast<std::chrono::steady_clock::duration>(d));
}

namespace detail {
void enter_blocking() noexcept;
void exit_blocking() noexcept;
}  // namespace detail

// Runs fn, a call that may block its thread (file I/O, DNS, a database
// client). If it lasts longer than Config::blocking_handoff, the monitor
// hands this thread's P to another thread so the other fibers keep running;
// the fiber resumes on a P when fn returns. From a non-fiber thread it just
// calls fn.
template <class F>
decltype(auto) blocking(F&& fn) {
  struct Exit {
    ~Exit() { detail::exit_blocking(); }
  };
  detail::enter_blocking();
  Exit on_exit;
  return std::forward<F>(fn)();
}

namespace this_fiber {
// Id of the running fiber (1 is main_fn), 0 on a thread that is not a fiber.
std::uint64_t id() noexcept;
// Name given at spawn, "" if none or not a fiber.
std::string name();
}  // namespace this_fiber

}  // namespace spindle
