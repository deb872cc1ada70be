#include "stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>

namespace spindle::detail {
namespace {

// The top page of every stack holds the fiber's callable and first frames.
// Its lowest 256 bytes carry this pattern; a fiber whose frames went deeper
// almost surely wrote into them (frames are contiguous), which is how
// stack_trim() knows, without a syscall, whether there is anything to trim.
// A heuristic: a frame whose unwritten locals span all 256 bytes slips past,
// and its stack keeps its pages until it is unmapped.
constexpr std::uint64_t kDeepMarker = 0x21454c444e495053;  // "SPINDLE!"
constexpr int kMarkerWords = 32;
// Bytes at the bottom of an unguarded stack that must stay zero.
constexpr std::size_t kCanaryBytes = 64;

// Counters only; relaxed is enough (no data is published through them).
std::atomic<std::uint64_t> g_guarded{0};
std::atomic<std::uint64_t> g_unguarded{0};
std::atomic<std::uint64_t> g_mapped{0};  // stacks mapped since the process started

// Set by stack_configure() at each run(); relaxed: written before the
// runtime's threads start.
std::atomic<bool> g_force_mprotect{false};
std::atomic<std::uint64_t> g_budget{65530 / 4};

std::uint64_t* marker_of(const Stack& s) {
  return reinterpret_cast<std::uint64_t*>(s.hi() - page_size());
}

constexpr std::array<std::uint64_t, kMarkerWords> kMarker = [] {
  std::array<std::uint64_t, kMarkerWords> m{};
  m.fill(kDeepMarker);
  return m;
}();

void write_marker(const Stack& s) {
  std::memcpy(marker_of(s), kMarker.data(), sizeof kMarker);
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux 6.13 uapi; older headers lack it
#endif

// Probed once: does this kernel install guard pages without a VMA split?
bool light_guards() {
  if (g_force_mprotect.load(std::memory_order_relaxed)) return false;
  static const bool ok = [] {
    std::size_t ps = page_size();
    void* p = mmap(nullptr, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    bool works = madvise(p, ps, MADV_GUARD_INSTALL) == 0;
    munmap(p, 2 * ps);
    return works;
  }();
  return ok;
}

bool claim_guard() {
  if (light_guards()) {
    g_guarded.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  std::uint64_t n = g_guarded.load(std::memory_order_relaxed);
  while (n < g_budget.load(std::memory_order_relaxed)) {
    if (g_guarded.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

// A word copy ASan does not check: a parked fiber's frames hold poisoned
// redzones, and the shadow stays as it was while the bytes are away. The
// volatile source keeps the compiler from turning the loop into memcpy,
// which ASan intercepts. Both ends are 8-byte aligned, len a multiple of 8.
[[gnu::no_sanitize_address]] void copy_words(void* to, const void* from, std::size_t len) {
  auto* d = static_cast<std::uint64_t*>(to);
  auto* s = static_cast<const volatile std::uint64_t*>(from);
  for (std::size_t i = 0; i < len / sizeof(std::uint64_t); ++i) d[i] = s[i];
}

}  // namespace

void stack_configure() {
  std::uint64_t max_maps = 65530;
  std::ifstream("/proc/sys/vm/max_map_count") >> max_maps;
  std::uint64_t budget = max_maps / 4;  // two map entries per guarded stack: half the table
  const char* env = std::getenv("SPINDLE_STACK_GUARDS");
  bool force = env && std::strncmp(env, "mprotect", 8) == 0;
  if (force && env[8] == ':') budget = std::strtoull(env + 9, nullptr, 10);
  g_force_mprotect.store(force, std::memory_order_relaxed);
  g_budget.store(budget, std::memory_order_relaxed);
}

std::size_t page_size() noexcept {
  static const std::size_t ps = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return ps;
}

std::size_t round_stack_size(std::size_t requested) noexcept {
  std::size_t ps = page_size();
  std::size_t size = std::max(requested, 4 * ps);
  return (size + ps - 1) / ps * ps;
}

Stack stack_allocate(std::size_t size) {
  size = round_stack_size(size);
  bool guarded = claim_guard();
  std::size_t guard = guarded ? page_size() : 0;
  void* base = mmap(nullptr, size + guard, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    if (guarded) g_guarded.fetch_sub(1, std::memory_order_relaxed);
    throw std::bad_alloc();
  }
  if (guarded && (light_guards() ? madvise(base, guard, MADV_GUARD_INSTALL)
                                 : mprotect(base, guard, PROT_NONE)) != 0) {
    munmap(base, size + guard);
    g_guarded.fetch_sub(1, std::memory_order_relaxed);
    throw std::bad_alloc();
  }
  if (!guarded) g_unguarded.fetch_add(1, std::memory_order_relaxed);
  g_mapped.fetch_add(1, std::memory_order_relaxed);
  Stack s{static_cast<char*>(base) + guard, size, guarded};
  write_marker(s);
  return s;
}

void stack_release(Stack& s) noexcept {
  if (!s) return;
  std::size_t guard = s.guarded ? page_size() : 0;
  munmap(s.lo - guard, s.size + guard);
  (s.guarded ? g_guarded : g_unguarded).fetch_sub(1, std::memory_order_relaxed);
  s = Stack{};
}

void stack_trim(const Stack& s) noexcept {
  // memcmp, not a loop: this runs at every fiber exit.
  if (std::memcmp(marker_of(s), kMarker.data(), sizeof kMarker) == 0) return;
  madvise(s.lo, s.size - page_size(), MADV_DONTNEED);
  write_marker(s);
}

bool stack_evict(const Stack& s, const char* sp, StackCopy& out) noexcept {
  // From sp up, without the x86-64 red zone below it: sp is saved inside
  // jump_fcontext (assembly that keeps nothing below sp), and its caller's
  // red zone died when that caller made the call, since only a leaf
  // function may keep data there. 128 bytes less per idle connection.
  auto at = reinterpret_cast<std::uintptr_t>(sp);
  at = std::max(at, reinterpret_cast<std::uintptr_t>(s.lo)) & ~std::uintptr_t{7};
  char* from = reinterpret_cast<char*>(at);
  auto len = static_cast<std::size_t>(s.hi() - from);
  void* bytes = std::malloc(len);
  if (!bytes) return false;
  copy_words(bytes, from, len);
  // The whole stack, not just the copied part: the pages of an earlier,
  // deeper call are as idle as the rest. The canary reads zero afterwards.
  madvise(s.lo, s.size, MADV_DONTNEED);
  out = {from, len, bytes};
  return true;
}

[[gnu::no_sanitize_address]] void stack_restore(const Stack& s, StackCopy& copy) noexcept {
  // The pages come back zeroed. The marker words below the copy are written
  // again (the deeper pages are gone: the stack is shallow once more); those
  // inside it come back as they were.
  std::uint64_t* m = marker_of(s);
  auto* stop = std::min(m + kMarkerWords, reinterpret_cast<std::uint64_t*>(copy.from));
  for (volatile std::uint64_t* w = m; w < stop; ++w) *w = kDeepMarker;
  copy_words(copy.from, copy.bytes, copy.len);
  std::free(copy.bytes);
  copy = {};
}

bool stack_intact(const Stack& s) noexcept {
  if (s.guarded) return true;
  const char* lo = s.lo;
  return std::all_of(lo, lo + kCanaryBytes, [](char c) { return c == 0; });
}

std::uint64_t guarded_stack_count() noexcept {
  return g_guarded.load(std::memory_order_relaxed);
}
std::uint64_t mapped_stack_count() noexcept {
  return g_mapped.load(std::memory_order_relaxed);
}
std::uint64_t unguarded_stack_count() noexcept {
  return g_unguarded.load(std::memory_order_relaxed);
}

}  // namespace spindle::detail
