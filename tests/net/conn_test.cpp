// TCP through the netpoller: echo at scale, large transfers, deadlines,
// dial, IPv6, half-close.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <spindle/net/conn.hpp>
#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include <atomic>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "../support/child.hpp"
#include "../support/conn_pair.hpp"
#include "../support/net.hpp"

using namespace std::chrono_literals;
namespace net = spindle::net;
using spindle::testing::kScale;

namespace {

// Go's archetypical echo server: a listener fiber and a fiber per connection.
void echo_server(net::Listener& ln) {
  spindle::go([&ln] {
    for (;;) {
      auto conn = ln.accept();
      if (!conn) return;  // closed
      spindle::go([c = std::move(*conn)]() mutable {
        char buf[16 * 1024];
        for (;;) {
          auto n = c.read_some(buf, sizeof buf);
          if (!n || *n == 0 || !c.write_all(buf, *n)) return;
        }
      });
    }
  });
}

net::Listener listen_local() {
  auto ln = net::Listener::listen("127.0.0.1", 0);
  REQUIRE(ln.ok());
  return std::move(*ln);
}

std::string random_bytes(std::size_t n) {
  std::string s(n, '\0');
  std::mt19937_64 rng(n);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Writes `data` from one fiber and reads it back in another (both on the
// same connection), returning what came back.
std::string round_trip(net::Conn& c, const std::string& data) {
  spindle::WaitGroup wg;
  wg.add(1);
  spindle::go([&] {
    REQUIRE(c.write_all(data.data(), data.size()).ok());
    wg.done();
  });
  std::string back(data.size(), '\0');
  REQUIRE(c.read_full(back.data(), back.size()).ok());
  wg.wait();
  return back;
}

}  // namespace

TEST_CASE("echo with 10,000 concurrent connections from another process") {
  const int conns = 10'000 / static_cast<int>(kScale);
  spindle::testing::raise_fd_limit(conns + 1000);
  std::string out;
  int status = -1;
  spindle::run({}, [&] {
    net::Listener ln = listen_local();
    echo_server(ln);
    // The clients: a Python process opens every connection, then sends on
    // each and checks each echo, so all are open at once.
    std::string cmd =
        "python3 -c \"import socket,resource,sys\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE,(" +
        std::to_string(conns + 100) +
        ",)*2)\n"
        "cs=[socket.create_connection(('127.0.0.1'," +
        std::to_string(ln.address().port()) + ")) for _ in range(" + std::to_string(conns) +
        ")]\n"
        "[c.sendall(b'hello %d' % i) for i, c in enumerate(cs)]\n"
        "bad=sum(c.recv(64) != b'hello %d' % i for i, c in enumerate(cs))\n"
        "print('bad', bad)\" 2>&1";
    out = spindle::blocking([&] {
      std::string text;
      FILE* p = popen(cmd.c_str(), "r");
      char buf[256];
      while (fgets(buf, sizeof buf, p)) text += buf;
      status = pclose(p);
      return text;
    });
    ln.close();
  });
  CAPTURE(out);
  CHECK(status == 0);
  CHECK(out == "bad 0\n");
}

TEST_CASE("1 MiB and 64 MiB transfers arrive intact") {
  spindle::run({}, [] {
    net::Listener ln = listen_local();
    echo_server(ln);
    auto c = net::dial("127.0.0.1", ln.address().port());
    REQUIRE(c.ok());
    for (std::size_t size : {std::size_t{1} << 20, std::size_t{64} << 20}) {
      std::string data = random_bytes(size);
      CHECK(round_trip(*c, data) == data);
    }
    ln.close();
  });
}

TEST_CASE("read deadline: the read times out and the connection stays usable") {
  spindle::run({}, [] {
    net::Listener ln = listen_local();
    echo_server(ln);
    auto c = net::dial("127.0.0.1", ln.address().port());
    REQUIRE(c.ok());
    auto start = net::Clock::now();
    c->set_read_deadline(start + 50ms);
    char buf[16];
    auto n = c->read_some(buf, sizeof buf);
    CHECK(n.error() == net::Errc::timeout);
    CHECK(net::Clock::now() - start >= 50ms);
    c->set_read_deadline(net::kNoDeadline);
    CHECK(round_trip(*c, "still here") == "still here");
    ln.close();
  });
}

TEST_CASE("write deadline on a peer that never reads") {
  spindle::run({}, [] {
    net::Listener ln = listen_local();
    net::Conn server_side;
    spindle::WaitGroup accepted;
    accepted.add(1);
    spindle::go([&] {
      server_side = std::move(*ln.accept());  // and never read from it
      accepted.done();
    });
    auto c = net::dial("127.0.0.1", ln.address().port());
    REQUIRE(c.ok());
    accepted.wait();
    c->set_write_deadline(net::Clock::now() + 100ms);
    std::string chunk(1 << 20, 'x');
    std::error_code ec;
    for (int i = 0; i < 1000 && !ec; ++i) ec = c->write_all(chunk.data(), chunk.size()).error();
    CHECK(ec == net::Errc::timeout);
    ln.close();
  });
}

// Keeps what the kernel holds in flight small (a few hundred KiB rather
// than megabytes of autotuned buffers), so a slow reader makes writes wait.
void small_buffers(net::Conn& c) {
  int size = 64 * 1024;
  REQUIRE(setsockopt(c.fd(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0);
  REQUIRE(setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size) == 0);
}

TEST_CASE("write timeout: each wait is bounded, not the whole write") {
  spindle::run({}, [] {
    spindle::testing::ConnPair p = spindle::testing::connected_pair();
    small_buffers(p.client);
    small_buffers(p.server);
    constexpr std::size_t kTotal = 4 << 20;
    spindle::WaitGroup drained;
    drained.add(1);
    spindle::go([&] {  // a slow but steady reader: 128 KiB every 50 ms
      std::vector<char> buf(128 * 1024);
      for (std::size_t got = 0; got < kTotal;) {
        spindle::sleep_for(50ms);
        auto n = p.server.read_some(buf.data(), buf.size());
        REQUIRE(n.ok());
        got += *n;
      }
      drained.done();
    });
    p.client.set_write_timeout(300ms);
    std::string data(kTotal, 'x');
    auto start = net::Clock::now();
    CHECK(p.client.write_all(data.data(), data.size()).ok());
    CHECK(net::Clock::now() - start > 300ms);  // a deadline would have cut it
    drained.wait();
  });
}

TEST_CASE("write timeout on a peer that never reads; read timeout on one that sends nothing") {
  spindle::run({}, [] {
    spindle::testing::ConnPair p = spindle::testing::connected_pair();
    p.client.set_write_timeout(100ms);
    std::string chunk(1 << 20, 'x');
    std::error_code ec;
    for (int i = 0; i < 1000 && !ec; ++i)
      ec = p.client.write_all(chunk.data(), chunk.size()).error();
    CHECK(ec == net::Errc::timeout);

    p.server.set_read_timeout(50ms);
    std::vector<char> buf(1 << 20);
    std::size_t got = 0;
    for (;;) {  // take what the writer left, then wait for more in vain
      auto start = net::Clock::now();
      auto n = p.server.read_some(buf.data(), buf.size());
      if (!n) {
        CHECK(n.error() == net::Errc::timeout);
        CHECK(net::Clock::now() - start >= 50ms);
        break;
      }
      got += *n;
      REQUIRE(got <= 1000u << 20);
    }
    // A deadline replaces the timeout.
    p.server.set_read_deadline(net::kNoDeadline);
    p.client.set_write_deadline(net::kNoDeadline);
    CHECK(p.client.write_all("!", 1).ok());
  });
}

TEST_CASE("dial: names resolve, a closed port is refused, IPv6 loopback works") {
  spindle::run({}, [] {
    net::Listener ln = listen_local();
    echo_server(ln);
    auto by_name = net::dial("localhost", ln.address().port());
    // localhost may resolve to ::1 first; the listener is IPv4 only, so
    // dial must fall through to 127.0.0.1.
    REQUIRE(by_name.ok());
    CHECK(round_trip(*by_name, "named") == "named");
    std::uint16_t port = ln.address().port();
    ln.close();
    auto refused = net::dial("127.0.0.1", port);
    CHECK(refused.error() == std::errc::connection_refused);

    auto ln6 = net::Listener::listen("::1", 0);
    REQUIRE(ln6.ok());
    echo_server(*ln6);
    auto c6 = net::dial("::1", ln6->address().port());
    REQUIRE(c6.ok());
    CHECK(c6->remote_address().to_string().rfind("[::1]:", 0) == 0);
    CHECK(round_trip(*c6, "six") == "six");
    ln6->close();
  });
}

TEST_CASE("half-close: the peer reads EOF and can still answer") {
  spindle::run({}, [] {
    net::Listener ln = listen_local();
    spindle::go([&] {
      auto c = ln.accept();
      std::string got;
      char buf[64];
      for (;;) {
        auto n = c->read_some(buf, sizeof buf);
        if (!n || *n == 0) break;
        got.append(buf, *n);
      }
      std::string reply = "got " + got;
      (void)c->write_all(reply.data(), reply.size());
    });
    auto c = net::dial("127.0.0.1", ln.address().port());
    REQUIRE(c.ok());
    REQUIRE(c->write_all("ping", 4).ok());
    REQUIRE(c->shutdown_write().ok());
    char buf[16] = {};
    CHECK(c->read_full(buf, 8).ok());
    CHECK(std::string(buf, 8) == "got ping");
    ln.close();
  });
}

// After a short read, reads wait for the next edge instead of reading again
// (Conn::drained). A FIN that arrives with the data raises no edge of its
// own, so each round sends data and FIN back to back — often one edge —
// while the server is parked or about to park: the read after the data
// must still see EOF at once, not hang until the deadline.
TEST_CASE("wait-first after a short read still sees a FIN that came with the data") {
  spindle::Config cfg;
  cfg.procs = 2;
  spindle::run(cfg, [] {
    net::Listener ln = listen_local();
    int eofs = 0, drained_waits = 0;
    for (int round = 0; round < 200; ++round) {
      auto c = net::dial("127.0.0.1", ln.address().port());
      REQUIRE(c.ok());
      auto s = ln.accept();
      REQUIRE(s.ok());
      s->set_read_deadline(net::Clock::now() + 2s);
      spindle::WaitGroup wg;
      wg.add(1);
      spindle::go([&] {  // on the other P, often while the server waits
        if (round % 2) spindle::sleep_for(100us);
        REQUIRE(c->write_all("ping", 4).ok());
        REQUIRE(c->shutdown_write().ok());
        wg.done();
      });
      char buf[64];
      std::size_t got = 0;
      for (;;) {
        drained_waits += s->drained();
        auto n = s->read_some(buf, sizeof buf);
        if (!n) FAIL_CHECK("round " << round << ": " << n.error().message());
        if (!n || *n == 0) break;
        got += *n;
      }
      CHECK(got == 4);
      ++eofs;
      wg.wait();
    }
    CHECK(eofs == 200);
    MESSAGE("reads that waited first: " << drained_waits);
    CHECK(drained_waits > 0);  // the path under test was taken
  });
}
