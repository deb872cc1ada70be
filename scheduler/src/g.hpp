// G: a fiber. See scheduler/README.md for who may touch what.
#pragma once

#include <boost/context/detail/fcontext.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sanitizers.hpp"
#include "spindle/park.hpp"
#include "stack.hpp"

namespace spindle {
namespace detail {

namespace bctx = boost::context::detail;

// Transitions (each asserted where it happens):
//   free -> runnable                 launch()
//   runnable -> running              execute(), by the M that dequeued it
//   running -> runnable              yield / preemption (after the switch)
//   running -> waiting               park (after the switch, before commit)
//   waiting -> runnable              ready(), by whoever wakes it
//   running -> blocking -> running   blocking() (the G stays on its M)
//   running -> dead -> free          exit (after the switch)
enum class GState : std::uint8_t { free, runnable, running, waiting, blocking, dead };
const char* to_string(GState s) noexcept;

struct FlsTable;

}  // namespace detail

// Laid out by use: the first two cache lines hold all that spawn, run, park
// and exit touch, a small callable included, and a G starts on a line. In a
// spawn-heavy program one P spawns and another runs the fiber, so each of
// these lines crosses between cores twice per fiber: every extra line was a
// cache miss per spawn. The third holds what changes rarely (the name is
// written only when it changes), the rest is for sanitizers, free lists,
// eviction and dumps.
class alignas(64) Fiber {
 public:
  // Written only by the M running the fiber, or by the M that switched away
  // from it (after the switch); the run queues' release/acquire edges order
  // those writes with the next M's reads. Atomic (relaxed) only because
  // prefetch_queued reads it as a hint for a queued fiber that another P
  // may steal and run meanwhile.
  std::atomic<detail::bctx::fcontext_t> ctx{nullptr};
  void (*invoke)(void*) = nullptr;  // runs the callable
  void (*destroy)(void*) = nullptr;
  void* fn = nullptr;  // the callable: in inline_fn, or near the top of `stack`

  // Intrusive link for the global queue and free lists; owned by whoever
  // holds the G in that structure (under its lock).
  Fiber* schedlink = nullptr;

  // Read by other threads (dumps, stats, sysmon), hence atomics; relaxed,
  // since they only describe the fiber and publish nothing.
  std::atomic<std::uint64_t> id{0};
  std::uint32_t stack_size = 0;  // what the fiber's stack is to be
  std::atomic<detail::GState> state{detail::GState::free};
  std::atomic<WaitReason> reason{WaitReason::none};
  bool started = false;
  bool unwinding = false;        // shutdown: the next resume throws Unwind
  bool evictable_stack = false;  // SpawnOptions::evictable_stack
  bool has_fls = false;          // fls is set: an exit need not read its line

  // A callable this small lives here, so that a fiber owns no stack until
  // it first runs (stack_pool.hpp).
  static constexpr std::size_t kInlineAlign = 16;
  alignas(kInlineAlign) std::array<std::byte, 32> inline_fn;
  detail::Stack stack;  // from the first run (or the spawn) to the exit
  // Who owns the stack's bytes (evict.hpp): the park generation and a
  // StackState. The protocol and its memory orders are in evict.hpp.
  std::atomic<std::uint64_t> stack_word{0};

  std::array<std::atomic<char>, 32> name{};  // relaxed, like state
  detail::FlsTable* fls = nullptr;

  // Cold from here.
  detail::SanitizerStack san;
  // The global free list holds batches: in a batch's first G, the next
  // batch and this one's length; owned like schedlink.
  Fiber* next_batch = nullptr;
  int batch_len = 0;
  // The evicted stack; written by the evictor while the word says
  // `evicting`, read and cleared by the M that restores it after an acquire
  // load of `evicted` (evict.cpp).
  detail::StackCopy evicted;
  // sysmon only: the word seen at this G's last sweep visit, and when.
  std::uint64_t sweep_seen = 0;
  std::int64_t sweep_seen_when = 0;
  // Every G ever made, newest first; written once before the G is published
  // under the allocator's lock, immutable after: dumps walk it lock-free.
  Fiber* allg_next = nullptr;

  void set_name(std::string_view n) noexcept;
  // Copies the name into out (NUL-terminated); safe from any thread.
  void copy_name(char (&out)[32]) const noexcept;
};

namespace detail {
using G = ::spindle::Fiber;

// The last fiber of a schedlink chain.
inline G* last_of(G* g) {
  while (g->schedlink) g = g->schedlink;
  return g;
}

// Thrown into a parked fiber to unwind its stack when the runtime shuts
// down. Not a std::exception, so `catch (const std::exception&)` lets it
// pass; `catch (...)` without a rethrow breaks shutdown (documented).
struct Unwind {};
}  // namespace detail
}  // namespace spindle
