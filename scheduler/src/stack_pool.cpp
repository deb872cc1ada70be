#include "stack_pool.hpp"

#include <algorithm>

namespace spindle::detail {

namespace {
// Idle stacks are unmapped after a period unused, at most a slice per
// sysmon round (~1 ms of munmap) so sysmon keeps its pace.
constexpr std::int64_t kReleasePeriod = 1'000'000'000;  // ns
constexpr int kReleaseSlice = 256;
}  // namespace

Stack StackPool::get(StackCache* cache, std::size_t size) {
  if (size != size_) return stack_allocate(size);
  if (cache) {
    if (cache->n_ == 0) refill(*cache);
    if (cache->n_ > 0) return cache->slots_[--cache->n_];
  } else {
    std::lock_guard lock(mu_);
    if (!pool_.empty()) {
      Stack s = pool_.back();
      pool_.pop_back();
      low_water_ = std::min(low_water_, pool_.size());
      return s;
    }
  }
  return stack_allocate(size);
}

void StackPool::put(StackCache* cache, Stack s) noexcept {
  if (!s) return;
  if (s.size != size_) return stack_release(s);
  if (!cache) {
    stack_trim(s);
    std::lock_guard lock(mu_);
    pool_.push_back(s);
    return;
  }
  if (cache->n_ == StackCache::kSlots) spill(*cache);
  // The stack this push sends below the hot ones gives its deep pages back.
  if (cache->n_ >= kHot) stack_trim(cache->slots_[cache->n_ - kHot]);
  cache->slots_[cache->n_++] = s;
}

// The newest stacks of the pool (the warmest), up to a batch.
void StackPool::refill(StackCache& cache) noexcept {
  std::lock_guard lock(mu_);
  while (cache.n_ < kBatch && !pool_.empty()) {
    cache.slots_[cache.n_++] = pool_.back();
    pool_.pop_back();
  }
  low_water_ = std::min(low_water_, pool_.size());
}

// The cache's oldest half, so its warmest stay.
void StackPool::spill(StackCache& cache) noexcept {
  std::lock_guard lock(mu_);
  pool_.insert(pool_.end(), cache.slots_.begin(), cache.slots_.begin() + kBatch);
  std::copy(cache.slots_.begin() + kBatch, cache.slots_.begin() + cache.n_, cache.slots_.begin());
  cache.n_ -= kBatch;
}

// The oldest stack if it is still one of the idle ones.
bool StackPool::take_idle(Stack* out) noexcept {
  std::lock_guard lock(mu_);
  auto excess = static_cast<std::int64_t>(pool_.size()) - static_cast<std::int64_t>(kKeep);
  to_release_ = std::min(to_release_, excess);
  if (to_release_ <= 0) return false;
  *out = pool_.front();
  pool_.pop_front();
  low_water_ = std::min(low_water_, pool_.size());
  --to_release_;
  return true;
}

void StackPool::release_idle(std::int64_t now) noexcept {
  if (now >= next_release_) {
    std::lock_guard lock(mu_);
    // The oldest low_water_ stacks were not handed out all period.
    to_release_ = static_cast<std::int64_t>(low_water_) - static_cast<std::int64_t>(kKeep);
    low_water_ = pool_.size();
    next_release_ = now + kReleasePeriod;
  }
  Stack s;
  for (int i = 0; i < kReleaseSlice && take_idle(&s); ++i) stack_release(s);
}

void StackPool::release(StackCache& cache) noexcept {
  while (cache.n_ > 0) stack_release(cache.slots_[--cache.n_]);
}

void StackPool::release_pool() noexcept {
  std::lock_guard lock(mu_);
  for (Stack& s : pool_) stack_release(s);
  pool_.clear();
}

}  // namespace spindle::detail
