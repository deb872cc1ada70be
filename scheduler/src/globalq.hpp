// The global run queue: fibers readied from outside any P, overflow from
// full local queues, and the fairness source every P looks at now and then.
// A mutex guards the list; `size_` mirrors its length so that "is there
// anything?" is one load. The mutex's acquire/release orders the fibers'
// state between the putter and the getter.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "g.hpp"

namespace spindle::detail {

class GlobalQueue {
 public:
  // `first` is a schedlink-chained batch of n fibers ending at last. It is
  // queued whole, so neither side walks fibers under the lock: a spawner's
  // overflow is ~129 fibers that the other core has never seen, and a walk
  // of their cold lines under the lock kept the spawner waiting on it.
  void put_batch(G* first, G* last, std::uint32_t n) {
    last->schedlink = nullptr;
    first->next_batch = nullptr;
    first->batch_len = static_cast<int>(n);
    std::lock_guard lock(mu_);
    if (tail_)
      tail_->next_batch = first;
    else
      head_ = first;
    tail_ = first;
    size_.store(size_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void put(G* g) { put_batch(g, g, 1); }

  // Takes whole batches in order, up to max fibers but at least one batch,
  // or a single fiber when max is 1 (the fairness check). Returns a list of
  // batches linked by next_batch, each chained by schedlink (count in *n);
  // nullptr when empty.
  G* get_batches(std::uint32_t max, std::uint32_t* n) {
    if (empty()) return nullptr;
    std::lock_guard lock(mu_);
    G* first = head_;
    if (!first) return nullptr;
    if (max == 1 && first->batch_len > 1) return take_one(n);
    G* last = first;
    std::uint32_t take = static_cast<std::uint32_t>(first->batch_len);
    while (last->next_batch && take + last->next_batch->batch_len <= max) {
      last = last->next_batch;
      take += static_cast<std::uint32_t>(last->batch_len);
    }
    head_ = last->next_batch;
    if (!head_) tail_ = nullptr;
    last->next_batch = nullptr;
    size_.store(size_.load(std::memory_order_relaxed) - take, std::memory_order_relaxed);
    *n = take;
    return first;
  }

  // Relaxed: a hint. Callers that must not miss work (the idle protocol)
  // re-check after a full fence; see proc.cpp.
  bool empty() const { return size_.load(std::memory_order_relaxed) == 0; }
  std::uint32_t size() const { return size_.load(std::memory_order_relaxed); }

 private:
  // The head batch's first fiber; the rest of that batch becomes the head.
  G* take_one(std::uint32_t* n) {
    G* first = head_;
    G* rest = first->schedlink;
    rest->next_batch = first->next_batch;
    rest->batch_len = first->batch_len - 1;
    head_ = rest;
    if (tail_ == first) tail_ = rest;
    first->schedlink = nullptr;
    first->next_batch = nullptr;
    size_.store(size_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    *n = 1;
    return first;
  }

  std::mutex mu_;
  G* head_ = nullptr;                   // first batch; guarded by mu_
  G* tail_ = nullptr;                   // last batch; guarded by mu_
  std::atomic<std::uint32_t> size_{0};  // fibers; written under mu_
};

}  // namespace spindle::detail
