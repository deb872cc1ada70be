// What the stack tests (tests/scheduler/stack_test.cpp, evict_test.cpp)
// share: deep frames that really touch their pages, and the process's RSS.
#pragma once

#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <string>

namespace spindle::testing {

// Frames of ~1 KiB each that use their buffer, as real code does;
// volatile keeps them from being optimised away.
inline int recurse(int depth) {
  volatile char pad[1024];
  for (std::size_t i = 0; i < sizeof pad; i += 64) pad[i] = static_cast<char>(depth);
  return depth == 0 ? pad[0] : recurse(depth - 1) + pad[0];
}

// Spawns n fibers that park until released, each on a stack of its own;
// once all have started, calls while_parked(), then releases them and
// returns when all have finished.
template <class F>
void with_parked_fibers(int n, F while_parked) {
  WaitGroup gate, started, finished;
  gate.add(1);
  started.add(n);
  finished.add(n);
  for (int i = 0; i < n; ++i)
    go([&] {
      started.done();
      gate.wait();
      finished.done();  // gate must outlive every wait() on it
    });
  started.wait();
  while_parked();
  gate.done();
  finished.wait();
}

// Resident set size of this process, KiB (-1 if unreadable).
inline long rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

// The sanitizers' shadow memory changes RSS by megabytes: page releases
// are measured in the plain build.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kMeasuresRss = false;
#else
constexpr bool kMeasuresRss = true;
#endif

// Under ThreadSanitizer: it gives every fiber a thread trace and runs out
// of address space past ~8,000 of them (see kScale in child.hpp), and its
// runtime may be what lies below an overrun stack.
#if defined(__SANITIZE_THREAD__)
constexpr bool kUnderTsan = true;
#else
constexpr bool kUnderTsan = false;
#endif

}  // namespace spindle::testing
