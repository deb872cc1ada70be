// Stacks: the mprotect fallback for kernels without MADV_GUARD_INSTALL
// (forced with SPINDLE_STACK_GUARDS), its budget, and overflow detection
// on unguarded stacks; page release for reused deep stacks.
#include <doctest/doctest.h>
#include <spindle/runtime.hpp>
#include <spindle/stats.hpp>
#include <spindle/waitgroup.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "../support/child.hpp"
#include "../support/stack_probe.hpp"

namespace {

using spindle::testing::kMeasuresRss;
using spindle::testing::recurse;
using spindle::testing::rss_kib;
using spindle::testing::with_parked_fibers;

// One ~40 KiB frame written end to end. Unlike ~1 KiB frames (recurse),
// it cannot step over the 64 canary bytes at a stack's bottom: the gaps
// between small frames (return addresses, ASan's redzones) may hold them,
// and did once fiber_entry's frame shrank and the frames shifted.
// Not instrumented by ASan: the memory it overruns is whatever is mapped
// below the stack, and where that holds poisoned shadow (another fiber's
// frames, or stale shadow inherited through fork) ASan would report the
// write itself, first, instead of letting the runtime's check see it.
[[gnu::noinline, gnu::no_sanitize_address]] int overflow_in_one_frame() {
  volatile char big[40 * 1024];
  for (std::size_t i = 0; i < sizeof big; ++i) big[i] = 1;
  return big[0];
}

// Runs body with N fibers parked, under the mprotect strategy with `budget`.
spindle::Stats parked_with_budget(int budget, int fibers) {
  setenv("SPINDLE_STACK_GUARDS", ("mprotect:" + std::to_string(budget)).c_str(), 1);
  spindle::Stats seen;
  spindle::run({}, [&] { with_parked_fibers(fibers, [&] { seen = spindle::stats(); }); });
  unsetenv("SPINDLE_STACK_GUARDS");
  return seen;
}

}  // namespace

TEST_CASE("mprotect fallback: guards while the budget lasts, then unguarded stacks") {
  spindle::Stats s = parked_with_budget(8, 100);
  CHECK(s.guarded_stacks == 8);
  CHECK(s.unguarded_stacks >= 93);  // 100 + main, minus the 8 guarded
}

TEST_CASE("mprotect fallback: a guarded stack's overflow is named") {
  auto r = spindle::testing::run_in_child([] {
    setenv("SPINDLE_STACK_GUARDS", "mprotect", 1);
    spindle::run({}, [] {
      spindle::WaitGroup wg;
      wg.add(1);
      spindle::go(spindle::SpawnOptions{"deep", 32 * 1024}, [] { recurse(1 << 20); });
      wg.wait();
    });
  });
  CAPTURE(r.err);
  CHECK(r.signal == SIGABRT);
  CHECK(r.err.find("'deep' overflowed its 32768-byte stack (guard page hit)") != std::string::npos);
}

// Not under TSan: the overrun lands in whatever is mapped below the stack,
// which there may be TSan's own runtime memory, and instrumented code runs
// with its stack pointer in it. The outcome is then TSan's: a report, an
// abort, or (once in CI) a child spinning forever on one of TSan's locks.
// The plain and ASan builds run it.
TEST_CASE("unguarded stack: an overflow that returns is caught at the next switch" *
          doctest::skip(spindle::testing::kUnderTsan)) {
  auto r = spindle::testing::run_in_child([] {
    setenv("SPINDLE_STACK_GUARDS", "mprotect:0", 1);  // no guard pages at all
    spindle::Config cfg;
    cfg.procs = 1;
    spindle::run(cfg, [] {
      spindle::WaitGroup never;
      never.add(1);
      // Spawn the victim first: later stacks are mapped below it, so its
      // overflow lands in a neighbour's stack instead of faulting.
      spindle::go(spindle::SpawnOptions{"victim", 32 * 1024}, [] {
        overflow_in_one_frame();  // 40 KiB on a 32 KiB stack
        spindle::yield();
      });
      for (int i = 0; i < 4; ++i) spindle::go([&] { never.wait(); });
      never.wait();
    });
  });
  CAPTURE(r.err);
  CHECK(r.signal == SIGABRT);
  CHECK(r.err.find("'victim' overflowed its 32768-byte stack") != std::string::npos);
}

TEST_CASE("a dead fiber's stack gives its deep pages back" * doctest::skip(!kMeasuresRss)) {
  long before = 0, while_alive = 0, after = 0;
  spindle::Config cfg;
  cfg.procs = 1;
  spindle::run(cfg, [&] {
    spindle::WaitGroup deep, gate, done;
    gate.add(1);
    deep.add(200);
    done.add(200);
    before = rss_kib();
    for (int i = 0; i < 200; ++i)
      spindle::go(spindle::SpawnOptions{"", 256 * 1024}, [&] {
        recurse(150);  // ~150 KiB each: 30 MB touched, still resident after return
        deep.done();
        gate.wait();
        done.done();
      });
    deep.wait();
    while_alive = rss_kib();
    gate.done();
    done.wait();
    spindle::sleep_for(std::chrono::milliseconds(1));  // let the last ones exit
    after = rss_kib();
  });
  CAPTURE(before);
  CAPTURE(while_alive);
  CAPTURE(after);
  CHECK(while_alive - before > 20'000);  // the fibers did touch the pages...
  CHECK(after - before < 4'000);         // ...and their pooled stacks gave them back
}

TEST_CASE("after a burst, steady spawning reuses stacks instead of mapping them" *
          doctest::skip(spindle::testing::kUnderTsan)) {
  std::uint64_t mapped = 0;
  spindle::Config cfg;
  cfg.procs = 1;
  spindle::run(cfg, [&] {
    spindle::WaitGroup gate, burst;
    gate.add(1);
    burst.add(10'000);
    for (int i = 0; i < 10'000; ++i)
      spindle::go([&] {
        gate.wait();
        burst.done();
      });
    gate.done();
    burst.wait();
    std::uint64_t before = spindle::stats().stacks_mapped;
    for (int round = 0; round < 200; ++round) {
      spindle::WaitGroup wg;
      wg.add(64);
      for (int i = 0; i < 64; ++i)
        spindle::go([&] {
          spindle::yield();
          wg.done();
        });
      wg.wait();
    }
    mapped = spindle::stats().stacks_mapped - before;
  });
  CAPTURE(mapped);
  CHECK(mapped <= 64);  // 12,800 fibers ran
}

// Skipped under TSan: after the suite's earlier tests, 6,000 more fibers ran
// it out of thread-trace space; and below 4,096 + 64 per P it tests nothing.
TEST_CASE("the stacks of a burst are unmapped once they lie unused for a while" *
          doctest::skip(spindle::testing::kUnderTsan)) {
  constexpr int kBurst = 6'000;
  auto live = [] {
    spindle::Stats s = spindle::stats();
    return s.guarded_stacks + s.unguarded_stacks;
  };
  std::uint64_t peak = 0, settled = 0;
  spindle::run({}, [&] {
    with_parked_fibers(kBurst, [&] { peak = live(); });
    // sysmon keeps 4,096 idle stacks (plus 64 per P) and unmaps the rest
    // after a second or two unused.
    for (int i = 0; i < 100 && (settled = live()) > 4'500; ++i)
      spindle::sleep_for(std::chrono::milliseconds(50));
  });
  CAPTURE(peak);
  CHECK(peak >= kBurst);
  CHECK(settled <= 4'500);
}

namespace {
// How many of the pages in [lo, hi) are resident (mincore).
int resident_pages(const char* lo, const char* hi) {
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  auto start = reinterpret_cast<std::uintptr_t>(lo) & ~(page - 1);
  std::size_t len = reinterpret_cast<std::uintptr_t>(hi) - start;
  std::vector<unsigned char> vec((len + page - 1) / page);
  REQUIRE(mincore(reinterpret_cast<void*>(start), len, vec.data()) == 0);
  int n = 0;
  for (unsigned char v : vec) n += v & 1;
  return n;
}
}  // namespace

TEST_CASE(
    "a pooled stack keeps its deep pages while it is among a P's last 8, then gives them "
    "back" *
    doctest::skip(!kMeasuresRss)) {
  int kept = 0, after = 0;
  spindle::Config cfg;
  cfg.procs = 1;
  spindle::run(cfg, [&] {
    const char* lo = nullptr;
    const char* hi = nullptr;
    // Nine fibers hold stacks of their own, so that their exits, later,
    // push the deep fiber's stack below the cache's hot eight.
    with_parked_fibers(9, [&] {
      spindle::WaitGroup deep;
      deep.add(1);
      spindle::go([&] {
        char here;
        auto top = reinterpret_cast<std::uintptr_t>(&here);
        hi = reinterpret_cast<const char*>(top - 8 * 1024);  // below the first frames
        lo = reinterpret_cast<const char*>(top - 24 * 1024);
        recurse(32);  // ~32 KiB of frames that touch their pages
        deep.done();
      });
      deep.wait();
      spindle::sleep_for(std::chrono::milliseconds(1));  // let it exit
      kept = resident_pages(lo, hi);
    });
    spindle::sleep_for(std::chrono::milliseconds(1));
    after = resident_pages(lo, hi);
  });
  CHECK(kept >= 4);   // 16 KiB: still there, the next fiber may need them
  CHECK(after == 0);  // pushed below the hot ones: trimmed
}
