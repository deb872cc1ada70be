// Conn::when_readable: the fiber-less readiness wait. Each arming ends in
// exactly one callback (readable, its deadline, close()) unless cancelled,
// and the callback may start fibers.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <spindle/net/conn.hpp>
#include <spindle/runtime.hpp>
#include <spindle/stats.hpp>
#include <spindle/waitgroup.hpp>

#include "../support/conn_pair.hpp"
#include "../support/net.hpp"

#include <atomic>
#include <functional>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace net = spindle::net;

namespace {

// What a callback saw. The callback itself must not block: it records the
// outcome and starts a fiber that reports it (spindle::go from the poller,
// a timer or close()'s caller is what the API promises).
struct Probe {
  std::atomic<int> calls{0};
  std::error_code outcome;
  spindle::WaitGroup reported;

  Probe() { reported.add(1); }
  static void on_readable(void* self, std::error_code outcome) noexcept {
    auto* p = static_cast<Probe*>(self);
    p->outcome = outcome;
    if (p->calls.fetch_add(1) == 0) spindle::go([p] { p->reported.done(); });
  }
};

// A connected pair inside the runtime: {server side, client side}.
std::pair<net::Conn, net::Conn> conn_pair() {
  auto p = spindle::testing::connected_pair();
  return {std::move(p.server), std::move(p.client)};
}

void in_runtime(const std::function<void()>& f, int procs = 2) {
  spindle::Config cfg;
  cfg.procs = procs;
  spindle::run(cfg, f);
}

}  // namespace

TEST_CASE("when_readable: the peer's bytes start the callback once, and they are still there") {
  in_runtime([] {
    auto [s, c] = conn_pair();
    Probe p;
    REQUIRE(s.when_readable(net::kNoDeadline, Probe::on_readable, &p));
    spindle::sleep_for(20ms);
    CHECK(p.calls.load() == 0);  // nothing sent yet
    REQUIRE(c.write_all("x", 1).ok());
    p.reported.wait();
    CHECK(!p.outcome);
    char b = 0;
    auto n = s.read_some(&b, 1);
    REQUIRE(n.ok());
    CHECK(*n == 1);
    CHECK(b == 'x');
    spindle::sleep_for(20ms);
    CHECK(p.calls.load() == 1);
  });
}

TEST_CASE("when_readable: the deadline ends the wait with Errc::timeout") {
  in_runtime([] {
    auto [s, c] = conn_pair();
    Probe p;
    auto start = net::Clock::now();
    REQUIRE(s.when_readable(start + 50ms, Probe::on_readable, &p));
    p.reported.wait();
    CHECK(p.outcome == net::Errc::timeout);
    CHECK(net::Clock::now() - start >= 50ms);
    // The connection stays usable: a second wait sees the bytes.
    Probe q;
    REQUIRE(s.when_readable(net::kNoDeadline, Probe::on_readable, &q));
    REQUIRE(c.write_all("y", 1).ok());
    q.reported.wait();
    CHECK(!q.outcome);
    CHECK(p.calls.load() == 1);
  });
}

TEST_CASE("when_readable: close() runs the callback with Errc::closed before it returns") {
  in_runtime([] {
    auto [s, c] = conn_pair();
    Probe p;
    REQUIRE(s.when_readable(net::Clock::now() + 10s, Probe::on_readable, &p));
    s.close();
    CHECK(p.calls.load() == 1);
    p.reported.wait();
    CHECK(p.outcome == net::Errc::closed);
    Probe q;
    CHECK_FALSE(s.when_readable(net::kNoDeadline, Probe::on_readable, &q));  // closed: not armed
  });
}

// The deadline's timer outlives an arming that an edge took (it is lazy,
// net/README.md): the next arming's later deadline must hold, an earlier one
// must be met, and close() must stop it, or its reference keeps the socket
// open.
TEST_CASE("when_readable: after an edge, the next arming's deadline is its own") {
  in_runtime([] {
    auto [s, c] = conn_pair();
    char b;
    auto take_by_edge = [&, &s = s, &c = c](net::Deadline deadline) {
      Probe p;
      REQUIRE(s.when_readable(deadline, Probe::on_readable, &p));
      REQUIRE(c.write_all("x", 1).ok());
      p.reported.wait();
      CHECK(!p.outcome);
      REQUIRE(s.read_some(&b, 1).ok());
    };
    auto time_out = [&, &s = s](net::Deadline deadline) {
      Probe p;
      REQUIRE(s.when_readable(deadline, Probe::on_readable, &p));
      p.reported.wait();
      CHECK(p.outcome == net::Errc::timeout);
      CHECK(net::Clock::now() >= deadline);
    };
    auto start = net::Clock::now();
    take_by_edge(start + 50ms);
    time_out(start + 300ms);  // the 50 ms timer fires first, and waits on
    take_by_edge(net::Clock::now() + 10s);
    auto soon = net::Clock::now() + 50ms;
    time_out(soon);
    CHECK(net::Clock::now() - soon < 5s);  // not the 10 s of the timer it replaced
    take_by_edge(net::Clock::now() + 10s);
    int fd = s.fd();
    s.close();
    s = net::Conn();  // the owner lets go: the last reference closes the fd
    CHECK(::fcntl(fd, F_GETFD) == -1);
  });
}

TEST_CASE("when_readable: cancel takes the callback back, and only once") {
  in_runtime([] {
    auto [s, c] = conn_pair();
    Probe p;
    REQUIRE(s.when_readable(net::Clock::now() + 30ms, Probe::on_readable, &p));
    CHECK_THROWS_AS(s.when_readable(net::kNoDeadline, Probe::on_readable, &p), std::logic_error);
    CHECK(s.cancel_when_readable());
    CHECK_FALSE(s.cancel_when_readable());
    REQUIRE(c.write_all("z", 1).ok());
    spindle::sleep_for(80ms);  // past the deadline, with bytes there
    CHECK(p.calls.load() == 0);
    char b = 0;
    CHECK(s.read_some(&b, 1).ok());  // a fiber may read again
  });
}

// Readiness, the deadline and close() race on many connections: every
// arming has exactly one outcome, and re-arming from the fiber the callback
// started works.
TEST_CASE("when_readable: readiness vs deadline vs close, exactly one outcome per arming") {
  in_runtime([] {
    constexpr int kConns = 64, kRounds = 20;
    struct Racer {
      net::Conn s, c;
      std::atomic<int> armed{0}, outcomes{0};
      int rounds = 0;  // touched only by the fiber each outcome starts, one at a time
      spindle::WaitGroup* done = nullptr;

      void arm() {
        char buf[64];
        while (!s.when_readable(net::Clock::now() + 1ms, on, this)) {
          if (!s.is_open()) return done->done();
          (void)s.try_read(buf, sizeof buf);  // readiness was pending: take it
        }
        armed.fetch_add(1);
      }
      static void on(void* self, std::error_code outcome) noexcept {
        auto* r = static_cast<Racer*>(self);
        r->outcomes.fetch_add(1);
        spindle::go([r, outcome] {
          char buf[64];
          if (!outcome) (void)r->s.try_read(buf, sizeof buf);  // drain what woke us
          if (outcome == net::Errc::closed || ++r->rounds == kRounds) return r->done->done();
          r->arm();
        });
      }
    };
    std::vector<Racer> racers(kConns);
    spindle::WaitGroup done;
    done.add(kConns);
    for (auto& r : racers) {
      std::tie(r.s, r.c) = conn_pair();
      r.done = &done;
      r.arm();
    }
    // A byte for each connection about every millisecond, racing the 1 ms
    // deadlines.
    for (int i = 0; i < kRounds; ++i) {
      for (auto& r : racers) (void)r.c.write_all("p", 1);
      spindle::sleep_for(1ms);
    }
    for (auto& r : racers) r.s.close();  // ends the waits still armed
    done.wait();
    for (auto& r : racers) CHECK(r.outcomes.load() == r.armed.load());
  });
}

// Callbacks run by a poll that an M holding a P makes while looking for
// work spawn their fibers onto that P's own queue. The scheduler must run
// them before it steals (stealing copies into an empty queue only): it used
// to steal over them, and those fibers were never run.
TEST_CASE("when_readable: bursts of callbacks that spawn fibers lose none") {
  constexpr int kConns = 1000, kRounds = 10;
  spindle::testing::raise_fd_limit(3 * kConns + 100);
  in_runtime([] {
    struct Echo {
      net::Conn s, c;
      std::atomic<int>* started = nullptr;
      void arm() {
        char buf[64];
        do {
          if (!s.is_open()) return;
          (void)s.try_read(buf, sizeof buf);  // drain what woke us
        } while (!s.when_readable(net::kNoDeadline, on, this));
      }
      static void on(void* self, std::error_code outcome) noexcept {
        auto* e = static_cast<Echo*>(self);
        if (outcome) return;
        spindle::go([e] {
          e->arm();
          e->started->fetch_add(1);  // after arming: close() below races no arm()
        });
      }
    };
    std::atomic<int> started{0};
    std::vector<Echo> conns(kConns);
    for (auto& e : conns) {
      std::tie(e.s, e.c) = conn_pair();
      e.started = &started;
      e.arm();
    }
    for (int round = 1; round <= kRounds; ++round) {
      // From two fibers, so both Ps are busy while the bytes land.
      spindle::WaitGroup sent;
      sent.add(2);
      for (int half = 0; half < 2; ++half)
        spindle::go([&, half] {
          for (int i = half; i < kConns; i += 2) (void)conns[i].c.write_all("b", 1);
          sent.done();
        });
      sent.wait();
      auto until = net::Clock::now() + 5s;
      while (started.load() < round * kConns && net::Clock::now() < until) spindle::sleep_for(1ms);
      REQUIRE(started.load() == round * kConns);  // a lost fiber leaves it short
    }
    for (auto& e : conns) e.s.close();
  });
}

TEST_CASE(
    "when_readable: the callbacks of one poll, and the fibers they start, run in edge order") {
  // One P: the writer fiber makes every socket readable, in order, before
  // it parks, and the poll that follows finds all the edges at once.
  constexpr int kConns = 16;
  in_runtime(
      [] {
        struct Order {
          std::mutex mu;
          std::vector<int> called, ran;  // guarded by mu
          spindle::WaitGroup all;
        };
        struct Arg {
          Order* order;
          int index;
          static void on(void* self, std::error_code) noexcept {
            auto* a = static_cast<Arg*>(self);
            std::lock_guard lock(a->order->mu);
            a->order->called.push_back(a->index);
            spindle::go([a] {
              std::lock_guard lock(a->order->mu);
              a->order->ran.push_back(a->index);
              if (a->order->ran.size() == kConns) a->order->all.done();
            });
          }
        };
        Order order;
        order.all.add(1);
        std::vector<std::pair<net::Conn, net::Conn>> conns;
        std::vector<Arg> args(kConns);
        for (int i = 0; i < kConns; ++i) {
          conns.push_back(conn_pair());
          args[i] = {&order, i};
          REQUIRE(conns[i].first.when_readable(net::kNoDeadline, Arg::on, &args[i]));
        }
        for (auto& [s, c] : conns) REQUIRE(c.write_all("x", 1).ok());
        order.all.wait();
        std::vector<int> in_order(kConns);
        std::iota(in_order.begin(), in_order.end(), 0);
        CHECK(order.called == in_order);
        CHECK(order.ran == in_order);  // through runnext, the last would run first
      },
      1);
}

// With one P, an M that finds no work gives the P up and blocks in the
// poller. The fibers its poll's callbacks start must come back with the P
// it takes again: they used to go to the global queue and wake a second M
// for the idle P, and the two Ms then handed the P back and forth with a
// futex wake-up per poll (an HTTP keep-alive request's fiber starts there).
TEST_CASE("when_readable: fibers the idle poller's callbacks start run on that M") {
  constexpr int kRoundTrips = 200;
  std::thread client;
  int threads = 0, served = 0;
  in_runtime(
      [&] {
        struct Echo {
          explicit Echo(net::Conn c) : conn(std::move(c)) {}
          net::Conn conn;
          int served = 0;
          spindle::WaitGroup done;
          void arm() {
            if (!conn.when_readable(net::kNoDeadline, on, this)) spindle::go([this] { reply(); });
          }
          void reply() {
            char b;
            auto n = conn.try_read(&b, 1);
            if (n && *n == 0) return done.done();  // the client is through
            if (n && conn.write_all(&b, 1)) ++served;
            arm();
          }
          static void on(void* self, std::error_code outcome) noexcept {
            auto* e = static_cast<Echo*>(self);
            if (outcome) return e->done.done();
            spindle::go([e] { e->reply(); });
          }
        };
        auto ln = net::Listener::listen("127.0.0.1", 0);
        REQUIRE(ln.ok());
        // A client outside the runtime: between its messages the runtime idles.
        client = std::thread([port = ln->address().port()] {
          int fd = spindle::testing::blocking_connect(port);
          char b = 'x';
          for (int i = 0; i < kRoundTrips && fd >= 0; ++i)
            if (::send(fd, &b, 1, MSG_NOSIGNAL) != 1 || ::recv(fd, &b, 1, 0) != 1) break;
          if (fd >= 0) ::close(fd);
        });
        auto conn = ln->accept();
        REQUIRE(conn.ok());
        Echo echo(std::move(*conn));
        echo.done.add(1);
        echo.arm();
        echo.done.wait();
        served = echo.served;
        threads = spindle::stats().threads;
        ln->close();
      },
      1);
  client.join();
  CHECK(served == kRoundTrips);
  CHECK(threads == 1);
}
