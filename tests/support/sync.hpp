// Helpers for the sync-type tests (mutex, sync, channel, select, context).
#pragma once

#include <spindle/runtime.hpp>
#include <spindle/stats.hpp>
#include <spindle/waitgroup.hpp>

#include <string>
#include <string_view>

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

// Yields until n fibers are parked with `reason` ("chan send", "chan
// receive", "select"). A fiber is listed as parked once it switched away; its
// op is in the channel's queue, or the channel's lock is still held by its
// park commit until it is, so whatever the test does next finds it queued.
inline void await_parked(std::string_view reason, int n) {
  const std::string tag = "[waiting: " + std::string(reason) + "]";
  for (;;) {
    std::string dump = dump_fibers();
    int count = 0;
    for (auto at = dump.find(tag); at != std::string::npos; at = dump.find(tag, at + 1)) ++count;
    if (count >= n) return;
    yield();
  }
}

// Fibers alive at once in the big tests: ThreadSanitizer counts each as a
// thread (child.hpp).
constexpr int kManyFibers = kScale > 1 ? 100 : 1000;

}  // namespace spindle::testing
