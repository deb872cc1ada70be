#include "timers.hpp"

#include <chrono>
#include <utility>

namespace spindle::detail {}  // namespace spindle::detail

namespace spindle {
std::int64_t now_ns() noexcept {
  return to_ns(std::chrono::steady_clock::now());
}
bool stop_timer(Timer* t) noexcept {
  return detail::TimerHeap::cancel(t);
}
}  // namespace spindle

namespace spindle::detail {

void TimerHeap::place(std::size_t i, Timer* t) {
  heap_[i] = t;
  t->index = i;
}

void TimerHeap::sift_up(std::size_t i) {
  Timer* t = heap_[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (heap_[parent]->when <= t->when) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, t);
}

void TimerHeap::sift_down(std::size_t i) {
  Timer* t = heap_[i];
  std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_[child + 1]->when < heap_[child]->when) ++child;
    if (t->when <= heap_[child]->when) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, t);
}

void TimerHeap::update_next() {
  next_.store(heap_.empty() ? kNever : heap_[0]->when, std::memory_order_release);
  count_.store(static_cast<std::uint32_t>(heap_.size()), std::memory_order_relaxed);
}

bool TimerHeap::add(Timer* t) {
  std::lock_guard lock(mu_);
  t->heap.store(this, std::memory_order_relaxed);
  heap_.push_back(t);
  sift_up(heap_.size() - 1);
  update_next();
  return heap_[0] == t;
}

bool TimerHeap::remove_locked(Timer* t) {
  if (t->heap.load(std::memory_order_relaxed) != this) return false;
  std::size_t i = t->index;
  Timer* last = heap_.back();
  heap_.pop_back();
  if (last != t) {
    place(i, last);
    sift_up(i);
    sift_down(last->index);
  }
  t->heap.store(nullptr, std::memory_order_relaxed);
  update_next();
  return true;
}

bool TimerHeap::cancel(Timer* t) {
  // The heap pointer only changes under the owning heap's lock, so re-check
  // it once that lock is held.
  TimerHeap* h = t->heap.load(std::memory_order_acquire);
  if (!h) return false;
  if (h == dropped()) {  // clear() ran: it never fires (shutdown: one thread)
    t->heap.store(nullptr, std::memory_order_relaxed);
    return true;
  }
  std::lock_guard lock(h->mu_);
  return h->remove_locked(t);
}

int TimerHeap::run_expired(std::int64_t now) {
  int fired = 0;
  while (next() <= now) {
    Timer* t = nullptr;
    {
      std::lock_guard lock(mu_);
      if (heap_.empty() || heap_[0]->when > now) break;
      t = heap_[0];
      remove_locked(t);
    }
    t->fire(t);
    ++fired;
  }
  return fired;
}

namespace {
constinit TimerHeap dropped_marker;  // never holds a timer: its address marks one
}  // namespace

TimerHeap* TimerHeap::dropped() noexcept {
  return &dropped_marker;
}

void TimerHeap::clear() {
  std::lock_guard lock(mu_);
  for (Timer* t : heap_) t->heap.store(dropped(), std::memory_order_relaxed);
  heap_.clear();
  update_next();
}

}  // namespace spindle::detail
