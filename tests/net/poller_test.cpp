// AsioPoller's wake-up protocol (net/README.md, "Invariants of a poll"):
// an interrupt() ends the current blocking poll or the next one, even when
// a non-blocking poll took the reactor's wake-up edge first.
#include <doctest/doctest.h>
#include <spindle/timer.hpp>

#include "asio_poller.hpp"

#include <chrono>
#include <cstdint>
#include <thread>

using namespace std::chrono_literals;
using spindle::now_ns;
using spindle::net::detail::AsioPoller;

namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

// Asio's wake-up eventfd starts readable, so a new reactor's first
// epoll_wait returns at once: take that edge before timing anything.
void take_startup_edge(AsioPoller& p) {
  spindle::detail::ReadyList ready;
  p.poll(0, ready);
}

// Nanoseconds a poll with a deadline 5 s away took.
std::int64_t blocking_poll(AsioPoller& p) {
  spindle::detail::ReadyList ready;
  std::int64_t start = now_ns();
  p.poll(start + 5 * kSecond, ready);
  CHECK(ready.take() == nullptr);
  return now_ns() - start;
}

}  // namespace

TEST_CASE("a blocking poll with nothing to report waits for its deadline") {
  AsioPoller p;
  take_startup_edge(p);
  spindle::detail::ReadyList ready;
  std::int64_t start = now_ns();
  p.poll(start + kSecond / 10, ready);
  CHECK(now_ns() - start >= kSecond / 10);
}

TEST_CASE("an interrupt ends a blocking poll") {
  AsioPoller p;
  take_startup_edge(p);
  std::thread waker([&] {
    std::this_thread::sleep_for(50ms);
    p.interrupt();
  });
  CHECK(blocking_poll(p) < 2 * kSecond);
  waker.join();
}

TEST_CASE("an interrupt whose edge a non-blocking poll took still ends the next blocking poll") {
  AsioPoller p;
  take_startup_edge(p);
  spindle::detail::ReadyList ready;
  p.interrupt();
  p.poll(0, ready);  // takes the eventfd's edge
  CHECK(blocking_poll(p) < 2 * kSecond);
  // The interrupt is spent: the poll after it blocks again.
  std::int64_t start = now_ns();
  p.poll(start + kSecond / 10, ready);
  CHECK(now_ns() - start >= kSecond / 10);
}
