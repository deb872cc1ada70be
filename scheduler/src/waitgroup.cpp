#include "spindle/waitgroup.hpp"

#include <stdexcept>

namespace spindle {

namespace {
std::int32_t counter(std::uint64_t state) {
  return static_cast<std::int32_t>(state >> 32);
}
std::uint32_t waiters(std::uint64_t state) {
  return static_cast<std::uint32_t>(state);
}
}  // namespace

void WaitGroup::add(long n) {
  std::uint64_t delta = static_cast<std::uint64_t>(n) << 32;
  std::uint64_t state = state_.fetch_add(delta, std::memory_order_acq_rel) + delta;
  if (counter(state) < 0) {
    state_.fetch_sub(delta, std::memory_order_relaxed);
    throw std::logic_error("spindle::WaitGroup: negative counter");
  }
  if (counter(state) > 0 || waiters(state) == 0) return;
  // Zero with registered waiters: none can return before its token, so
  // this object is alive until release() has handed them all out.
  state_.store(0, std::memory_order_relaxed);
  sema_.release(waiters(state));
}

void WaitGroup::wait() {
  std::uint64_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if (counter(state) == 0) return;
    if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel,
                                     std::memory_order_acquire))
      break;
  }
  sema_.acquire(1, WaitReason::waitgroup);
}

}  // namespace spindle
