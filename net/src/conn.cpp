#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "spindle/context.hpp"
#include "spindle/net/conn.hpp"
#include "spindle/timer.hpp"
#include "syscall.hpp"

namespace spindle::net {

using detail::Dir;
using detail::retry_io;

namespace {
constexpr auto relaxed = std::memory_order_relaxed;

// A direction's limit (detail::wait_deadline): a deadline is never
// negative, a timeout is stored negative, at least 1 ns, so that a timeout
// of 0 makes every wait time out at once.
std::int64_t to_deadline(Deadline d) {
  return d == kNoDeadline ? INT64_MAX : std::max<std::int64_t>(to_ns(d), 0);
}
std::int64_t to_timeout(std::chrono::nanoseconds d) {
  return -std::max<std::int64_t>(d.count(), 1);
}

// One recv, noting for the wait-first hint (Conn::drained) whether it left
// the socket empty.
ssize_t recv_once(detail::PollDesc* pd, void* buf, std::size_t len) {
  auto n = detail::sys_recv(pd->fd(), buf, len);
  pd->note_read(n, len);
  return n;
}

Status setopt(int fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, &value, sizeof value) == 0) return ok();
  return detail::errno_code(errno);
}
}  // namespace

std::uint16_t Address::port() const noexcept {
  if (storage.ss_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in&>(storage).sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6&>(storage).sin6_port);
}

std::string Address::to_string() const {
  char host[INET6_ADDRSTRLEN] = "?";
  if (storage.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(storage).sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(port());
  }
  inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(storage).sin6_addr, host, sizeof host);
  return "[" + std::string(host) + "]:" + std::to_string(port());
}

Conn::Conn(int fd) : pd_(detail::PollDesc::open(fd)) {
  (void)set_nodelay(true);
}

Result<Conn> Conn::connect_until(const Address& addr, std::int64_t deadline, const Context* ctx) {
  if (ctx)
    if (std::error_code ec = detail::context_error(*ctx)) return ec;
  int fd = ::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return detail::errno_code(errno);
  // Non-blocking: EINPROGRESS (or EINTR) means the handshake goes on.
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length);
  if (rc != 0 && errno != EINPROGRESS && errno != EINTR) {
    std::error_code ec = detail::errno_code(errno);
    ::close(fd);
    return ec;
  }
  Conn conn(fd);
  if (rc != 0) {
    if (std::error_code ec = conn.pd_->wait(Dir::write, deadline, ctx)) return ec;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) return detail::errno_code(err);
  }
  return conn;
}

Result<Conn> Conn::connect(const Address& addr, Deadline deadline) {
  return connect_until(addr, to_deadline(deadline), nullptr);
}

Result<Conn> Conn::connect(const Address& addr, const Context& ctx) {
  return connect_until(addr, INT64_MAX, &ctx);
}

Conn::Conn(Conn&& other) noexcept {
  *this = std::move(other);
}

Conn& Conn::operator=(Conn&& other) noexcept {
  if (this != &other) {
    reset();
    pd_ = std::exchange(other.pd_, nullptr);
    read_limit_.store(other.read_limit_.load(relaxed), relaxed);
    write_limit_.store(other.write_limit_.load(relaxed), relaxed);
  }
  return *this;
}

Conn::~Conn() {
  reset();
}

void Conn::reset() noexcept {
  if (!pd_) return;
  pd_->close();
  std::exchange(pd_, nullptr)->release();
}

void Conn::close() noexcept {
  if (pd_) pd_->close();
}

bool Conn::is_open() const noexcept {
  return pd_ && !pd_->closed();
}

int Conn::fd() const noexcept {
  return pd_ ? pd_->fd() : -1;
}

Result<std::size_t> Conn::read(void* buf, std::size_t len, const Context* ctx) {
  auto r = retry_io(
      pd_, Dir::read, read_limit_.load(relaxed), ctx, [&] { return recv_once(pd_, buf, len); },
      drained());
  if (!r) return r.error();
  // End of stream from our own close()'s shutdown, not from the peer.
  if (*r == 0 && len > 0 && pd_->closed()) return Errc::closed;
  return static_cast<std::size_t>(*r);
}

Result<std::size_t> Conn::try_read(void* buf, std::size_t len) {
  if (!pd_ || pd_->closed()) return Errc::closed;
  for (;;) {
    auto n = recv_once(pd_, buf, len);
    if (n > 0) return static_cast<std::size_t>(n);
    if (n == 0) {  // see read()
      if (len > 0 && pd_->closed()) return Errc::closed;
      return std::size_t{0};
    }
    if (errno != EINTR) return detail::failed(pd_, errno == EWOULDBLOCK ? EAGAIN : errno);
  }
}

Status Conn::wait_read(const Context* ctx) {
  if (!pd_) return Errc::closed;
  if (ctx)
    if (std::error_code ec = detail::context_error(*ctx)) return ec;
  if (std::error_code ec =
          pd_->wait(Dir::read, detail::wait_deadline(read_limit_.load(relaxed)), ctx))
    return ec;
  return ok();
}

bool Conn::drained() const noexcept {
  return pd_ && pd_->drained();
}

bool Conn::when_readable(Deadline deadline, ReadableFn fn, void* arg) {
  return pd_ && pd_->notify_readable(to_deadline(deadline), fn, arg);
}

bool Conn::cancel_when_readable() noexcept {
  return pd_ && pd_->cancel_notify();
}

Status Conn::read_all(void* buf, std::size_t len, const Context* ctx) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    auto n = read(p, len, ctx);
    if (!n) return n.error();
    if (*n == 0) return Errc::eof;
    p += *n;
    len -= *n;
  }
  return ok();
}

Status Conn::write(const void* buf, std::size_t len, const Context* ctx) {
  iovec iov{const_cast<void*>(buf), len};
  return writev(&iov, 1, ctx);
}

Status Conn::writev(iovec* iov, int count, const Context* ctx) {
  while (count > 0) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(count);
    // One buffer goes out with send(): the kernel's sendmsg copies in and
    // checks the msghdr and iovec array first.
    auto r = retry_io(pd_, Dir::write, write_limit_.load(relaxed), ctx, [&] {
      return count == 1 ? detail::sys_send(fd(), iov->iov_base, iov->iov_len)
                        : detail::sys_sendmsg(fd(), &msg);
    });
    if (!r) return r.error();
    // Skip what the kernel took; continue with the rest.
    auto n = static_cast<std::size_t>(*r);
    while (count > 0 && n >= iov->iov_len) {
      n -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + n;
      iov->iov_len -= n;
    }
  }
  return ok();
}

void Conn::set_read_deadline(Deadline d) noexcept {
  read_limit_.store(to_deadline(d), relaxed);
}
void Conn::set_write_deadline(Deadline d) noexcept {
  write_limit_.store(to_deadline(d), relaxed);
}
void Conn::set_deadline(Deadline d) noexcept {
  set_read_deadline(d);
  set_write_deadline(d);
}

void Conn::set_read_timeout(std::chrono::nanoseconds d) noexcept {
  read_limit_.store(to_timeout(d), relaxed);
}
void Conn::set_write_timeout(std::chrono::nanoseconds d) noexcept {
  write_limit_.store(to_timeout(d), relaxed);
}

Status Conn::shutdown_write() {
  if (::shutdown(fd(), SHUT_WR) == 0) return ok();
  return detail::errno_code(errno);
}

Status Conn::shutdown_read() {
  if (::shutdown(fd(), SHUT_RD) == 0) return ok();
  return detail::errno_code(errno);
}

Status Conn::set_nodelay(bool on) {
  return setopt(fd(), IPPROTO_TCP, TCP_NODELAY, on);
}

Status Conn::set_keepalive(bool on, std::chrono::seconds idle) {
  if (auto s = setopt(fd(), SOL_SOCKET, SO_KEEPALIVE, on); !s || !on) return s;
  return setopt(fd(), IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(idle.count()));
}

Address Conn::local_address() const {
  Address a;
  a.length = sizeof a.storage;
  getsockname(fd(), reinterpret_cast<sockaddr*>(&a.storage), &a.length);
  return a;
}

Address Conn::remote_address() const {
  Address a;
  a.length = sizeof a.storage;
  getpeername(fd(), reinterpret_cast<sockaddr*>(&a.storage), &a.length);
  return a;
}

}  // namespace spindle::net
