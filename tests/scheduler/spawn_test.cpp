// Fibers: spawning, joining, the runtime's entry point, ids and names,
// fiber-local storage, statistics and dumps.
#include <doctest/doctest.h>
#include <spindle/fiber_local.hpp>
#include <spindle/runtime.hpp>
#include <spindle/stats.hpp>
#include <spindle/waitgroup.hpp>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include "../support/child.hpp"

using spindle::testing::kScale;

TEST_CASE("run: main is fiber #1 named main, and run returns when it does") {
  std::uint64_t id = 0;
  std::string name;
  spindle::run({}, [&] {
    id = spindle::this_fiber::id();
    name = spindle::this_fiber::name();
  });
  CHECK(id == 1);
  CHECK(name == "main");
  CHECK(spindle::this_fiber::id() == 0);
  CHECK(spindle::stats().procs == 0);  // no runtime any more
}

TEST_CASE("run: procs from config, else SPINDLE_PROCS, else hardware threads") {
  int seen = 0;
  spindle::Config cfg;
  cfg.procs = 3;
  spindle::run(cfg, [&] { seen = spindle::stats().procs; });
  CHECK(seen == 3);

  setenv("SPINDLE_PROCS", "5", 1);
  spindle::run({}, [&] { seen = spindle::stats().procs; });
  unsetenv("SPINDLE_PROCS");
  CHECK(seen == 5);

  spindle::run({}, [&] { seen = spindle::stats().procs; });
  CHECK(seen == static_cast<int>(std::thread::hardware_concurrency()));
}

TEST_CASE("spawn and join one million fibers") {
  const long n = 1'000'000 / kScale;
  std::atomic<long> sum{0};
  spindle::run({}, [&] {
    spindle::WaitGroup wg;
    wg.add(n);
    for (long i = 0; i < n; ++i)
      spindle::go([&, i] {
        sum.fetch_add(i, std::memory_order_relaxed);
        wg.done();
      });
    wg.wait();
    CHECK(spindle::stats().fibers_spawned == static_cast<std::uint64_t>(n + 1));
  });
  CHECK(sum.load() == n * (n - 1) / 2);
}

TEST_CASE("one million fibers alive and parked at once") {
  const long n = 1'000'000 / kScale;
  spindle::Stats peak;
  std::atomic<long> finished{0};
  spindle::run({}, [&] {
    spindle::WaitGroup started, gate;
    gate.add(1);
    started.add(n);
    for (long i = 0; i < n; ++i)
      spindle::go([&] {
        started.done();
        gate.wait();
        finished.fetch_add(1, std::memory_order_relaxed);
      });
    started.wait();
    // All have started; give the last ones time to reach gate.wait().
    while (spindle::stats().fibers_waiting < n) spindle::sleep_for(std::chrono::milliseconds(1));
    peak = spindle::stats();
    gate.done();
    while (finished.load() < n) spindle::sleep_for(std::chrono::milliseconds(1));
  });
  CHECK(peak.fibers_alive >= n);
  CHECK(peak.fibers_waiting >= n);
  CHECK(peak.guarded_stacks + peak.unguarded_stacks >= static_cast<std::uint64_t>(n));
  CHECK(finished.load() == n);
}

TEST_CASE("go() from a plain thread while the runtime runs") {
  std::atomic<int> ran{0};
  spindle::run({}, [&] {
    spindle::WaitGroup wg;
    wg.add(100);
    std::thread outsider([&] {
      for (int i = 0; i < 100; ++i)
        spindle::go([&] {
          ran.fetch_add(1);
          wg.done();
        });
    });
    wg.wait();
    outsider.join();
  });
  CHECK(ran.load() == 100);
  CHECK_THROWS_AS(spindle::go([] {}), std::logic_error);
}

TEST_CASE("WaitGroup: a plain thread can wait on fibers") {
  std::atomic<int> ran{0};
  spindle::run({}, [&] {
    spindle::WaitGroup wg;
    wg.add(50);
    std::thread waiter([&] {
      wg.wait();
      CHECK(ran.load() == 50);
    });
    for (int i = 0; i < 50; ++i)
      spindle::go([&] {
        spindle::sleep_for(std::chrono::milliseconds(2));
        ran.fetch_add(1);
        wg.done();
      });
    waiter.join();
    CHECK_THROWS_AS(wg.done(), std::logic_error);
  });
}

TEST_CASE("fiber-local storage stays with its fiber across migrations") {
  static spindle::FiberLocal<long> mine;
  spindle::Config cfg;
  cfg.procs = 2;
  cfg.migrate_on_yield = true;
  std::atomic<int> wrong{0};
  spindle::run(cfg, [&] {
    spindle::WaitGroup wg;
    wg.add(64);
    for (long f = 0; f < 64; ++f)
      spindle::go([&, f] {
        mine.get() = f;
        for (int i = 0; i < 1000; ++i) {
          spindle::yield();
          if (mine.get() != f) wrong.fetch_add(1);
        }
        wg.done();
      });
    wg.wait();
    CHECK(mine.get() == 0);  // main's own, default-constructed
  });
  CHECK(wrong.load() == 0);
  CHECK_THROWS_AS(mine.get(), std::logic_error);
}

TEST_CASE("stats and dump describe parked fibers by name and reason") {
  spindle::run({}, [&] {
    spindle::WaitGroup gate, started, finished;
    gate.add(1);
    started.add(1);
    finished.add(1);
    spindle::go(spindle::SpawnOptions{"gatekeeper"}, [&] {
      started.done();
      gate.wait();
      finished.done();  // gate must outlive this fiber's wait()
    });
    started.wait();
    while (spindle::stats().fibers_waiting < 1) spindle::yield();
    std::string dump = spindle::dump_fibers();
    CHECK(dump.find("'gatekeeper' [waiting: waitgroup]") != std::string::npos);
    CHECK(dump.find("'main' [running]") != std::string::npos);
    spindle::Stats s = spindle::stats();
    CHECK(s.fibers_alive == 2);
    CHECK(s.per_proc.size() == static_cast<std::size_t>(s.procs));
    CHECK(spindle::schedtrace_line().rfind("SCHED ", 0) == 0);
    gate.done();
    finished.wait();
  });
}

TEST_CASE("SPINDLE_SCHEDTRACE prints a line per interval") {
  auto r = spindle::testing::run_in_child([] {
    setenv("SPINDLE_SCHEDTRACE", "10", 1);
    spindle::run({}, [] { spindle::sleep_for(std::chrono::milliseconds(100)); });
  });
  CHECK(r.exit_code == 0);
  int lines = 0;
  for (std::size_t at = 0; (at = r.err.find("SCHED ", at)) != std::string::npos; ++at) ++lines;
  CHECK(lines >= 5);
}

TEST_CASE("WaitGroup: the waiter may free it as soon as wait() returns") {
  // The last done() wakes the waiter; the waiter deletes the WaitGroup at
  // once. A done() that touched the WaitGroup after waking would be a
  // use-after-free (ASan reports it; the plain build crashes now and then).
  const int rounds = 20'000 / static_cast<int>(kScale);
  spindle::Config cfg;
  cfg.procs = 2;
  spindle::run(cfg, [&] {
    for (int i = 0; i < rounds; ++i) {
      auto* wg = new spindle::WaitGroup;
      wg->add(2);
      for (int k = 0; k < 2; ++k) spindle::go([wg] { wg->done(); });
      wg->wait();
      delete wg;
    }
  });
  std::atomic<bool> thread_done{false};
  spindle::run(cfg, [&] {
    for (int i = 0; i < rounds / 10; ++i) {
      auto* wg = new spindle::WaitGroup;
      wg->add(1);
      std::thread waiter([wg] {
        wg->wait();
        delete wg;
      });
      spindle::go([wg] { wg->done(); });
      waiter.join();
    }
    thread_done = true;
  });
  CHECK(thread_done.load());
}
