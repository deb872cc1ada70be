// Reading a request's header section, and parking between requests.
#include <sys/socket.h>

#include "server_conn.hpp"

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
  net::Deadline header_deadline =
      first ? net::Clock::now() + cfg_.read_header_timeout : net::kNoDeadline;
  for (;;) {
    if (!begun) {
      rbuf_.consume(leading_empty_lines(rbuf_.data()));
      if (!rbuf_.empty()) {
        begun = true;
        if (!first) header_deadline = net::Clock::now() + cfg_.read_header_timeout;
      }
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
    // Nothing more to parse: answer the requests served so far before
    // waiting (this is where pipelined responses are batched).
    if (!out_.empty() && !send_out()) return -1;
    bool idle = !begun;
    conn_.set_read_deadline(begun || first ? header_deadline
                                           : net::Clock::now() + cfg_.idle_timeout);
    auto n = wait_and_fill(idle);
    if (!n) return n.error() == net::Errc::timeout && begun ? 408 : -1;
    if (*n == 0) return -1;  // the client closed (a partial request is abandoned)
  }
}

// Idle, the connection holds no read buffer while it parks, and shutdown()
// may close it (close_if_idle) unless a request has arrived meanwhile.
net::Result<std::size_t> ServerConn::wait_and_fill(bool idle) {
  if (!idle) return rbuf_.fill();
  for (bool wait_first = rbuf_.drained();; wait_first = false) {
    if (!wait_first) {
      auto n = rbuf_.try_fill();
      if (n || n.error() != std::errc::operation_would_block) return n;
    }
    rbuf_.release_if_empty();
    if (out_.capacity() > net::BufReader::kMaxBuffer) std::string().swap(out_);
    if (wbody_.capacity() > net::BufReader::kMaxBuffer) std::string().swap(wbody_);
    if (!enter_idle()) {
      // Shutting down (or closed): a request the client has already sent
      // is still read and served, so look once more if we skipped the read.
      if (wait_first) continue;
      return net::Errc::closed;
    }
    net::Status ready = conn_.wait_readable();
    if (!leave_idle()) return net::Errc::closed;
    if (!ready) return ready.error();
  }
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

// A fiber that leaves idle between the peek and the CAS wins the CAS and
// serves what woke it; once shutting_down is set it never enters idle
// again, so the CAS cannot meet a later idle period (no ABA).
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
