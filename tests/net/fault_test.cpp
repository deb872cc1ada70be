// Faults: resets, closes racing parked fibers, a dead peer, descriptor
// exhaustion, and a CPU hog that must not delay another P's I/O.
#include <doctest/doctest.h>
#include <spindle/net/conn.hpp>
#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>
#include <vector>

#include "../support/child.hpp"
#include "../support/net.hpp"

using namespace std::chrono_literals;
namespace net = spindle::net;

namespace {
net::Listener listen_local() {
  auto ln = net::Listener::listen("127.0.0.1", 0);
  REQUIRE(ln.ok());
  return std::move(*ln);
}
}  // namespace

TEST_CASE("peer reset mid-read is an error, not a crash") {
  spindle::run({}, [] {
    net::Listener ln = listen_local();
    std::error_code seen;
    spindle::WaitGroup wg;
    wg.add(1);
    spindle::go([&] {
      auto c = ln.accept();
      char buf[64];
      auto n = c->read_some(buf, sizeof buf);  // parks: the peer sends nothing
      seen = n.error();
      wg.done();
    });
    int fd =
        spindle::blocking([&] { return spindle::testing::blocking_connect(ln.address().port()); });
    spindle::sleep_for(20ms);  // let the reader park
    linger lg{1, 0};           // close with RST
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(fd);
    wg.wait();
    CHECK(seen == std::errc::connection_reset);
  });
}

TEST_CASE("close wakes a fiber parked on the same socket, and a parked accept") {
  spindle::run({}, [] {
    net::Listener ln = listen_local();
    std::error_code read_error, accept_error;
    spindle::WaitGroup wg;
    wg.add(2);
    auto c = net::dial("127.0.0.1", ln.address().port());
    REQUIRE(c.ok());
    net::Conn server = std::move(*ln.accept());
    spindle::go([&] {
      char buf[8];
      read_error = c->read_some(buf, sizeof buf).error();
      wg.done();
    });
    spindle::go([&] {
      accept_error = ln.accept().error();
      wg.done();
    });
    spindle::sleep_for(20ms);  // both are parked now
    c->close();
    ln.close();
    wg.wait();
    CHECK(read_error == net::Errc::closed);
    CHECK(accept_error == net::Errc::closed);
    CHECK(ln.accept().error() == net::Errc::closed);
  });
}

TEST_CASE("accept racing close: every accept returns, none hangs") {
  spindle::run({}, [] {
    for (int round = 0; round < 200; ++round) {
      net::Listener ln = listen_local();
      spindle::WaitGroup wg;
      wg.add(1);
      spindle::go([&] {
        (void)ln.accept();
        wg.done();
      });
      if (round % 2) spindle::yield();
      ln.close();
      wg.wait();
    }
  });
}

TEST_CASE("writing to a closed peer is EPIPE, not SIGPIPE") {
  spindle::run({}, [] {
    net::Listener ln = listen_local();
    auto c = net::dial("127.0.0.1", ln.address().port());
    REQUIRE(c.ok());
    { auto server = ln.accept(); }  // accepted and closed at once
    spindle::sleep_for(20ms);
    std::string chunk(64 * 1024, 'x');
    std::error_code ec;
    for (int i = 0; i < 100 && !ec; ++i) ec = c->write_all(chunk.data(), chunk.size()).error();
    CHECK((ec == std::errc::broken_pipe || ec == std::errc::connection_reset));
  });
}

TEST_CASE("out of descriptors: accept backs off, then recovers") {
  auto r = spindle::testing::run_in_child([] {
    spindle::run({}, [] {
      net::Listener ln = listen_local();
      std::atomic<int> accepted{0};
      std::vector<net::Conn> held;
      spindle::go([&] {
        for (;;) {
          auto c = ln.accept();
          if (!c) return;
          held.push_back(std::move(*c));
          accepted.fetch_add(1);
        }
      });
      // The clients' sockets exist before the limit drops (connect() needs
      // no new descriptor), so only the server runs out: it can accept 5 of
      // the 20, the rest wait in the backlog.
      constexpr int kClients = 20, kRoom = 5;
      std::vector<int> clients;
      for (int i = 0; i < kClients; ++i) clients.push_back(::socket(AF_INET, SOCK_STREAM, 0));
      rlimit r{};
      getrlimit(RLIMIT_NOFILE, &r);
      int open_now = 0;
      for (int fd = 0; fd < 4096; ++fd) open_now += fcntl(fd, F_GETFD) != -1;
      rlimit low = r;
      low.rlim_cur = static_cast<rlim_t>(open_now + kRoom);
      setrlimit(RLIMIT_NOFILE, &low);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(ln.address().port());
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      int connected = 0;
      for (int fd : clients)
        connected += spindle::blocking([&] {
                       return ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
                     }) == 0;
      spindle::sleep_for(300ms);
      int before = accepted.load();
      setrlimit(RLIMIT_NOFILE, &r);  // descriptors free up: the rest are accepted
      spindle::sleep_for(1200ms);    // longer than the longest back-off
      int after = accepted.load();
      std::fprintf(stderr, "connected=%d accepted before=%d after=%d\n", connected, before, after);
      for (int fd : clients) ::close(fd);
      ln.close();
      std::_Exit(connected == kClients && before < kClients && after == kClients ? 0 : 1);
    });
  });
  CAPTURE(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("backing off") != std::string::npos);
  CHECK(r.err.find("backing off") == r.err.rfind("backing off"));  // logged once
}

TEST_CASE("a CPU-bound fiber on one P does not delay I/O on the other") {
  spindle::Config cfg;
  cfg.procs = 2;
  std::vector<double> rtts_ms;
  spindle::run(cfg, [&] {
    net::Listener ln = listen_local();
    spindle::go([&] {
      auto c = ln.accept();
      char buf[64];
      for (;;) {
        auto n = c->read_some(buf, sizeof buf);
        if (!n || *n == 0 || !c->write_all(buf, *n)) return;
      }
    });
    // The hog must be gone before this fiber returns: `stop` lives on this
    // stack, and a hog still spinning would keep run() from returning.
    std::atomic<bool> stop{false};
    spindle::WaitGroup hog_done;
    hog_done.add(1);
    spindle::go([&] {  // hogs its P: no scheduling point at all
      while (!stop.load(std::memory_order_relaxed)) {
      }
      hog_done.done();
    });
    // A plain thread measures round trips while the hog runs.
    std::thread client([&] {
      int fd = spindle::testing::blocking_connect(ln.address().port());
      char b = 'x';
      for (int i = 0; i < 100; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        (void)!::write(fd, &b, 1);
        (void)!::read(fd, &b, 1);
        rtts_ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count());
        std::this_thread::sleep_for(2ms);
      }
      ::close(fd);
      stop = true;
    });
    spindle::blocking([&] { client.join(); });
    hog_done.wait();
    ln.close();
  });
  double worst = 0;
  for (double r : rtts_ms) worst = std::max(worst, r);
  CAPTURE(worst);
  CHECK(rtts_ms.size() == 100);
  CHECK(worst < 15.0);  // one time slice (10 ms) plus slack
}
