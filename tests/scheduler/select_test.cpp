// select: fairness among ready cases, default and timeout cases, a parked
// select completed exactly once and unlinked from every other channel,
// send cases on closed channels, nil channels, plain threads.
#include <doctest/doctest.h>
#include <spindle/channel.hpp>
#include <spindle/runtime.hpp>
#include <spindle/stats.hpp>
#include <spindle/waitgroup.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "../support/sync.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using spindle::Channel;
using spindle::ChannelClosed;
using spindle::Empty;
using spindle::on_recv;
using spindle::on_send;
using spindle::on_timeout;
using spindle::otherwise;
using spindle::testing::await_parked;
using spindle::testing::kScale;
using spindle::testing::procs;

TEST_CASE("select: four always-ready cases are each chosen a quarter of the time") {
  spindle::run(procs(2), [] {
    // Closed channels are always ready to receive from; different types.
    Channel<int> a;
    Channel<std::string> b;
    Channel<Empty> c;
    Channel<std::unique_ptr<int>> d;
    a.close();
    b.close();
    c.close();
    d.close();
    constexpr int kRounds = 100'000;
    std::array<int, 4> chosen{};
    for (int i = 0; i < kRounds; ++i) {
      int k = spindle::select(on_recv(a), on_recv(b), on_recv(c), on_recv(d));
      REQUIRE(k >= 0);
      REQUIRE(k < 4);
      ++chosen[k];
    }
    for (int k = 0; k < 4; ++k) {
      double share = 100.0 * chosen[k] / kRounds;
      INFO("case " << k << ": " << share << "%");
      CHECK(share > 23.0);
      CHECK(share < 27.0);
    }
  });
}

TEST_CASE("select: only ready cases are chosen, the ready ones evenly") {
  spindle::run(procs(2), [] {
    Channel<int> ready1(1), idle1, ready2(1), idle2;
    constexpr int kRounds = 40'000;
    int first = 0, second = 0;
    ready1.send(0);
    ready2.send(0);
    for (int i = 0; i < kRounds; ++i) {
      int k = spindle::select(
          on_recv(idle1), on_recv(ready1, [&](std::optional<int> v) { ready1.send(*v); }),
          on_recv(idle2), on_recv(ready2, [&](std::optional<int> v) { ready2.send(*v); }));
      REQUIRE((k == 1 || k == 3));
      (k == 1 ? first : second)++;
    }
    CHECK(std::abs(first - second) < kRounds / 25);  // 48..52%
  });
}

TEST_CASE("select: callbacks get the value; a send case moves its value only if chosen") {
  spindle::run(procs(2), [] {
    Channel<std::unique_ptr<int>> in(1), out(1);
    in.send(std::make_unique<int>(5));
    int got = 0;
    int k = spindle::select(
        on_recv(in, [&](std::optional<std::unique_ptr<int>> p) { got = *p.value(); }),
        otherwise([] { FAIL("default taken while a case was ready"); }));
    CHECK(k == 0);
    CHECK(got == 5);

    out.send(std::make_unique<int>(1));  // full: the send case cannot proceed
    bool defaulted = false;
    k = spindle::select(on_send(out, std::make_unique<int>(2)),
                        otherwise([&] { defaulted = true; }));
    CHECK(k == 1);
    CHECK(defaulted);
    CHECK(**out.recv() == 1);  // the unchosen value never entered the channel
    CHECK(out.len() == 0);
  });
}

TEST_CASE("select: default is taken at once when nothing is ready") {
  spindle::run(procs(2), [] {
    Channel<int> a, b(1);
    b.send(1);  // b is full: a send case on it is not ready
    auto start = Clock::now();
    int k = spindle::select(on_recv(a), on_send(b, 2), otherwise());
    CHECK(k == 2);
    CHECK(Clock::now() - start < 1s);
    CHECK(b.len() == 1);
  });
}

TEST_CASE("select: a timeout fires, not early, and loses to a channel that is ready first") {
  spindle::run(procs(2), [] {
    Channel<int> a;
    auto start = Clock::now();
    bool timed_out = false;
    int k = spindle::select(on_recv(a), on_timeout(30ms, [&] { timed_out = true; }));
    auto waited = Clock::now() - start;
    CHECK(k == 1);
    CHECK(timed_out);
    CHECK(waited >= 30ms);
    CHECK(waited < 5s);

    // A deadline already past with nothing ready: times out without waiting.
    CHECK(spindle::select(on_recv(a), spindle::on_deadline(Clock::now() - 1s)) == 1);

    // The channel completes first: the timer is stopped, not left to fire.
    spindle::go([&] {
      await_parked("select", 1);
      a.send(3);
    });
    std::optional<int> v;
    k = spindle::select(on_recv(a, [&](std::optional<int> x) { v = x; }), on_timeout(1h));
    CHECK(k == 0);
    CHECK(v == 3);
    CHECK(spindle::stats().timers == 0);
  });
}

TEST_CASE("select: a timeout racing with senders completes exactly one case") {
  spindle::run(procs(2), [] {
    // Each round, a sender and the timer race for the parked select; if the
    // timer wins, the sender must still find its value unreceived.
    const int rounds = 2000 / static_cast<int>(kScale) + 20;
    int received = 0, timeouts = 0;
    // Not a WaitGroup per round: WaitGroup::add() may still touch the group
    // after wait() returned, and the next round reuses its address.
    Channel<Empty> sent(1);
    for (int i = 0; i < rounds; ++i) {
      Channel<int> ch(1);
      spindle::go([&] {
        spindle::sleep_for(std::chrono::microseconds(50 * (i % 5)));
        ch.send(i);
        sent.send({});
      });
      int k = spindle::select(on_recv(ch), on_timeout(std::chrono::microseconds(100)));
      (k == 0 ? received : timeouts)++;
      sent.recv();
      std::optional<int> left;
      bool has_left = ch.try_recv(left);
      CHECK(has_left == (k == 1));  // the value is exactly in one place
    }
    CHECK(received + timeouts == rounds);
    CHECK(received > 0);  // both sides of the race were exercised
    CHECK(timeouts > 0);
  });
}

TEST_CASE("select: a timer that expires after a channel completed the select loses cleanly") {
  // One P, so the timer can only fire once the sender stops running: by
  // then the send has completed the select and readied its fiber. The timer
  // must lose the claim (a second wake-up would ready a fiber that is not
  // parked), and the select must wait for it to finish with its frame.
  spindle::run(procs(1), [] {
    Channel<int> ch;
    spindle::go([&] {
      await_parked("select", 1);
      const auto past_deadline = Clock::now() + 5ms;
      while (Clock::now() < past_deadline) {
      }  // no scheduling point: the timer is overdue, unfired
      ch.send(1);
    });
    std::optional<int> v;
    int k = spindle::select(on_recv(ch, [&](std::optional<int> x) { v = x; }), on_timeout(1ms));
    CHECK(k == 0);
    CHECK(v == 1);
  });
}

TEST_CASE("select: a parked select is completed once and leaves every other channel") {
  spindle::run(procs(2), [] {
    const int rounds = 2000 / static_cast<int>(kScale) + 20;
    std::atomic<long> total{0};
    // Completion signals, not WaitGroups: see the timeout race above.
    Channel<int> chosen(1);
    Channel<Empty> sent(3);
    for (int round = 0; round < rounds; ++round) {
      Channel<int> a, b, c;
      spindle::go([&] {
        chosen.send(spindle::select(on_recv(a, [&](auto v) { total += *v; }),
                                    on_recv(b, [&](auto v) { total += *v; }),
                                    on_recv(c, [&](auto v) { total += *v; })));
      });
      await_parked("select", 1);
      // Three senders race for the one parked select; exactly one wins and
      // the other two must find it gone from their channels.
      for (Channel<int>* ch : {&a, &b, &c})
        spindle::go([&, ch] {
          ch->send(1);
          sent.send({});
        });
      int k = *chosen.recv();
      REQUIRE(k >= 0);
      // Serve the two losing senders from here: if the select had stayed
      // linked on their channels, they would hand their values to a dead op.
      for (Channel<int>* ch : {&a, &b, &c}) {
        if (ch == std::array{&a, &b, &c}[k]) continue;
        total += *ch->recv();
      }
      for (int i = 0; i < 3; ++i) sent.recv();
    }
    CHECK(total == 3L * rounds);
  });
}

TEST_CASE("select: several cases on one channel") {
  spindle::run(procs(2), [] {
    Channel<int> ch;
    int which = -1;
    spindle::go([&] {
      await_parked("select", 1);
      ch.send(1);
      ch.send(2);  // must meet a fresh receiver: the select's other op is gone
    });
    which = spindle::select(on_recv(ch), on_recv(ch));
    CHECK((which == 0 || which == 1));
    CHECK(ch.recv() == 2);
  });
}

TEST_CASE("select: send cases on a closed channel throw") {
  spindle::run(procs(2), [] {
    Channel<int> open, closed;
    closed.close();
    CHECK_THROWS_AS(spindle::select(on_recv(open), on_send(closed, 1)), ChannelClosed);

    Channel<int> full(1);
    full.send(0);
    spindle::go([&] {
      await_parked("select", 1);
      full.close();
    });
    CHECK_THROWS_AS(spindle::select(on_recv(open), on_send(full, 1)), ChannelClosed);
  });
}

TEST_CASE("select: a nil channel is never ready") {
  spindle::run(procs(2), [] {
    Channel<int>* nil = nullptr;
    Channel<int> ready(1);
    ready.send(1);
    for (int i = 0; i < 100; ++i) {
      CHECK(spindle::select(on_recv(nil), otherwise()) == 1);
      CHECK(spindle::select(on_send(nil, 1), on_recv(ready, [&](auto v) { ready.send(*v); })) == 1);
    }
    CHECK(spindle::select(on_recv(nil), on_timeout(1ms)) == 1);
  });
}

TEST_CASE("select: from a plain thread, on channels and a timeout") {
  spindle::run(procs(2), [] {
    Channel<int> a, b;
    std::atomic<int> result{-1};
    std::optional<int> value;
    std::thread t([&] {
      result = spindle::select(on_recv(a), on_recv(b, [&](auto v) { value = v; }), on_timeout(10s));
    });
    spindle::go([&] { b.send(9); });  // parks until the thread's select takes it
    spindle::blocking([&] { t.join(); });
    CHECK(result == 1);
    CHECK(value == 9);

    std::thread t2([&] { result = spindle::select(on_recv(a), on_timeout(20ms)); });
    spindle::blocking([&] { t2.join(); });
    CHECK(result == 1);
  });
}
