// CondVar, Once and Semaphore: hand-offs, timeouts and their races with
// notifies, run-once under contention, FIFO token grants, and plain threads
// mixed with fibers.
#include <doctest/doctest.h>
#include <spindle/condvar.hpp>
#include <spindle/mutex.hpp>
#include <spindle/once.hpp>
#include <spindle/runtime.hpp>
#include <spindle/semaphore.hpp>
#include <spindle/waitgroup.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
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

namespace {

// A bounded queue, the textbook use of two condition variables.
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t cap) : cap_(cap) {}
  void push(long v) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return items_.size() < cap_; });
    items_.push_back(v);
    not_empty_.notify_one();
  }
  long pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !items_.empty(); });
    long v = items_.front();
    items_.pop_front();
    not_full_.notify_one();
    return v;
  }

 private:
  const std::size_t cap_;
  spindle::Mutex mu_;
  spindle::CondVar not_empty_, not_full_;
  std::deque<long> items_;  // guarded by mu_
};

}  // namespace

TEST_CASE("condvar: producers and consumers through a bounded queue") {
  constexpr int kProducers = 4, kItems = 2000;
  long sum = 0;
  spindle::run(procs(2), [&] {
    BoundedQueue q(4);
    std::atomic<long> got{0};
    fibers(2 * kProducers, [&](int id) {
      for (int i = 1; i <= kItems; ++i) {
        if (id < kProducers)
          q.push(i);
        else
          got.fetch_add(q.pop());
      }
    });
    sum = got.load();
  });
  CHECK(sum == long{kProducers} * kItems * (kItems + 1) / 2);
}

TEST_CASE("condvar: notify_all wakes every waiter") {
  constexpr int kWaiters = 50;
  int woken = 0;
  spindle::run(procs(2), [&] {
    spindle::Mutex mu;
    spindle::CondVar cv;
    int waiting = 0;
    bool go = false;
    spindle::WaitGroup wg;
    wg.add(kWaiters);
    for (int i = 0; i < kWaiters; ++i) {
      spindle::go([&] {
        {
          std::unique_lock lock(mu);
          ++waiting;
          cv.notify_all();  // tells the notifier below that one more waits
          cv.wait(lock, [&] { return go; });
          ++woken;
        }
        wg.done();  // after unlocking: mu dies with the main fiber's frame
      });
    }
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return waiting == kWaiters; });
      go = true;
    }
    cv.notify_all();
    wg.wait();
  });
  CHECK(woken == kWaiters);
}

TEST_CASE("condvar: wait_for times out, not early") {
  bool timed_out = false, pred_result = true;
  Clock::duration waited{}, waited_pred{};
  spindle::run(procs(2), [&] {
    spindle::Mutex mu;
    spindle::CondVar cv;
    std::unique_lock lock(mu);
    auto start = Clock::now();
    timed_out = cv.wait_for(lock, 20ms) == std::cv_status::timeout;
    waited = Clock::now() - start;
    CHECK(lock.owns_lock());
    start = Clock::now();
    pred_result = cv.wait_until(lock, start + 10ms, [] { return false; });
    waited_pred = Clock::now() - start;
  });
  CHECK(timed_out);
  CHECK(waited >= 20ms);
  CHECK(waited < 2s);
  CHECK_FALSE(pred_result);
  CHECK(waited_pred >= 10ms);
}

TEST_CASE("condvar: a notify after a waiter timed out goes to the next waiter") {
  bool first_timed_out = false, second_woken = false;
  spindle::run(procs(1), [&] {
    spindle::Mutex mu;
    spindle::CondVar cv;
    spindle::WaitGroup wg;
    wg.add(2);
    spindle::go([&] {  // queued first, times out
      {
        std::unique_lock lock(mu);
        first_timed_out = cv.wait_for(lock, 1ms) == std::cv_status::timeout;
      }
      wg.done();
    });
    spindle::yield();  // one P: it runs until it waits
    spindle::go([&] {  // queued second, waits for the notify
      {
        std::unique_lock lock(mu);
        second_woken = cv.wait_for(lock, 5s) == std::cv_status::no_timeout;
      }
      wg.done();
    });
    spindle::yield();
    spindle::sleep_for(5ms);
    cv.notify_one();
    wg.wait();
  });
  CHECK(first_timed_out);
  CHECK(second_woken);
}

TEST_CASE("condvar: notifies racing deadlines wake each waiter exactly once") {
  // Each round, a waiter's deadline and a notify land at about the same
  // time on two Ps. A double wake trips ready()'s assertion; a lost one
  // hangs; every round the waiter returns with the flag or a timeout.
  const int kRounds = kScale > 1 ? 300 : 3000;
  int notified = 0, timeouts = 0, wrong = 0;
  spindle::run(procs(2), [&] {
    spindle::Mutex mu;
    spindle::CondVar cv;
    for (int r = 0; r < kRounds; ++r) {
      bool flag = false;
      spindle::WaitGroup wg;
      wg.add(2);
      // Each fiber unlocks before it reports: mu dies with this frame.
      spindle::go([&] {
        {
          std::unique_lock lock(mu);
          if (cv.wait_for(lock, std::chrono::microseconds(20 + r % 40)) == std::cv_status::timeout)
            ++timeouts;
          else if (flag)
            ++notified;
          else
            ++wrong;  // woken without a timeout or a notify
        }
        wg.done();
      });
      spindle::go([&] {
        for (auto until = Clock::now() + std::chrono::microseconds(r % 60); Clock::now() < until;) {
        }
        {
          std::lock_guard lock(mu);
          flag = true;
          cv.notify_one();
        }
        wg.done();
      });
      wg.wait();
    }
  });
  CHECK(notified + timeouts == kRounds);
  CHECK(wrong == 0);
  MESSAGE("notified " << notified << ", timed out " << timeouts);
}

TEST_CASE("condvar: wait without the lock throws") {
  spindle::run(procs(1), [] {
    spindle::Mutex mu;
    spindle::CondVar cv;
    std::unique_lock lock(mu, std::defer_lock);
    CHECK_THROWS_AS(cv.wait(lock), std::logic_error);
  });
}

TEST_CASE("once: 1,000 concurrent fibers run the function once and all see its effect") {
  int runs = 0, stale = 0;
  spindle::run(procs(2), [&] {
    spindle::Once once;
    int value = 0;  // written by the one run, read by all after call_once
    std::atomic<int> stale_reads{0};
    fibers(kManyFibers, [&](int) {
      spindle::call_once(once, [&] {
        ++runs;
        spindle::yield();  // the others arrive and wait meanwhile
        value = 42;
      });
      if (value != 42) stale_reads.fetch_add(1);
    });
    stale = stale_reads.load();
  });
  CHECK(runs == 1);
  CHECK(stale == 0);
}

TEST_CASE("once: a throwing function leaves it unset, and a waiting caller retries") {
  int runs = 0;
  bool thrown = false, later_ran = false;
  spindle::run(procs(1), [&] {
    spindle::Once once;
    spindle::WaitGroup wg;
    wg.add(4);
    spindle::go([&] {
      try {
        spindle::call_once(once, [&] {
          spindle::yield();  // one P: the three below queue up meanwhile
          throw std::runtime_error("first attempt fails");
        });
      } catch (const std::runtime_error&) {
        thrown = true;
      }
      wg.done();
    });
    spindle::yield();  // it runs until its function yields
    for (int i = 0; i < 3; ++i) {
      spindle::go([&] {
        spindle::call_once(once, [&] { ++runs; });
        wg.done();
      });
    }
    wg.wait();
    spindle::call_once(once, [&] { later_ran = true; });
  });
  CHECK(thrown);
  CHECK(runs == 1);
  CHECK_FALSE(later_ran);
}

TEST_CASE("semaphore: bounds how many hold it at once") {
  constexpr long kTokens = 3;
  int most = 0;
  spindle::run(procs(2), [&] {
    spindle::Semaphore sem(kTokens);
    std::atomic<int> inside{0}, max_inside{0};
    fibers(100, [&](int) {
      for (int r = 0; r < 20; ++r) {
        sem.acquire();
        int now = inside.fetch_add(1) + 1;
        for (int seen = max_inside.load();
             now > seen && !max_inside.compare_exchange_weak(seen, now);) {
        }
        spindle::yield();
        inside.fetch_sub(1);
        sem.release();
      }
    });
    most = max_inside.load();
  });
  CHECK(most <= kTokens);
  CHECK(most > 1);  // it did let several in
}

TEST_CASE("semaphore: FIFO grants, and a large request at the head holds back smaller ones") {
  // One P, so each granted waiter runs (and logs) when the main fiber
  // yields. The waiters keep their tokens.
  std::vector<std::vector<int>> seen;  // the log after each release
  bool newcomer_overtook = true;
  spindle::run(procs(1), [&] {
    spindle::Semaphore sem(6);
    sem.acquire(6);
    std::vector<int> log;
    spindle::WaitGroup wg;
    wg.add(4);
    const long wants[] = {1, 2, 1, 2};
    for (int i = 0; i < 4; ++i) {
      spindle::go([&, i] {
        sem.acquire(wants[i]);
        log.push_back(i);
        wg.done();
      });
      spindle::yield();  // it runs until it queues
    }
    auto release = [&](long n) {
      sem.release(n);
      spindle::yield();
      seen.push_back(log);
    };
    release(1);  // waiter 0
    release(1);  // one free: waiter 2 would fit, but waiter 1 wants 2
    if ((newcomer_overtook = sem.try_acquire(1))) sem.release(1);
    release(1);  // waiter 1
    release(1);  // waiter 2
    release(2);  // waiter 3
    wg.wait();
  });
  using Log = std::vector<int>;
  CHECK(seen == std::vector<Log>{{0}, {0}, {0, 1}, {0, 1, 2}, {0, 1, 2, 3}});
  CHECK_FALSE(newcomer_overtook);
}

TEST_CASE("semaphore: misuse throws and changes nothing") {
  spindle::run(procs(1), [] {
    CHECK_THROWS_AS(spindle::Semaphore(-1), std::invalid_argument);
    spindle::Semaphore sem(2);
    CHECK_THROWS_AS(sem.acquire(3), std::invalid_argument);
    CHECK_THROWS_AS(sem.acquire(-1), std::invalid_argument);
    CHECK_THROWS_AS(sem.release(1), std::logic_error);
    REQUIRE(sem.try_acquire(2));
    CHECK_FALSE(sem.try_acquire(1));
    CHECK_THROWS_AS(sem.release(3), std::logic_error);
    sem.release(2);
    CHECK(sem.try_acquire(2));
  });
}

TEST_CASE("sync: plain threads and fibers hand off through Mutex, CondVar and Semaphore") {
  const int kRounds = kScale > 1 ? 200 : 2000;
  int rounds_done = 0, most_inside = 0;
  bool thread_timed_out = false;
  spindle::run(procs(2), [&] {
    spindle::Mutex mu;
    spindle::CondVar cv;
    int turn = 0;  // guarded by mu: even, the thread's turn; odd, the fiber's

    // A thread and a fiber take turns, each waiting on the condvar.
    auto player = [&](int parity) {
      for (int r = 0; r < kRounds; ++r) {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return turn % 2 == parity; });
        ++turn;
        cv.notify_all();
      }
    };
    std::thread thread_player(player, 0);

    // Threads and fibers share a semaphore of two tokens.
    spindle::Semaphore sem(2);
    std::atomic<int> inside{0}, max_inside{0};
    auto user = [&] {
      for (int r = 0; r < kRounds / 4; ++r) {
        sem.acquire();
        int now = inside.fetch_add(1) + 1;
        for (int seen = max_inside.load();
             now > seen && !max_inside.compare_exchange_weak(seen, now);) {
        }
        std::this_thread::yield();
        inside.fetch_sub(1);
        sem.release();
      }
    };
    std::thread sem_thread(user);

    // A thread's timed wait runs on the runtime's timers.
    std::thread timed([&] {
      std::unique_lock lock(mu);
      thread_timed_out = cv.wait_for(lock, 5ms, [] { return false; }) == false;
    });

    fibers(4, [&](int i) {
      if (i == 0)
        player(1);
      else
        user();
    });
    spindle::blocking([&] {
      thread_player.join();
      sem_thread.join();
      timed.join();
    });
    std::lock_guard lock(mu);
    rounds_done = turn;
    most_inside = max_inside.load();
  });
  CHECK(rounds_done == 2 * kRounds);
  CHECK(most_inside <= 2);
  CHECK(thread_timed_out);
}
