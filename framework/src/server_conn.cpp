// The connection loop and one request's life; reading the head is in
// conn_read.cpp, the body in conn_body.cpp, the response in conn_write.cpp.
#include "server_conn.hpp"

#include <spdlog/spdlog.h>

#include <memory>

namespace spindle::http::detail {
namespace {

// After the last response, the client gets this long to close its side
// while we read and discard what it still sends (so our close does not
// turn into a reset that destroys the response in flight), at most
// kLingerBytes of it.
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr std::size_t kLingerBytes = 256 * 1024;

}  // namespace

ServerConn::ServerConn(ServerState& srv, net::Conn conn)
    : srv_(srv),
      cfg_(srv.cfg),
      conn_(std::move(conn)),
      rbuf_(conn_, std::max<std::size_t>(net::BufReader::kMaxBuffer, srv.cfg.max_header_bytes + 1)),
      scanner_(srv.cfg.max_request_line, srv.cfg.max_header_bytes),
      parser_(srv.cfg.max_headers, srv.cfg.max_header_bytes),
      w_(*this),
      first_deadline_(net::Clock::now() + srv.cfg.read_header_timeout) {
  req_.conn_ = this;
  // Each wait for the client to take more of a response (send_timeout).
  conn_.set_write_timeout(cfg_.write_timeout);
  srv_.add(*this);
}

ServerConn::~ServerConn() {
  conn_.close();
  srv_.remove(*this);
}

void ServerConn::run(ServerConn* c, std::error_code woke) {
  std::unique_ptr<ServerConn> own(c);  // also when the runtime unwinds this fiber
  if (!c->serve(woke)) (void)own.release();
}

bool ServerConn::serve(std::error_code woke) {
  while (!woke) {
    int status = read_head(served_ == 0);
    if (status == kParked) return false;
    if (status < 0) break;
    if (status > 0) {
      answer_error(status);
      break;
    }
    if (serve_request() == Next::close || dead_) break;
  }
  linger_close();
  return true;
}

ServerConn::Next ServerConn::serve_request() {
  std::string_view head = rbuf_.data().substr(0, scanner_.head_length());
  if (int status = parser_.parse_head(head)) {
    spdlog::debug("http: {} from {}: {}", status, remote_address().to_string(), parser_.reason());
    answer_error(status);
    return Next::close;
  }
  // The views in req_ point into the head: it stays in place until the
  // request is done, however much of the body is read meanwhile.
  rbuf_.consume(head.size());
  rbuf_.hold();
  if (!start_request()) {
    answer_error(417);
    return Next::close;
  }
  run_handler();
  finish_response();
  finish_request();
  ++served_;
  // What the response's head announced (closing() when it was framed), not
  // closing() again: a shutdown that began since would close a connection
  // whose response said keep-alive, dropping requests already pipelined
  // behind it unanswered. The next one is served, with Connection: close.
  return must_close_ ? Next::close : Next::keep;
}

// Fills req_ from the parsed head. False for an expectation we cannot meet.
bool ServerConn::start_request() {
  const Target& target = parser_.target_parts();
  req_.method_ = parser_.method();
  req_.target_ = parser_.target();
  req_.path_ = target.path;
  req_.query_ = target.query;
  // RFC 9112 §3.2.2: an absolute-form target's authority overrides Host.
  req_.host_ = target.authority.empty() ? parser_.host() : target.authority;
  req_.version_ = parser_.version();
  auto headers = parser_.headers();
  req_.headers_ = headers.data();
  req_.nheaders_ = headers.size();
  req_.content_length_ = parser_.content_length();
  req_.chunked_ = parser_.chunked();
  req_.route_ = nullptr;

  head_request_ = req_.method_ == "HEAD";
  must_close_ = false;
  expect_continue_ = continue_sent_ = false;
  view_ = {};
  store_.clear();
  store_off_ = 0;
  body_.reset();
  reset_response();
  if (auto expect = parser_.expect()) {
    if (!iequals(*expect, "100-continue")) return false;
    // An HTTP/1.0 client does not wait for 100 (RFC 9110 §10.1.1).
    expect_continue_ = req_.version_ == 11 && !parser_.complete();
  }
  return true;
}

void ServerConn::run_handler() {
  try {
    srv_.handler(req_, w_);
  } catch (const std::exception& e) {
    spdlog::error("http: handler for \"{} {}\" from {} threw: {}", req_.method_, req_.target_,
                  remote_address().to_string(), e.what());
    if (started_) {
      // Part of the response is out: its end cannot be told any more.
      dead_ = must_close_ = true;
      return;
    }
    reset_response();
    w_.error(500, "Internal Server Error");
  }
}

// A response of our own (parse errors, 408, 417), then the connection closes.
void ServerConn::answer_error(int status) {
  head_request_ = false;
  must_close_ = true;
  reset_response();
  w_.send_status(status);
  finish_response();
}

void ServerConn::finish_request() {
  end_context();
  rbuf_.release_hold();
  drain_body();
  view_ = {};
  body_.reset();
  store_.clear();
  store_off_ = 0;
  if (store_.capacity() > net::BufReader::kMaxBuffer) std::string().swap(store_);
}

// Sends what is left, half-closes, and reads until the client closes too.
void ServerConn::linger_close() {
  end_context();
  rbuf_.release_hold();
  if (!dead_ && !out_.empty()) (void)send_out();
  if (!dead_ && conn_.is_open() && conn_.shutdown_write()) {
    conn_.set_read_deadline(net::Clock::now() + kLingerTime);
    std::size_t discarded = 0;
    while (discarded < kLingerBytes) {
      rbuf_.consume(rbuf_.data().size());
      auto n = rbuf_.fill();
      if (!n || *n == 0) break;
      discarded += *n;
    }
  }
  conn_.close();
}

}  // namespace spindle::http::detail
