// BufReader/BufWriter over real connections.
#include <doctest/doctest.h>
#include <spindle/net/bufio.hpp>
#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include <string>

#include "../support/conn_pair.hpp"

namespace net = spindle::net;

namespace {
// Runs body(client, server) on a connected pair.
template <class Body>
void with_pair(Body body) {
  spindle::run({}, [&] {
    auto p = spindle::testing::connected_pair();
    body(p.client, p.server);
  });
}
}  // namespace

TEST_CASE("BufReader: parse from the buffer, buffer released when drained, grows for big reads") {
  with_pair([](net::Conn& client, net::Conn& server) {
    net::BufReader in(server);
    CHECK(in.capacity() == 0);  // nothing held before data arrives
    REQUIRE(client.write_all("GET / HTTP/1.1\r\n\r\nGET", 21).ok());
    std::string got;
    while (got.size() < 21) {
      auto n = in.fill();
      REQUIRE(n.ok());
      got = std::string(in.buffered());
    }
    CHECK(got == "GET / HTTP/1.1\r\n\r\nGET");
    in.consume(18);  // one request parsed; a pipelined one's start stays
    CHECK(in.buffered() == "GET");
    in.consume(3);
    CHECK(in.capacity() == 0);  // drained: given back

    // A large stream: the buffer grows past 4 KiB so reads stay few.
    std::string big(1 << 20, 'z');
    spindle::WaitGroup wg;
    wg.add(1);
    spindle::go([&] {
      REQUIRE(client.write_all(big.data(), big.size()).ok());
      wg.done();
    });
    std::size_t total = 0, reads = 0, peak = 0;
    while (total < big.size()) {
      auto n = in.fill();
      REQUIRE(n.ok());
      ++reads;
      total += in.buffered().size();
      peak = std::max(peak, in.capacity());
      in.consume(in.buffered().size());
    }
    wg.wait();
    CHECK(total == big.size());
    CHECK(peak == net::BufReader::kMaxBuffer);
    CHECK(reads < big.size() / 4096);
  });
}

TEST_CASE("BufWriter: small writes gathered, large ones sent through, order kept") {
  with_pair([](net::Conn& client, net::Conn& server) {
    net::BufWriter out(client, 64);
    REQUIRE(out.write("hello ").ok());
    REQUIRE(out.write("world ").ok());
    CHECK(out.buffered() == 12);
    std::string large(1000, 'L');
    REQUIRE(out.write(large).ok());  // goes out with the buffered 12 bytes
    CHECK(out.buffered() == 0);
    REQUIRE(out.write("!").ok());
    REQUIRE(out.flush().ok());
    std::string expect = "hello world " + large + "!";
    std::string got(expect.size(), '\0');
    REQUIRE(server.read_full(got.data(), got.size()).ok());
    CHECK(got == expect);
  });
}

// After a short read fill() waits before reading: data that arrived in
// between must still be reported (arming the wait re-checks readiness), and
// data that comes later must wake it.
TEST_CASE("BufReader: after a short read, data already there and data to come both arrive") {
  with_pair([](net::Conn& client, net::Conn& server) {
    net::BufReader in(server);
    for (int round = 0; round < 50; ++round) {
      REQUIRE(client.write_all("a", 1).ok());
      auto n = in.fill();  // short: 1 byte of 4 KiB
      REQUIRE(n.ok());
      CHECK(in.buffered() == "a");
      in.consume(1);
      REQUIRE(client.write_all("b", 1).ok());
      spindle::sleep_for(std::chrono::milliseconds(1));  // "b" is in the socket before fill() waits
      n = in.fill();
      REQUIRE(n.ok());
      CHECK(in.buffered() == "b");
      in.consume(1);
      spindle::WaitGroup wg;  // and now one that comes while fill() is parked
      wg.add(1);
      spindle::go([&] {
        spindle::sleep_for(std::chrono::milliseconds(1));
        REQUIRE(client.write_all("c", 1).ok());
        wg.done();
      });
      n = in.fill();
      REQUIRE(n.ok());
      CHECK(in.buffered() == "c");
      in.consume(1);
      wg.wait();
    }
  });
}
