// Request::context(): done when the client goes away while the handler
// runs, or when shutdown's grace period ends.
//
// Made on the first context() call (most handlers never ask), as a child
// of the server's grace context. Disconnects are seen by a watcher fiber
// that waits for readability and peeks (MSG_PEEK: it consumes nothing):
// EOF or an error means the client is gone; data means it is alive (a
// pipelined request), and the watcher stops. It runs only once the body
// has been read, because until then the handler's own reads own the
// socket's read side (and bytes there are the body, not a signal). When
// the handler returns, the context is cancelled, which also wakes the
// watcher, and the connection waits for it before it reads again.
#include <sys/socket.h>

#include <cerrno>

#include "server_conn.hpp"
#include "spindle/runtime.hpp"

namespace spindle::http::detail {

const Context& ServerConn::context() {
  if (!ctx_) {
    ctx_.emplace(with_cancel(srv_.grace.ctx));
    maybe_watch();
  }
  return ctx_->ctx;
}

void ServerConn::maybe_watch() {
  if (!ctx_ || watching_ || dead_ || !parser_.complete()) return;
  watching_ = true;
  watcher_.add(1);
  spindle::go(SpawnOptions{.name = "http-watch"}, [this] {
    watch();
    watcher_.done();
  });
}

void ServerConn::watch() noexcept {
  conn_.set_read_deadline(net::kNoDeadline);
  for (;;) {
    net::Status ready = conn_.wait_readable(ctx_->ctx);
    if (!ready) {
      // Cancelled (the handler returned, or grace ended) or closed by us.
      if (ready.error() == net::Errc::canceled || ready.error() == net::Errc::closed ||
          ready.error() == net::Errc::timeout)
        return;
      break;
    }
    char c;
    ssize_t n = ::recv(conn_.fd(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return;  // the client is there (it sent more)
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    break;  // EOF or a reset
  }
  ctx_->cancel();
}

void ServerConn::end_context() noexcept {
  if (!ctx_) return;
  ctx_->cancel();
  if (watching_) watcher_.wait();
  watching_ = false;
  ctx_.reset();
}

}  // namespace spindle::http::detail
