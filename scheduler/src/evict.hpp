// Stack eviction: a fiber parked in an evictable wait (ParkStack::evictable,
// the netpoller's waits) for longer than Config::stack_evict_after gets the
// used part of its stack copied to the heap and its pages given back to the
// kernel; the M that next runs it copies it back first, to the same
// addresses. Design and trade-offs: scheduler/README.md, "Stack eviction".
//
// G::stack_word = (park generation << 3) | StackState. The generation is
// bumped by each evictable park, so a CAS that expects an earlier park's
// word fails (no ABA when a fiber is readied, runs and parks again before
// its first parking M got to publish `parked`).
//
//   active   -> parking   the fiber, in park(evictable), before switching
//                         (relaxed: it owns the word; the wake-up chain that
//                         later readies it orders the store for the resumer)
//   parking  -> parked    the parking M, once commit has returned (CAS,
//                         release: pairs with the evictor's acquire, which
//                         must see the saved context and the stack's bytes)
//   parking  -> active    the resumer, before running the fiber (CAS)
//   parked   -> active    the resumer (CAS; loses to the evictor's CAS)
//   parked   -> evicting  the evictor, sysmon (CAS, acquire)
//   evicting -> evicted   the evictor, copy made and pages dropped (release:
//                         pairs with the resumer's acquire, which must see
//                         G::evicted); -> parked again if malloc failed
//   evicted  -> active    the resumer, after copying the stack back (it
//                         alone may leave `evicted`)
//
// Who owns the stack's bytes: active: the fiber, or the M about to run it;
// parking: the parking M (commit reads its closure there); parked: nobody
// (the first CAS, resumer or evictor, takes them); evicting: the evictor
// (a resumer that finds it spins until `evicted`); evicted: the heap copy.
// A fiber that never parks evictably keeps the word at 0 (active, gen 0),
// so its resume costs one load.
#pragma once

#include <atomic>
#include <cstdint>

#include "g.hpp"

namespace spindle::detail {

enum StackState : std::uint64_t { kActive, kParking, kParked, kEvicting, kEvicted };
constexpr std::uint64_t kStackStateMask = 7;

// The fiber, in park(): returns the word it stored (the parking M's CAS
// expects it).
inline std::uint64_t begin_evictable_park(G* g) noexcept {
  std::uint64_t gen = (g->stack_word.load(std::memory_order_relaxed) | kStackStateMask) + 1;
  std::uint64_t word = gen | kParking;
  g->stack_word.store(word, std::memory_order_relaxed);
  return word;
}

// The parking M, after commit published g: from now on the evictor may
// take the stack, unless a resumer already took it back.
inline void publish_evictable(G* g, std::uint64_t parking) noexcept {
  g->stack_word.compare_exchange_strong(parking, (parking & ~kStackStateMask) | kParked,
                                        std::memory_order_release, std::memory_order_relaxed);
}

void reclaim_stack(G* g) noexcept;

// Before any M runs g: its stack must be present and nobody else's.
// Relaxed is enough to see `active`: the wake-up that made g runnable
// happens after g's last store to the word, and only a resumer writes
// `active`; reclaim_stack reloads with acquire.
inline void make_resident(G* g) noexcept {
  if ((g->stack_word.load(std::memory_order_relaxed) & kStackStateMask) != kActive)
    reclaim_stack(g);
}

// sysmon's clock hand over the all-G list (see evict.cpp for its rates).
class StackSweep {
 public:
  void run(std::int64_t now) noexcept;

 private:
  G* hand_ = nullptr;  // next G to visit; nullptr between passes
  std::int64_t next_round_ = 0;
  std::int64_t pass_start_ = 0;
};

}  // namespace spindle::detail
