#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <utility>

#include "spindle/channel.hpp"
#include "spindle/context.hpp"
#include "spindle/net/conn.hpp"
#include "spindle/runtime.hpp"
#include "syscall.hpp"

namespace spindle::net {

using detail::errno_code;

namespace {

// Parses an IP literal; "" and "::" mean every address (IPv6, dual stack).
Result<Address> parse_host(std::string_view host, std::uint16_t port) {
  Address a;
  std::string h(host.empty() ? "::" : host);
  auto& v4 = reinterpret_cast<sockaddr_in&>(a.storage);
  auto& v6 = reinterpret_cast<sockaddr_in6&>(a.storage);
  if (inet_pton(AF_INET, h.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    a.length = sizeof v4;
  } else if (inet_pton(AF_INET6, h.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    a.length = sizeof v6;
  } else {
    return std::make_error_code(std::errc::invalid_argument);
  }
  return a;
}

// Out of descriptors or buffers: transient, worth waiting out.
bool exhausted(int e) {
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

// Sleeps for d, or until ctx (if any) is done.
std::error_code back_off(std::chrono::milliseconds d, const Context* ctx) {
  if (!ctx) {
    spindle::sleep_for(d);
    return {};
  }
  spindle::select(spindle::on_recv(ctx->done(), [] {}), spindle::on_timeout(d));
  return detail::context_error(*ctx);
}

}  // namespace

Result<Listener> Listener::listen(std::string_view host, std::uint16_t port,
                                  const ListenOptions& opts) {
  auto addr = parse_host(host, port);
  if (!addr) return addr.error();
  int fd = ::socket(addr->storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_code(errno);
  int one = 1, zero = 0;
  bool ok = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            (!opts.reuse_port || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0) &&
            (addr->storage.ss_family != AF_INET6 ||
             setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) == 0) &&
            ::bind(fd, reinterpret_cast<sockaddr*>(&addr->storage), addr->length) == 0 &&
            ::listen(fd, opts.backlog) == 0;
  if (!ok) {
    std::error_code ec = errno_code(errno);
    ::close(fd);
    return ec;
  }
  Listener ln;
  ln.pd_ = detail::PollDesc::open(fd);
  return ln;
}

Listener::Listener(Listener&& other) noexcept {
  *this = std::move(other);
}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    reset();
    pd_ = std::exchange(other.pd_, nullptr);
    logged_exhaustion_ = other.logged_exhaustion_;
  }
  return *this;
}

Listener::~Listener() {
  reset();
}

void Listener::reset() noexcept {
  if (!pd_) return;
  pd_->close();
  std::exchange(pd_, nullptr)->release();
}

void Listener::close() noexcept {
  if (pd_) pd_->close();
}

Result<Conn> Listener::accept(const Context* ctx) {
  auto backoff = std::chrono::milliseconds(5);
  for (;;) {
    auto fd = detail::retry_io(pd_, detail::Dir::read, INT64_MAX, ctx, [&] {
      return ::accept4(pd_->fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    });
    if (fd) return Conn(*fd);
    int e = fd.error().category() == std::system_category() ? fd.error().value() : 0;
    if (e == ECONNABORTED) continue;  // the peer gave up while queued
    if (!exhausted(e)) return fd.error();
    if (!logged_exhaustion_) {
      logged_exhaustion_ = true;
      std::fprintf(stderr, "spindle: accept on %s: %s; backing off until descriptors free up\n",
                   address().to_string().c_str(), fd.error().message().c_str());
    }
    if (std::error_code ec = back_off(backoff, ctx)) return ec;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

Address Listener::address() const {
  Address a;
  a.length = sizeof a.storage;
  if (pd_) getsockname(pd_->fd(), reinterpret_cast<sockaddr*>(&a.storage), &a.length);
  return a;
}

}  // namespace spindle::net
