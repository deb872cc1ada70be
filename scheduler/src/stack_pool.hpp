// Pooled fiber stacks, apart from the Gs that use them.
//
// A fiber gets its stack when it first runs, from the cache of the P that
// runs it, and gives it back there when it exits (a callable too large to
// live in the G gets its stack at spawn instead, from the spawner's P).
// So a P that runs fiber after fiber reuses the same few stacks, warm in
// its core's cache, wherever the fibers were spawned; and fibers queued but
// not yet started hold no stack at all: a spawn burst that outruns the
// other Ps costs Gs (one heap allocation per 256) rather than an mmap, a
// guard page and a page fault per queued fiber.
//
// Only stacks of the runtime's default size are pooled; others are mapped
// for their fiber and unmapped after it.
//
// Two levels, like the Gs: a P's own cache (owner only, no lock) and the
// global pool (mu_), between which stacks move kBatch at a time.
//
// The kHot stacks last put in a P's cache keep the pages their fibers
// touched; deeper in the cache and in the pool, a stack whose fiber went
// below its top page has given those pages back (stack_trim). An HTTP
// connection's fiber ends whenever the connection goes idle and a new one
// starts on the next request: trimming at every exit cost a JSON request
// an madvise and a page fault. The pool
// keeps kKeep stacks for good; sysmon unmaps the rest once they have lain
// there unused through a whole period (the pool's low-water mark), a slice
// per round. Never a spawn or an exit: an munmap costs ~4 us.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>

#include "stack.hpp"

namespace spindle::detail {

class StackCache {
 public:
  static constexpr int kSlots = 64;

 private:
  friend class StackPool;
  std::array<Stack, kSlots> slots_{};
  int n_ = 0;
};

class StackPool {
 public:
  explicit StackPool(std::size_t default_size) : size_(default_size) {}

  // A stack of `size` bytes (rounded), trimmed to its top page. cache: the
  // caller's P's, or null without a P. Throws std::bad_alloc when the
  // kernel refuses a new mapping.
  Stack get(StackCache* cache, std::size_t size);
  // Takes s back (its fiber is dead) and gives any deep pages back.
  void put(StackCache* cache, Stack s) noexcept;

  // sysmon, every round.
  void release_idle(std::int64_t now) noexcept;
  // Shutdown: unmap what a P's cache, then the pool, hold.
  void release(StackCache& cache) noexcept;
  void release_pool() noexcept;

 private:
  void refill(StackCache& cache) noexcept;
  void spill(StackCache& cache) noexcept;
  bool take_idle(Stack* out) noexcept;

  static constexpr int kBatch = StackCache::kSlots / 2;
  static constexpr int kHot = 8;  // at most 8 x 64 KiB kept per P
  static constexpr std::size_t kKeep = 4096;

  const std::size_t size_;
  std::mutex mu_;
  std::deque<Stack> pool_;     // newest at the back; guarded by mu_
  std::size_t low_water_ = 0;  // least pool_.size() this period; guarded by mu_
  // sysmon's only: when the period ends, and how many idle stacks are
  // still to be unmapped.
  std::int64_t next_release_ = 0;
  std::int64_t to_release_ = 0;
};

}  // namespace spindle::detail
