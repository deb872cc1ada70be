#include "globalq.hpp"

#include <algorithm>
#include <new>

namespace spindle::detail {

GlobalQueue::~GlobalQueue() {
  while (Batch* b = head_) {
    head_ = b->next;
    ::operator delete(b);
  }
}

GlobalQueue::Batch* GlobalQueue::make(std::uint32_t n) noexcept {
  auto* b = static_cast<Batch*>(::operator new(sizeof(Batch) + n * sizeof(G*)));
  b->next = nullptr;
  b->head = 0;
  b->n = n;
  return b;
}

void GlobalQueue::link(Batch* b) noexcept {
  std::lock_guard lock(mu_);
  if (tail_)
    tail_->next = b;
  else
    head_ = b;
  tail_ = b;
  size_.store(size_.load(std::memory_order_relaxed) + b->n, std::memory_order_relaxed);
}

void GlobalQueue::put(std::span<G* const> gs) noexcept {
  if (gs.empty()) return;
  Batch* b = make(static_cast<std::uint32_t>(gs.size()));
  std::copy(gs.begin(), gs.end(), b->gs());
  link(b);
}

void GlobalQueue::put_chain(G* first) noexcept {
  std::uint32_t n = 0;
  for (G* g = first; g; g = g->schedlink) ++n;
  if (n == 0) return;
  Batch* b = make(n);
  G** out = b->gs();
  for (G* g = first; g;) {
    G* next = g->schedlink;
    g->schedlink = nullptr;
    *out++ = g;
    g = next;
  }
  link(b);
}

std::uint32_t GlobalQueue::get(std::span<G*> out) {
  if (empty() || out.empty()) return 0;
  Batch* emptied = nullptr;  // freed after the lock
  std::uint32_t got = 0;
  {
    std::lock_guard lock(mu_);
    while (head_ && got < out.size()) {
      Batch* b = head_;
      std::uint32_t take = std::min<std::uint32_t>(b->n - b->head, out.size() - got);
      std::copy_n(b->gs() + b->head, take, out.begin() + got);
      b->head += take;
      got += take;
      if (b->head < b->n) break;
      head_ = b->next;
      b->next = emptied;
      emptied = b;
    }
    if (!head_) tail_ = nullptr;
    size_.store(size_.load(std::memory_order_relaxed) - got, std::memory_order_relaxed);
  }
  while (emptied) {
    Batch* next = emptied->next;
    ::operator delete(emptied);
    emptied = next;
  }
  return got;
}

}  // namespace spindle::detail
