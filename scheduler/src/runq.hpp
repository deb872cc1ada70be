// A P's local run queue: a bounded ring with one producer (the P's owner)
// and many consumers (the owner and thieves), plus the runnext slot.
// The algorithm is Go's runqput/runqget/runqgrab:
//  - `tail` is written only by the owner; its release store publishes the
//    slot written before it. Consumers load it with acquire.
//  - `head` is advanced by CAS by any consumer; the release CAS tells the
//    owner (acquire load in put) that the slots before it are free again.
//  - Slots are atomics read relaxed: a thief may read a slot the owner is
//    overwriting, but its CAS on head then fails and the value is dropped.
//  - runnext is stealable, but only on a thief's last pass (LESSONS.md:
//    an unstealable LIFO slot starves), and from a running victim only
//    after a short pause (see steal_from in runq.cpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "g.hpp"

namespace spindle::detail {

class LocalQueue {
 public:
  explicit LocalQueue(std::uint32_t slots);

  // Owner only. With `next`, g goes to runnext and any fiber there moves to
  // the tail. Returns the fibers that did not fit (half the ring and the
  // newcomer), which the caller must queue globally before its next call;
  // empty normally.
  std::span<G* const> put(G* g, bool next);
  // Owner only: queues as many of a schedlink chain as fit, in order, and
  // returns the rest (Go's runqputbatch). Unlike put's overflow, which
  // moves the ring's oldest half out, the fibers already queued keep their
  // turn ahead of the newcomers.
  G* put_chain(G* list);
  // Owner only. *inherit is set when g comes from runnext (same time slice).
  // ring_first: the slice is over, so the ring goes before runnext; else two
  // fibers handing off through runnext could starve the ring forever.
  G* get(bool* inherit, bool ring_first = false);
  // Owner only: moves the runnext fiber to the ring's tail (its slice is
  // over: it keeps its turn, not its priority). Returns as put does.
  std::span<G* const> demote_next();
  // Thief: moves half of victim's fibers into this (empty) queue and
  // returns one of them to run. steal_next: may take victim's runnext.
  // victim_running: victim's P is running a fiber, so its runnext is
  // probably about to run there; wait ~3 us before taking it.
  G* steal_from(LocalQueue& victim, bool steal_next, bool victim_running = false);

  // Owner only: the fiber `ahead` places behind the ring's head, or a stale
  // or null pointer (a thief may have taken it; slots past the tail hold
  // old values). For prefetching only.
  G* peek(std::uint32_t ahead) const {
    return ring_[(head_.load(std::memory_order_relaxed) + ahead) & mask_].load(
        std::memory_order_relaxed);
  }

  std::uint32_t size() const;  // approximate, from any thread
  bool empty() const { return size() == 0; }
  std::uint32_t capacity() const { return mask_ + 1; }

 private:
  G* take_next();
  G* take_head();
  std::uint32_t overflow(G* g, std::uint32_t h, std::uint32_t t);

  std::uint32_t mask_;
  std::unique_ptr<std::atomic<G*>[]> ring_;
  // Owner only: what the last put could not keep.
  std::unique_ptr<G*[]> spill_;
  alignas(64) std::atomic<std::uint32_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  std::atomic<G*> runnext_{nullptr};
};

}  // namespace spindle::detail
