// Shutdown and fatal errors: parked fibers are unwound when main returns;
// a stack overflow and an uncaught exception end the process with a clear
// message (death tests, in a child process).
#include <doctest/doctest.h>
#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include <atomic>
#include <csignal>
#include <memory>
#include <stdexcept>

#include "../support/child.hpp"

using namespace std::chrono_literals;

namespace {
std::atomic<int> destroyed{0};
struct Tracked {
  ~Tracked() { destroyed.fetch_add(1); }
};

// Recurses until the stack runs out; volatile keeps every frame.
int deep(int n) {
  volatile char pad[512];
  pad[0] = static_cast<char>(n);
  return n > 1'000'000'000 ? pad[0] : deep(n + 1) + pad[0];
}
}  // namespace

TEST_CASE("clean shutdown: fibers still parked or sleeping are unwound") {
  destroyed = 0;
  spindle::WaitGroup never;
  never.add(1);
  spindle::run({}, [&] {
    spindle::WaitGroup started;
    started.add(1100);
    for (int i = 0; i < 1000; ++i)
      spindle::go([&] {
        Tracked t;
        started.done();
        never.wait();
      });
    for (int i = 0; i < 100; ++i)
      spindle::go([&] {
        Tracked t;
        started.done();
        spindle::sleep_for(1h);
      });
    started.wait();
    for (int i = 0; i < 100; ++i) spindle::go([t = std::make_shared<Tracked>()] {});  // never run
  });
  CHECK(destroyed.load() == 1200);
}

TEST_CASE("a stack overflow names the fiber and its stack size") {
  auto r = spindle::testing::run_in_child([] {
    spindle::run({}, [] {
      spindle::WaitGroup wg;
      wg.add(1);
      spindle::go(spindle::SpawnOptions{"recurser", 32 * 1024}, [] { deep(0); });
      wg.wait();
    });
  });
  CAPTURE(r.err);
  CHECK(r.signal == SIGABRT);
  CHECK(r.err.find("'recurser' overflowed its 32768-byte stack") != std::string::npos);
}

TEST_CASE("an uncaught exception is logged with the fiber and ends the process") {
  auto r = spindle::testing::run_in_child([] {
    spindle::run({}, [] {
      spindle::go(spindle::SpawnOptions{"thrower"}, [] { throw std::runtime_error("boom"); });
      spindle::sleep_for(1s);
    });
  });
  CAPTURE(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("'thrower' ended by an uncaught exception: boom") != std::string::npos);
}
