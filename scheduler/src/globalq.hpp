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
  // `first` is a schedlink-chained batch of n fibers ending at last.
  void put_batch(G* first, G* last, std::uint32_t n) {
    last->schedlink = nullptr;
    std::lock_guard lock(mu_);
    if (tail_)
      tail_->schedlink = first;
    else
      head_ = first;
    tail_ = last;
    size_.store(size_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void put(G* g) { put_batch(g, g, 1); }

  // Takes up to max fibers, returns the first and chains the rest through
  // schedlink (count in *n). nullptr when empty.
  G* get_batch(std::uint32_t max, std::uint32_t* n) {
    if (empty()) return nullptr;
    std::lock_guard lock(mu_);
    std::uint32_t size = size_.load(std::memory_order_relaxed);
    std::uint32_t take = size < max ? size : max;
    if (take == 0) return nullptr;
    G* first = head_;
    G* last = first;
    for (std::uint32_t i = 1; i < take; ++i) last = last->schedlink;
    head_ = last->schedlink;
    if (!head_) tail_ = nullptr;
    last->schedlink = nullptr;
    size_.store(size - take, std::memory_order_relaxed);
    *n = take;
    return first;
  }

  // Relaxed: a hint. Callers that must not miss work (the idle protocol)
  // re-check after a full fence; see proc.cpp.
  bool empty() const { return size_.load(std::memory_order_relaxed) == 0; }
  std::uint32_t size() const { return size_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  G* head_ = nullptr;  // guarded by mu_
  G* tail_ = nullptr;  // guarded by mu_
  std::atomic<std::uint32_t> size_{0};
};

}  // namespace spindle::detail
