// The fiber side of every socket call: try the non-blocking syscall; on
// EAGAIN park on the poll descriptor until readiness, the deadline, the
// context (if any) or close(); retry. EINTR is retried at once. Each attempt
// is a scheduling point (preempt_point). A context that is done already
// fails the call before any syscall.
#pragma once

#include <cerrno>
#include <system_error>

#include "poll_desc.hpp"
#include "spindle/net/error.hpp"
#include "spindle/runtime.hpp"

namespace spindle::net::detail {

inline std::error_code errno_code(int e) {
  return {e, std::system_category()};
}

// A syscall that failed because close() shut the socket down under it
// reports Errc::closed, as a later call would.
inline std::error_code failed(const PollDesc* pd, int e) {
  return pd->closed() ? make_error_code(Errc::closed) : errno_code(e);
}

// op() returns the syscall's result (>= 0, or -1 with errno set).
// wait_first: the caller knows op() would say EAGAIN now (Conn::drained).
template <class Op>
auto retry_io(PollDesc* pd, Dir dir, std::int64_t deadline, const Context* ctx, Op op,
              bool wait_first = false) -> Result<decltype(op())> {
  if (ctx)
    if (std::error_code ec = context_error(*ctx)) return ec;
  for (bool wait = wait_first;;) {
    if (wait)
      if (std::error_code ec = pd->wait(dir, deadline, ctx)) return ec;
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
