// Mutex and RWMutex: exclusion under contention, FIFO wake-ups, starvation
// mode, writer preference, misuse, and plain threads mixed with fibers.
#include <doctest/doctest.h>
#include <spindle/mutex.hpp>
#include <spindle/runtime.hpp>
#include <spindle/rwmutex.hpp>
#include <spindle/stats.hpp>
#include <spindle/waitgroup.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../support/sync.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using spindle::testing::fibers;
using spindle::testing::kManyFibers;
using spindle::testing::kScale;
using spindle::testing::procs;

TEST_CASE("mutex: 1,000 fibers on 2 Ps keep a plain counter exact") {
  constexpr int kIncrements = 1000;
  long counter = 0;
  spindle::run(procs(2), [&] {
    spindle::Mutex mu;
    fibers(kManyFibers, [&](int) {
      for (int i = 0; i < kIncrements; ++i) {
        std::lock_guard lock(mu);
        ++counter;
      }
    });
  });
  CHECK(counter == long{kManyFibers} * kIncrements);
}

TEST_CASE("mutex: try_lock, and unlock of an unlocked mutex throws") {
  spindle::run(procs(1), [] {
    spindle::Mutex mu;
    CHECK_THROWS_AS(mu.unlock(), std::logic_error);
    REQUIRE(mu.try_lock());
    CHECK_FALSE(mu.try_lock());
    mu.unlock();
    CHECK_THROWS_AS(mu.unlock(), std::logic_error);
    // The failed unlocks changed nothing.
    std::unique_lock lock(mu);
    CHECK(lock.owns_lock());
  });
}

TEST_CASE("mutex: waiters get the lock in arrival order") {
  std::vector<int> order;
  spindle::run(procs(1), [&] {
    spindle::Mutex mu;
    mu.lock();
    spindle::WaitGroup wg;
    wg.add(5);
    for (int i = 0; i < 5; ++i) {
      spindle::go([&, i] {
        {
          std::lock_guard lock(mu);
          order.push_back(i);
        }
        wg.done();  // after unlocking: mu dies with the main fiber's frame
      });
      // One P: the new fiber runs until it parks on mu (more than one yield
      // if a time slice ran out and the fiber was preempted at lock()).
      while (spindle::stats().fibers_waiting <= i) spindle::yield();
    }
    mu.unlock();
    wg.wait();
  });
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("mutex: a waiter kept out for over 1 ms switches to starvation mode and gets the lock") {
  // One P. A hog holds the mutex across a short sleep and relocks it as soon
  // as it unlocks it, before the waiter it woke can run. In normal mode the
  // waiter loses every time, so only starvation mode (after 1 ms) lets it in
  // before the hog gives up.
  bool got_it = false;
  std::uint32_t starvations = 0;
  bool back_to_normal = false;
  spindle::run(procs(1), [&] {
    spindle::Mutex mu;
    std::atomic<bool> waiter_done{false};
    const auto give_up = Clock::now() + 5s;  // the hog stops here at the latest
    spindle::WaitGroup wg;
    wg.add(2);
    spindle::go([&] {
      while (!waiter_done.load() && Clock::now() < give_up) {
        std::lock_guard lock(mu);
        spindle::sleep_for(50us);
      }
      wg.done();
    });
    spindle::yield();  // the hog takes the lock and sleeps
    spindle::go([&] {
      {
        std::lock_guard lock(mu);
        got_it = Clock::now() < give_up;
      }
      waiter_done.store(true);
      wg.done();
    });
    wg.wait();
    starvations = mu.starvation_count();
    back_to_normal = mu.try_lock();  // no handoff pending, nobody queued
  });
  CHECK(got_it);
  CHECK(starvations >= 1);
  CHECK(back_to_normal);
}

TEST_CASE("mutex: plain threads and fibers share one mutex") {
  constexpr int kThreads = 2, kFibersHere = 8, kIncrements = 20000 / kScale + 100;
  long counter = 0;
  spindle::run(procs(2), [&] {
    spindle::Mutex mu;
    auto work = [&] {
      for (int i = 0; i < kIncrements; ++i) {
        std::lock_guard lock(mu);
        ++counter;
      }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) threads.emplace_back(work);
    fibers(kFibersHere, [&](int) { work(); });
    spindle::blocking([&] {
      for (auto& t : threads) t.join();
    });
  });
  CHECK(counter == long{kThreads + kFibersHere} * kIncrements);
}

TEST_CASE("rwmutex: readers hold it together") {
  bool together = false;
  spindle::run(procs(2), [&] {
    spindle::RWMutex rw;
    std::atomic<int> inside{0};
    std::atomic<bool> seen_both{false};
    fibers(2, [&](int) {
      std::shared_lock lock(rw);
      inside.fetch_add(1);
      // Each stays inside until both are: exclusive readers would time out.
      for (auto give_up = Clock::now() + 5s; Clock::now() < give_up && !seen_both.load();) {
        if (inside.load() == 2) seen_both.store(true);
        spindle::yield();
      }
    });
    together = seen_both.load();
  });
  CHECK(together);
}

TEST_CASE("rwmutex: a writer excludes readers and other writers") {
  constexpr int kRounds = 200;
  std::atomic<int> violations{0};
  long value = 0;
  spindle::run(procs(2), [&] {
    spindle::RWMutex rw;
    std::atomic<int> readers{0}, writers{0};
    fibers(16, [&](int id) {
      for (int r = 0; r < kRounds; ++r) {
        if (id % 4 == 0) {
          std::unique_lock lock(rw);
          if (writers.fetch_add(1) != 0 || readers.load() != 0) violations.fetch_add(1);
          long before = value;
          spindle::yield();  // invite anyone who could get in to do so
          value = before + 1;
          writers.fetch_sub(1);
        } else {
          std::shared_lock lock(rw);
          readers.fetch_add(1);
          if (writers.load() != 0) violations.fetch_add(1);
          spindle::yield();
          readers.fetch_sub(1);
        }
      }
    });
  });
  CHECK(violations.load() == 0);
  CHECK(value == 4 * kRounds);
}

TEST_CASE("rwmutex: a stream of overlapping readers does not starve a writer") {
  bool writer_got_in = false;
  spindle::run(procs(2), [&] {
    spindle::RWMutex rw;
    std::atomic<bool> stop{false};
    // The readers give up at this point; the writer must get in before.
    const auto give_up = Clock::now() + 5s;
    spindle::WaitGroup wg;
    wg.add(5);
    // Four readers, each holding the lock across yields so that some reader
    // is always inside: without writer preference the writer never would be.
    for (int i = 0; i < 4; ++i) {
      spindle::go([&] {
        while (!stop.load() && Clock::now() < give_up) {
          std::shared_lock lock(rw);
          spindle::yield();
          spindle::yield();
        }
        wg.done();
      });
    }
    spindle::go([&] {
      spindle::sleep_for(2ms);  // the readers are streaming by now
      {
        std::unique_lock lock(rw);
        writer_got_in = Clock::now() < give_up;
        stop.store(true);
      }
      wg.done();
    });
    wg.wait();
  });
  CHECK(writer_got_in);
}

TEST_CASE("rwmutex: try variants and misuse") {
  spindle::run(procs(1), [] {
    spindle::RWMutex rw;
    CHECK_THROWS_AS(rw.unlock(), std::logic_error);
    CHECK_THROWS_AS(rw.unlock_shared(), std::logic_error);

    REQUIRE(rw.try_lock_shared());
    REQUIRE(rw.try_lock_shared());
    CHECK_FALSE(rw.try_lock());
    rw.unlock_shared();
    rw.unlock_shared();

    REQUIRE(rw.try_lock());
    CHECK_FALSE(rw.try_lock_shared());
    CHECK_FALSE(rw.try_lock());
    CHECK_THROWS_AS(rw.unlock_shared(), std::logic_error);
    rw.unlock();
    // Every failed call above left it as it was: unlocked.
    CHECK(rw.try_lock());
    rw.unlock();
  });
}

TEST_CASE("rwmutex: readers queued behind a writer all get in when it unlocks") {
  int readers_in = 0;
  spindle::run(procs(1), [&] {
    spindle::RWMutex rw;
    rw.lock();
    spindle::WaitGroup wg;
    wg.add(3);
    for (int i = 0; i < 3; ++i) {
      spindle::go([&] {
        {
          std::shared_lock lock(rw);
          ++readers_in;
        }
        wg.done();
      });
    }
    spindle::yield();  // one P: the readers run and park
    CHECK(readers_in == 0);
    rw.unlock();
    wg.wait();
  });
  CHECK(readers_in == 3);
}
