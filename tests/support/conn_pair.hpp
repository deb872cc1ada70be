// Both ends of one loopback TCP connection, made inside a running runtime.
#pragma once

#include <doctest/doctest.h>
#include <spindle/net/conn.hpp>

#include <utility>

namespace spindle::testing {

struct ConnPair {
  net::Listener ln;  // kept open: some tests accept or close through it
  net::Conn client, server;
};

inline ConnPair connected_pair() {
  ConnPair p;
  auto ln = net::Listener::listen("127.0.0.1", 0);
  REQUIRE(ln.ok());
  p.ln = std::move(*ln);
  auto c = net::dial("127.0.0.1", p.ln.address().port());
  REQUIRE(c.ok());
  p.client = std::move(*c);
  auto s = p.ln.accept();
  REQUIRE(s.ok());
  p.server = std::move(*s);
  return p;
}

}  // namespace spindle::testing
