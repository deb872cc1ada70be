// Helpers for the sync-type tests (mutex_test.cpp, sync_test.cpp).
#pragma once

#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include "child.hpp"

namespace spindle::testing {

inline Config procs(int n) {
  Config cfg;
  cfg.procs = n;
  return cfg;
}

// Runs body(0) .. body(n-1) in n fibers and waits for them all. A body that
// locks something on the caller's frame must unlock it before it returns:
// the frame may be gone right after.
template <class F>
void fibers(int n, F body) {
  WaitGroup wg;
  wg.add(n);
  for (int i = 0; i < n; ++i) {
    go([&, i] {
      body(i);
      wg.done();
    });
  }
  wg.wait();
}

// Fibers alive at once in the big tests: ThreadSanitizer counts each as a
// thread (child.hpp).
constexpr int kManyFibers = kScale > 1 ? 100 : 1000;

}  // namespace spindle::testing
