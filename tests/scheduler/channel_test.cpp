// Channels: unbuffered hand-off, buffered capacity and order, close with
// parties parked on both sides, move-only payloads, range-for, many senders
// and receivers on several Ps, plain threads mixed with fibers.
#include <doctest/doctest.h>
#include <spindle/channel.hpp>
#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../support/sync.hpp"

using spindle::Channel;
using spindle::ChannelClosed;
using spindle::testing::await_parked;
using spindle::testing::kScale;
using spindle::testing::procs;

TEST_CASE("channel: unbuffered try_send/try_recv succeed only against a parked partner") {
  spindle::run(procs(2), [] {
    Channel<int> ch;
    CHECK(ch.capacity() == 0);
    CHECK_FALSE(ch.try_send(1));  // nobody receiving
    std::optional<int> got;
    CHECK_FALSE(ch.try_recv(got));  // nobody sending

    spindle::WaitGroup wg;
    wg.add(1);
    std::optional<int> received;
    spindle::go([&] {
      received = ch.recv();
      wg.done();
    });
    await_parked("chan receive", 1);
    CHECK(ch.try_send(7));  // straight into the parked receiver
    wg.wait();
    CHECK(received == 7);

    wg.add(1);
    spindle::go([&] {
      ch.send(8);
      wg.done();
    });
    await_parked("chan send", 1);
    CHECK(ch.len() == 0);  // the value waits with its sender, not in a buffer
    CHECK(ch.try_recv(got));
    CHECK(got == 8);
    wg.wait();
  });
}

TEST_CASE("channel: unbuffered ping-pong hands every value across") {
  spindle::run(procs(2), [] {
    Channel<int> ping, pong;
    const int rounds = 20'000 / static_cast<int>(kScale) + 10;
    spindle::WaitGroup wg;
    wg.add(1);
    spindle::go([&] {
      for (std::optional<int> v; (v = ping.recv());) pong.send(*v + 1);
      wg.done();
    });
    long sum = 0;
    for (int i = 0; i < rounds; ++i) {
      ping.send(i);
      sum += *pong.recv() - i;
    }
    ping.close();
    wg.wait();
    CHECK(sum == rounds);
  });
}

TEST_CASE("channel: buffered capacity, FIFO order, and a parked sender keeps its place") {
  spindle::run(procs(2), [] {
    Channel<int> ch(3);
    CHECK(ch.capacity() == 3);
    for (int i = 0; i < 3; ++i) CHECK(ch.try_send(i));  // room: no wait
    CHECK(ch.len() == 3);
    CHECK_FALSE(ch.try_send(99));  // full
    CHECK(ch.len() == 3);

    spindle::WaitGroup wg;
    wg.add(1);
    spindle::go([&] {
      for (int i = 3; i < 6; ++i) ch.send(i);  // parks on the full buffer
      wg.done();
    });
    await_parked("chan send", 1);
    CHECK(ch.len() == 3);
    for (int i = 0; i < 6; ++i) CHECK(ch.recv() == i);
    wg.wait();
    CHECK(ch.len() == 0);
    std::optional<int> got;
    CHECK_FALSE(ch.try_recv(got));
  });
}

TEST_CASE("channel: close wakes parked receivers and senders; the buffer drains first") {
  spindle::run(procs(2), [] {
    Channel<int> empty;    // receivers park here
    Channel<int> full(2);  // senders park here
    full.send(1);
    full.send(2);
    std::atomic<int> got_nullopt{0}, threw{0};
    spindle::WaitGroup wg;
    wg.add(6);
    for (int i = 0; i < 3; ++i) {
      spindle::go([&] {
        if (!empty.recv()) got_nullopt.fetch_add(1);
        wg.done();
      });
      spindle::go([&] {
        try {
          full.send(3);
        } catch (const ChannelClosed&) {
          threw.fetch_add(1);
        }
        wg.done();
      });
    }
    await_parked("chan receive", 3);
    await_parked("chan send", 3);
    empty.close();
    full.close();
    wg.wait();
    CHECK(got_nullopt == 3);
    CHECK(threw == 3);

    CHECK(full.recv() == 1);  // what was buffered before the close still arrives
    CHECK(full.recv() == 2);
    CHECK(full.recv() == std::nullopt);
    std::optional<int> got = 5;
    CHECK(full.try_recv(got));  // completes at once: closed and drained
    CHECK(got == std::nullopt);
    CHECK_THROWS_AS(full.send(4), ChannelClosed);
    CHECK_THROWS_AS(full.try_send(4), ChannelClosed);
    CHECK_THROWS_AS(full.close(), ChannelClosed);
  });
}

TEST_CASE("channel: move-only payloads, buffered and unbuffered, none leaked") {
  spindle::run(procs(2), [] {
    spindle::WaitGroup wg;  // one for both rounds: see select_test.cpp
    for (std::size_t cap : {0, 4}) {
      Channel<std::unique_ptr<int>> ch(cap);
      wg.add(1);
      spindle::go([&] {
        for (int i = 0; i < 100; ++i) ch.send(std::make_unique<int>(i));
        auto last = std::make_unique<int>(100);
        while (!ch.try_send(std::move(last))) {
          CHECK(last != nullptr);  // a failed try_send leaves the value alone
          spindle::yield();
        }
        ch.close();
        wg.done();
      });
      int expect = 0;
      for (auto p : ch) {
        REQUIRE(p != nullptr);
        CHECK(*p == expect++);
      }
      CHECK(expect == 101);
      wg.wait();
    }
    // Values left in a buffer are destroyed with the channel (ASan: no leak).
    Channel<std::unique_ptr<int>> left(8);
    for (int i = 0; i < 5; ++i) left.send(std::make_unique<int>(i));
  });
}

TEST_CASE("channel: range-for stops at close, after the buffered values") {
  spindle::run(procs(2), [] {
    Channel<std::string> ch(16);
    for (int i = 0; i < 10; ++i) ch.send(std::to_string(i));
    ch.close();
    std::string all;
    for (auto s : ch) all += s;
    CHECK(all == "0123456789");
  });
}

// 8 senders x N items into 4 receivers: every item arrives exactly once, and
// each receiver sees each sender's items in the order they were sent.
static void many_to_many(std::size_t capacity) {
  constexpr int kSenders = 8, kReceivers = 4;
  const int per_sender = static_cast<int>(100'000 / kScale);
  std::vector<std::vector<std::uint8_t>> seen(kReceivers,
                                              std::vector<std::uint8_t>(kSenders * per_sender));
  std::atomic<long> out_of_order{0};
  spindle::run(procs(4), [&] {
    Channel<std::uint64_t> ch(capacity);
    spindle::WaitGroup senders, receivers;
    senders.add(kSenders);
    receivers.add(kReceivers);
    for (int r = 0; r < kReceivers; ++r) {
      spindle::go([&, r] {
        std::vector<int> last(kSenders, -1);
        for (std::uint64_t item : ch) {
          int s = static_cast<int>(item >> 32), seq = static_cast<int>(item & 0xffffffff);
          if (seq <= last[s]) out_of_order.fetch_add(1);
          last[s] = seq;
          ++seen[r][s * per_sender + seq];
        }
        receivers.done();
      });
    }
    for (int s = 0; s < kSenders; ++s) {
      spindle::go([&, s] {
        for (int i = 0; i < per_sender; ++i) ch.send(std::uint64_t(s) << 32 | std::uint32_t(i));
        senders.done();
      });
    }
    senders.wait();
    ch.close();
    receivers.wait();
  });
  long missing = 0, duplicated = 0;
  for (int i = 0; i < kSenders * per_sender; ++i) {
    int n = 0;
    for (auto& r : seen) n += r[i];
    missing += n == 0;
    duplicated += n > 1;
  }
  CHECK(missing == 0);
  CHECK(duplicated == 0);
  CHECK(out_of_order == 0);
}

TEST_CASE("channel: many senders and receivers on several Ps, unbuffered") {
  many_to_many(0);
}

TEST_CASE("channel: many senders and receivers on several Ps, buffered") {
  many_to_many(64);
}

TEST_CASE("channel: a plain thread sends and receives alongside fibers") {
  spindle::run(procs(2), [] {
    Channel<int> requests, replies(4);
    spindle::WaitGroup servers;
    servers.add(3);
    for (int i = 0; i < 3; ++i) {
      spindle::go([&] {
        for (int v : requests) replies.send(v * 2);
        servers.done();
      });
    }
    const int n = 2000 / static_cast<int>(kScale) + 10;
    std::atomic<long> sum{0};
    spindle::WaitGroup thread_done;
    thread_done.add(1);
    std::thread client([&] {
      // Blocks this thread on both sides: the sends wait for a fiber to
      // receive, the receives for a fiber to reply.
      for (int i = 0; i < n; ++i) {
        requests.send(i);
        sum.fetch_add(*replies.recv());
      }
      requests.close();
      thread_done.done();
    });
    thread_done.wait();
    client.join();
    servers.wait();
    CHECK(sum == long(n) * (n - 1));

    // And a thread parked on a channel that a fiber closes.
    Channel<int> never;
    std::optional<int> got = 1;
    std::thread waiter([&] { got = never.recv(); });
    spindle::go([&] { never.close(); });
    spindle::blocking([&] { waiter.join(); });
    CHECK(got == std::nullopt);
  });
}

namespace {
std::atomic<int> unwound{0};
struct CountUnwind {
  ~CountUnwind() { unwound.fetch_add(1); }
};
}  // namespace

TEST_CASE("channel: fibers left parked on a destroyed channel unwind at shutdown") {
  unwound = 0;
  spindle::run(procs(2), [] {
    // Destroyed when this returns, with a fiber still parked on each.
    Channel<int> empty, full(1);
    full.send(0);
    spindle::go([&] {
      CountUnwind c;
      empty.recv();
    });
    spindle::go([&] {
      CountUnwind c;
      full.send(1);
    });
    await_parked("chan receive", 1);
    await_parked("chan send", 1);
  });
  CHECK(unwound == 2);
}
