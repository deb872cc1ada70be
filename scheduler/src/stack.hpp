// Fiber stacks: mmap'ed, committed lazily by the kernel, one guard page below
// each while the mapping budget lasts.
//
// Guard pages and vm.max_map_count. Linux caps the entries of a process's
// memory map (vm.max_map_count, 65,530 by default), and an mprotect'ed
// guard page splits a mapping: two entries per stack, so about 30,000
// guarded fibers at most. Two strategies, chosen once at start-up:
//  1. Linux >= 6.13: MADV_GUARD_INSTALL marks the guard page inside the
//     stack's own mapping without splitting it, and adjacent stacks merge
//     into one entry. Every stack is guarded, a million fibers fit.
//  2. Older kernels: mprotect guards while a budget of a quarter of
//     max_map_count lasts; past it, stacks are mapped without a guard and
//     overflow is caught after the fact, at each switch away from the
//     fiber, by checking that the lowest bytes of the stack are untouched.
//     That costs one load per switch of such fibers and only detects an
//     overflow once it has happened, where a guard page stops the first
//     stray write. $SPINDLE_STACK_GUARDS=mprotect[:budget] forces this
//     strategy (tests use it on new kernels).
#pragma once

#include <cstddef>
#include <cstdint>

namespace spindle::detail {

struct Stack {
  char* lo = nullptr;    // lowest usable byte; the guard page (if any) is below
  std::size_t size = 0;  // usable bytes: the stack is [lo, lo + size)
  bool guarded = false;

  char* hi() const { return lo + size; }
  explicit operator bool() const { return lo != nullptr; }
};

// Reads vm.max_map_count and $SPINDLE_STACK_GUARDS; run() calls it first.
void stack_configure();
std::size_t page_size() noexcept;
std::size_t round_stack_size(std::size_t requested) noexcept;

// Throws std::bad_alloc when the kernel refuses the mapping.
Stack stack_allocate(std::size_t size);
void stack_release(Stack& s) noexcept;

// Called when a stack is pooled for reuse: if its fiber went deeper than the
// top page, gives the deeper pages back to the kernel (MADV_DONTNEED) so one
// burst of deep stacks does not pin memory.
void stack_trim(const Stack& s) noexcept;

// The live part of an evicted stack: [from, s.hi()) copied to `bytes`.
struct StackCopy {
  char* from = nullptr;
  std::size_t len = 0;
  void* bytes = nullptr;  // malloc'ed
};

// Stack eviction (evict.hpp). stack_evict copies [sp, hi) to the
// heap and gives every page of the stack back to the kernel; false (nothing
// done) if the heap refuses. stack_restore copies it back to the same
// addresses, frees the copy, and keeps the deep-stack marker and the
// canary valid. Neither is instrumented by ASan: a parked fiber's frames
// carry poisoned redzones that a copy legitimately reads and rewrites.
bool stack_evict(const Stack& s, const char* sp, StackCopy& out) noexcept;
void stack_restore(const Stack& s, StackCopy& copy) noexcept;

// False if an unguarded stack's lowest bytes were written (an overflow).
bool stack_intact(const Stack& s) noexcept;

std::uint64_t guarded_stack_count() noexcept;
std::uint64_t unguarded_stack_count() noexcept;
std::uint64_t mapped_stack_count() noexcept;  // ever, not live

}  // namespace spindle::detail
