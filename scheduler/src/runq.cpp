#include "runq.hpp"

#include <cassert>
#include <chrono>
#include <thread>

namespace spindle::detail {

namespace {
constexpr auto relaxed = std::memory_order_relaxed;
constexpr auto acquire = std::memory_order_acquire;
constexpr auto release = std::memory_order_release;
constexpr auto acq_rel = std::memory_order_acq_rel;

// How long a thief leaves a running P to pick up its own runnext: Go's 3 us
// (runqgrab), ~50x a synchronous channel hand-off. Linux's default 50 us
// timer slack stretches the sleep to ~60-80 us, as it does Go's usleep(3).
constexpr std::chrono::microseconds kRunnextGrace{3};
}  // namespace

LocalQueue::LocalQueue(std::uint32_t slots)
    : mask_(slots - 1),
      ring_(std::make_unique<std::atomic<G*>[]>(slots)),
      spill_(std::make_unique<G*[]>(slots / 2 + 1)) {
  assert(slots >= 2 && (slots & (slots - 1)) == 0);
}

std::span<G* const> LocalQueue::put(G* g, bool next) {
  if (next) {
    // acq_rel: releases g's state to a thief that takes runnext, acquires the
    // previous occupant's (published by our own earlier exchange).
    G* old = runnext_.exchange(g, acq_rel);
    if (!old) return {};
    g = old;
  }
  for (;;) {
    std::uint32_t h = head_.load(acquire);  // pairs with consumers' CAS on head
    std::uint32_t t = tail_.load(relaxed);  // only we write it
    if (t - h <= mask_) {
      ring_[t & mask_].store(g, relaxed);
      tail_.store(t + 1, release);  // publishes the slot to consumers
      return {};
    }
    if (std::uint32_t n = overflow(g, h, t)) return {spill_.get(), n};
  }
}

G* LocalQueue::put_chain(G* list) {
  std::uint32_t h = head_.load(acquire);  // consumers only make room: a stale h is safe
  std::uint32_t t = tail_.load(relaxed);
  for (; list && t - h <= mask_; ++t) {
    G* next = list->schedlink;
    list->schedlink = nullptr;
    ring_[t & mask_].store(list, relaxed);
    list = next;
  }
  tail_.store(t, release);  // publishes the slots to consumers
  return list;
}

// Full queue: move half of it, plus g, out to spill_ for the global queue,
// so the next puts are cheap again (Go's runqputslow); returns how many, or
// 0 if a thief got there first. Pointers only: the Gs were written on this
// core, and the core that takes them should be the first to touch them since.
std::uint32_t LocalQueue::overflow(G* g, std::uint32_t h, std::uint32_t t) {
  std::uint32_t half = (t - h) / 2;
  // Copy, then claim: a thief may take these first, and then the CAS fails
  // and the copy is dropped (as in steal_from). Only we write ring slots.
  for (std::uint32_t i = 0; i < half; ++i) spill_[i] = ring_[(h + i) & mask_].load(relaxed);
  if (!head_.compare_exchange_strong(h, h + half, acq_rel)) return 0;  // a thief won: retry
  spill_[half] = g;
  return half + 1;
}

G* LocalQueue::take_next() {
  G* next = runnext_.load(relaxed);
  if (next && runnext_.compare_exchange_strong(next, nullptr, acq_rel)) return next;
  return nullptr;
}

G* LocalQueue::take_head() {
  for (;;) {
    std::uint32_t h = head_.load(acquire);
    std::uint32_t t = tail_.load(relaxed);
    if (t == h) return nullptr;
    G* g = ring_[h & mask_].load(relaxed);
    if (head_.compare_exchange_weak(h, h + 1, release, relaxed)) return g;
  }
}

std::span<G* const> LocalQueue::demote_next() {
  if (G* g = take_next()) return put(g, false);
  return {};
}

G* LocalQueue::get(bool* inherit, bool ring_first) {
  *inherit = false;
  if (ring_first)
    if (G* g = take_head()) return g;
  if (G* g = take_next()) {
    *inherit = true;
    return g;
  }
  return take_head();
}

// Copies half of victim's ring into ours just past our tail: we are this
// queue's owner, and the copied slots stay unpublished until we move tail.
G* LocalQueue::steal_from(LocalQueue& victim, bool steal_next, bool victim_running) {
  std::uint32_t t = tail_.load(relaxed);
  // The copy below lands past our tail and would overwrite queued fibers.
  // (Only we add, so a queue seen empty here stays so; a thief emptying it
  // meanwhile only hides a caller's bug.)
  assert(head_.load(acquire) == t && "steal_from: the thief's queue must be empty");
  std::uint32_t n = 0;
  for (;;) {
    std::uint32_t h = victim.head_.load(acquire);
    std::uint32_t vt = victim.tail_.load(acquire);  // pairs with the victim's release of tail
    n = vt - h;
    n -= n / 2;
    if (n == 0) {
      if (!steal_next) return nullptr;
      G* next = victim.runnext_.load(acquire);
      if (!next) return nullptr;
      // Go's runqgrab: a running fiber that readies another and then blocks
      // (a channel hand-off) leaves it in runnext for a moment, and its P is
      // about to run it. Taking it then migrates the pair across threads on
      // every round trip and sends the owner's M to sleep; so give a running
      // victim time first. Sleeping, holding no lock, not spinning: a 3 us
      // pause-loop cut pingpong2's steals only from ~50K to ~22K per 1M
      // round trips, the sleep to ~450 (it also frees the core for the owner).
      if (victim_running) std::this_thread::sleep_for(kRunnextGrace);
      if (victim.runnext_.compare_exchange_strong(next, nullptr, acq_rel)) return next;
      continue;  // the owner took it, maybe queueing more: look again
    }
    if (n > (victim.mask_ + 1) / 2) continue;  // h and vt read at different times
    for (std::uint32_t i = 0; i < n; ++i)
      ring_[(t + i) & mask_].store(victim.ring_[(h + i) & victim.mask_].load(relaxed), relaxed);
    if (victim.head_.compare_exchange_strong(h, h + n, acq_rel)) break;
  }
  --n;
  G* g = ring_[(t + n) & mask_].load(relaxed);
  if (n > 0) tail_.store(t + n, release);
  return g;
}

std::uint32_t LocalQueue::size() const {
  for (;;) {
    std::uint32_t h = head_.load(acquire);
    std::uint32_t t = tail_.load(acquire);
    bool next = runnext_.load(acquire) != nullptr;
    if (t == tail_.load(acquire)) return (t - h) + (next ? 1 : 0);
  }
}

}  // namespace spindle::detail
