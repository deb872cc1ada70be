// The global run queue: fibers readied from outside any P, overflow from
// full local queues, and the fairness source every P looks at now and then.
//
// It holds arrays of G pointers, not fibers linked through their Gs: in a
// spawn-heavy program one core queues the fibers and another takes them,
// and walking a chain of Gs the other core wrote was one cache miss after
// another, each waiting for the last (a pointer chase, ~13% of spawn+join).
// Copying pointers touches no G; the taker's prefetches (proc.cpp) then
// overlap the misses while the fibers run.
//
// A mutex guards the list of arrays; `size_` mirrors the number of fibers so
// that "is there anything?" is one load. The mutex's acquire/release orders
// the fibers' state between the putter and the getter. Arrays are malloc'ed
// per put (one per ~128 fibers on overflow) and freed by the getter that
// empties them, outside the lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>

#include "g.hpp"

namespace spindle::detail {

class GlobalQueue {
 public:
  GlobalQueue() = default;
  GlobalQueue(const GlobalQueue&) = delete;
  GlobalQueue& operator=(const GlobalQueue&) = delete;
  ~GlobalQueue();

  // Queue the fibers in order. Out of memory for the array terminates: no
  // caller could do better than lose the fibers.
  void put(std::span<G* const> gs) noexcept;
  void put(G* g) noexcept { put(std::span<G* const>(&g, 1)); }
  // A schedlink chain (a ready list), whose links it clears.
  void put_chain(G* first) noexcept;

  // Moves up to out.size() fibers, oldest first, into out; returns how many.
  std::uint32_t get(std::span<G*> out);

  // Relaxed: a hint. Callers that must not miss work (the idle protocol)
  // re-check after a full fence; see proc.cpp.
  bool empty() const { return size_.load(std::memory_order_relaxed) == 0; }
  std::uint32_t size() const { return size_.load(std::memory_order_relaxed); }

 private:
  struct Batch {
    Batch* next;
    std::uint32_t head;  // the next fiber to take
    std::uint32_t n;
    G** gs() { return reinterpret_cast<G**>(this + 1); }  // n of them follow
  };
  static Batch* make(std::uint32_t n) noexcept;
  void link(Batch* b) noexcept;

  std::mutex mu_;
  Batch* head_ = nullptr;               // guarded by mu_
  Batch* tail_ = nullptr;               // guarded by mu_
  std::atomic<std::uint32_t> size_{0};  // fibers; written under mu_
};

}  // namespace spindle::detail
