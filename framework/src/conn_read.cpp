// Reading a request's header section, and parking between requests.
#include <sys/socket.h>

#include "server_conn.hpp"
#include "spindle/runtime.hpp"

namespace spindle::http::detail {

// Reads until rbuf_ starts with a whole header section (0), or the
// connection should close quietly (-1: EOF, error, idle or shutdown), or
// with an answer (a status: 400, 408, 414, 431).
//
// Deadlines: the first request's header section must be complete within
// read_header_timeout of the accept; a later one within read_header_timeout
// of its first byte, and that byte must come within idle_timeout.
int ServerConn::read_head(bool first) {
  scanner_.reset();
  bool begun = false;  // a byte of this request has arrived
  net::Deadline header_deadline = first ? first_deadline_ : net::kNoDeadline;
  for (;;) {
    if (!begun) {
      rbuf_.consume(leading_empty_lines(rbuf_.data()));
      begun = !rbuf_.empty();
    }
    if (begun) {
      switch (scanner_.scan(rbuf_.unread())) {
        case HeadScanner::Outcome::complete:
          return 0;
        case HeadScanner::Outcome::uri_too_long:
          return 414;
        case HeadScanner::Outcome::too_large:
          return 431;
        case HeadScanner::Outcome::obs_fold:
          return 400;
        case HeadScanner::Outcome::need_more:
          break;
      }
    }
    // A later request's header section is timed from its first byte: from
    // here, once its bytes so far are scanned (a head that came whole, the
    // common case, reads no clock for it).
    if (begun && header_deadline == net::kNoDeadline)
      header_deadline = net::Clock::now() + cfg_.read_header_timeout;
    // Nothing more to parse: answer the requests served so far before
    // waiting (this is where pipelined responses are batched).
    if (!out_.empty() && !send_out()) return -1;
    net::Deadline deadline =
        begun || first ? header_deadline : net::Clock::now() + cfg_.idle_timeout;
    conn_.set_read_deadline(deadline);
    auto n = wait_and_fill(!begun, deadline);
    if (!n) {
      if (n.error() == std::errc::operation_in_progress) return kParked;
      return n.error() == net::Errc::timeout && begun ? 408 : -1;
    }
    if (*n == 0) return -1;  // the client closed (a partial request is abandoned)
  }
}

// Idle (waiting for a request's first byte), the connection holds no read
// buffer and no fiber: it arms a fiber-less wait (Conn::when_readable) whose
// callback starts a new fiber, and answers operation_in_progress, after
// which this fiber must touch nothing of the connection and end. shutdown()
// may close an idle connection (close_if_idle) unless a request has arrived.
net::Result<std::size_t> ServerConn::wait_and_fill(bool idle, net::Deadline deadline) {
  if (!idle) return rbuf_.fill();
  // After a read that drained the socket, arm the wait without reading
  // again (Conn::drained): that read would only say EAGAIN.
  for (bool wait_first = conn_.drained();; wait_first = false) {
    if (!wait_first) {
      auto n = rbuf_.try_fill();
      if (n || n.error() != std::errc::operation_would_block) return n;
    }
    rbuf_.release_if_empty();
    if (out_.capacity() > net::BufReader::kMaxBuffer) std::string().swap(out_);
    if (wbody_.capacity() > net::BufReader::kMaxBuffer) std::string().swap(wbody_);
    if (!enter_idle()) {
      // Shutting down (or closed): a request the client has already sent
      // is still read and served, so look once more if the read was skipped.
      if (wait_first) continue;
      return net::Errc::closed;
    }
    if (conn_.when_readable(deadline, on_readable, this))
      return make_error_code(std::errc::operation_in_progress);
    // Readiness was pending already (or the socket closed): read again.
    if (!leave_idle()) return net::Errc::closed;
  }
}

// The fiber-less wait's one outcome (readable, the idle or first-header
// deadline, or close()), on a poller or timer thread or close()'s caller:
// it starts the connection's next fiber, which takes the connection back
// (idle->busy) unless shutdown closed it first. (A failure to start a
// fiber, out of memory for its stack, ends the process: noexcept.)
void ServerConn::on_readable(void* self, std::error_code outcome) noexcept {
  auto* c = static_cast<ServerConn*>(self);
  spindle::go(SpawnOptions{.name = "http-conn"}, [c, outcome] {
    run(c, c->leave_idle() ? outcome : make_error_code(net::Errc::closed));
  });
}

bool ServerConn::enter_idle() noexcept {
  auto busy = IdleState::busy;
  if (!state_.compare_exchange_strong(busy, IdleState::idle)) return false;  // force_close
  if (!srv_.shutting_down.load()) return true;
  // shutdown() may not have seen us idle: close ourselves.
  (void)leave_idle();
  return false;
}

bool ServerConn::leave_idle() noexcept {
  auto idle = IdleState::idle;
  return state_.compare_exchange_strong(idle, IdleState::busy);
}

// A fiber started by the wait's readiness between the peek and the CAS
// wins the CAS and serves what woke it; a CAS won here closes the socket,
// whose close() gives the armed wait (if nothing took it yet) its one
// outcome, Errc::closed, and the fiber it starts deletes the connection; once shutting_down is set
// it never enters idle again, so the CAS cannot meet a later idle period (no ABA).
void ServerConn::close_if_idle() noexcept {
  if (state_.load() != IdleState::idle) return;
  // A request already sent is served (the fiber wakes for it and answers
  // with "Connection: close"), never reset.
  char c;
  if (::recv(conn_.fd(), &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0) return;
  auto idle = IdleState::idle;
  if (state_.compare_exchange_strong(idle, IdleState::closed)) conn_.close();
}

void ServerConn::force_close() noexcept {
  state_.store(IdleState::closed);
  conn_.close();
}

}  // namespace spindle::http::detail
