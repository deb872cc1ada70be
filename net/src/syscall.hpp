// The fiber side of every socket call: try the non-blocking syscall; on
// EAGAIN park on the poll descriptor until readiness, the deadline or
// close(); retry. EINTR is retried at once. Each attempt is a scheduling
// point (preempt_point).
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

// op() returns the syscall's result (>= 0, or -1 with errno set).
template <class Op>
auto retry_io(PollDesc* pd, Dir dir, std::int64_t deadline, Op op) -> Result<decltype(op())> {
  for (;;) {
    if (!pd || pd->closed()) return Errc::closed;
    spindle::preempt_point();
    auto r = op();
    if (r >= 0) return r;
    int e = errno;
    if (e == EINTR) continue;
    if (e != EAGAIN && e != EWOULDBLOCK) return errno_code(e);
    if (std::error_code ec = pd->wait(dir, deadline)) return ec;
  }
}

}  // namespace spindle::net::detail
