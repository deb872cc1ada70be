// The fiber side of every socket call: try the non-blocking syscall; on
// EAGAIN park on the poll descriptor until readiness, the deadline, the
// context (if any) or close(); retry. EINTR is retried at once. Each attempt
// is a scheduling point (preempt_point). A context that is done already
// fails the call before any syscall.
#pragma once

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "poll_desc.hpp"
#include "spindle/net/error.hpp"
#include "spindle/runtime.hpp"
#include "spindle/timer.hpp"

namespace spindle::net::detail {

// recv and send straight to the kernel. libc's wrappers are pthread
// cancellation points: each call enables and disables asynchronous
// cancellation around the syscall, two atomic read-modify-writes that
// nothing here uses (fibers are canceled through Context, never pthread_cancel),
// four per echoed message. Go's runtime makes its syscalls directly too.
// Under a sanitizer the wrappers stay: they are how it sees what the kernel
// reads and writes (ASan) and the order a socket gives (TSan).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline ssize_t sys_recv(int fd, void* buf, std::size_t len) {
  return ::recv(fd, buf, len, 0);
}
inline ssize_t sys_send(int fd, const void* buf, std::size_t len) {
  return ::send(fd, buf, len, MSG_NOSIGNAL);
}
inline ssize_t sys_sendmsg(int fd, const msghdr* msg) {
  return ::sendmsg(fd, msg, MSG_NOSIGNAL);
}
#else
inline ssize_t sys_recv(int fd, void* buf, std::size_t len) {
  return ::syscall(SYS_recvfrom, fd, buf, len, 0, static_cast<void*>(nullptr),
                   static_cast<void*>(nullptr));
}
inline ssize_t sys_send(int fd, const void* buf, std::size_t len) {
  return ::syscall(SYS_sendto, fd, buf, len, MSG_NOSIGNAL, static_cast<const void*>(nullptr), 0);
}
inline ssize_t sys_sendmsg(int fd, const msghdr* msg) {
  return ::syscall(SYS_sendmsg, fd, msg, MSG_NOSIGNAL);
}
#endif

inline std::error_code errno_code(int e) {
  return {e, std::system_category()};
}

// A syscall that failed because close() shut the socket down under it
// reports Errc::closed, as a later call would.
inline std::error_code failed(const PollDesc* pd, int e) {
  return pd->closed() ? make_error_code(Errc::closed) : errno_code(e);
}

// A Conn's stored limit for one direction: a deadline (now_ns() units,
// INT64_MAX: none), or, negative, a timeout in nanoseconds for each wait
// (Conn::set_read_timeout). The deadline of a wait that starts now.
inline std::int64_t wait_deadline(std::int64_t limit) noexcept {
  return limit < 0 ? now_ns() - limit : limit;
}

// op() returns the syscall's result (>= 0, or -1 with errno set). limit:
// see wait_deadline(), resolved when a wait starts, so that a timeout
// costs no clock read while the kernel takes or has the bytes at once.
// wait_first: the caller knows op() would say EAGAIN now (Conn::drained).
template <class Op>
auto retry_io(PollDesc* pd, Dir dir, std::int64_t limit, const Context* ctx, Op op,
              bool wait_first = false) -> Result<decltype(op())> {
  if (ctx)
    if (std::error_code ec = context_error(*ctx)) return ec;
  for (bool wait = wait_first;;) {
    if (wait)
      if (std::error_code ec = pd->wait(dir, wait_deadline(limit), ctx)) return ec;
    if (!pd || pd->closed()) return Errc::closed;
    spindle::preempt_point();
    auto r = op();
    if (r >= 0) return r;
    int e = errno;
    wait = e != EINTR;  // interrupted: try again at once
    if (wait && e != EAGAIN && e != EWOULDBLOCK) return failed(pd, e);
  }
}

}  // namespace spindle::net::detail
