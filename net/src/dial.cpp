#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "spindle/context.hpp"
#include "spindle/net/conn.hpp"
#include "spindle/runtime.hpp"
#include "spindle/timer.hpp"
#include "syscall.hpp"

namespace spindle::net {

using detail::errno_code;

namespace {

struct AddrinfoFree {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};
using Addrinfo = std::unique_ptr<addrinfo, AddrinfoFree>;

// getaddrinfo may block for seconds: run it as a blocking call so the P
// moves on (Go resolves on a thread for the same reason).
Result<Addrinfo> resolve(std::string_view host, std::uint16_t port) {
  std::string h(host), service = std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc =
      spindle::blocking([&] { return getaddrinfo(h.c_str(), service.c_str(), &hints, &found); });
  if (rc != 0)
    return rc == EAI_SYSTEM ? errno_code(errno) : std::make_error_code(std::errc::host_unreachable);
  return Addrinfo(found);
}

}  // namespace

namespace {

// Connects to the first of host's addresses that answers; connect(addr)
// does one attempt. A timeout or cancellation ends the search.
template <class Connect>
Result<Conn> dial_each(std::string_view host, std::uint16_t port, Connect connect) {
  auto list = resolve(host, port);
  if (!list) return list.error();
  std::error_code last = std::make_error_code(std::errc::host_unreachable);
  for (const addrinfo* ai = list->get(); ai; ai = ai->ai_next) {
    Address addr;
    std::memcpy(&addr.storage, ai->ai_addr, ai->ai_addrlen);
    addr.length = ai->ai_addrlen;
    auto conn = connect(addr);
    if (conn) return conn;
    last = conn.error();
    if (last == Errc::timeout || last == Errc::canceled) break;
  }
  return last;
}

}  // namespace

Result<Conn> dial(std::string_view host, std::uint16_t port, std::chrono::milliseconds timeout) {
  Deadline deadline = Clock::now() + timeout;
  return dial_each(host, port, [&](const Address& a) { return Conn::connect(a, deadline); });
}

Result<Conn> dial(std::string_view host, std::uint16_t port, const Context& ctx) {
  if (std::error_code ec = detail::context_error(ctx)) return ec;
  return dial_each(host, port, [&](const Address& a) { return Conn::connect(a, ctx); });
}

}  // namespace spindle::net
