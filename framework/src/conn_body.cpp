// The request body: read on demand by the handler (body(), read_body()),
// the rest drained after it, and "100 Continue" sent on the first read
// that has to wait for the client.
#include <cstring>

#include "server_conn.hpp"

namespace spindle::http::detail {

void ServerConn::body_sink(void* self, const char* at, std::size_t len) {
  static_cast<ServerConn*>(self)->on_body(at, len);
}

// A body that arrives in one piece stays a view into rbuf_ (no copy); a
// second piece, or a read that may move rbuf_'s bytes, moves it to store_.
void ServerConn::on_body(const char* at, std::size_t len) {
  if (view_.empty() && store_off_ == store_.size()) {
    store_.clear();
    store_off_ = 0;
    view_ = {at, len};
  } else if (!view_.empty() && view_.data() + view_.size() == at) {
    view_ = {view_.data(), view_.size() + len};
  } else {
    keep_view();
    store_.append(at, len);
  }
}

void ServerConn::keep_view() noexcept {
  if (view_.empty()) return;
  store_.append(view_);
  view_ = {};
}

std::size_t ServerConn::pending_body() const noexcept {
  return view_.size() + (store_.size() - store_off_);
}

// One step: parse what is buffered, or read more (sending 100 Continue and
// any pending responses first). keep: hand the bytes to the handler
// (false: discard, when draining).
net::Status ServerConn::pump_body(bool keep) {
  if (rbuf_.empty()) {
    keep_view();
    if (expect_continue_ && !continue_sent_ && !started_) {
      out_.append(std::string_view("HTTP/1.1 100 Continue\r\n\r\n"));
      continue_sent_ = true;
    }
    if (!out_.empty())
      if (net::Status s = send_out(); !s) return s;
    conn_.set_read_timeout(cfg_.body_read_timeout);
    auto n = rbuf_.fill();
    if (!n || *n == 0) {
      must_close_ = true;
      return n ? net::Status(make_error_code(Errc::bad_body))
               : net::Status(n.error());  // cut short
    }
  }
  auto used = parser_.parse_body(rbuf_.data(), keep ? &ServerConn::body_sink : nullptr, this);
  if (!used) {
    must_close_ = true;
    return make_error_code(Errc::bad_body);
  }
  rbuf_.consume(*used);
  if (parser_.complete()) maybe_watch();
  return net::ok();
}

net::Result<std::string_view> ServerConn::body(std::size_t limit) {
  if (body_) return *body_;
  if (limit == 0) limit = cfg_.max_body_bytes;
  auto too_large = [&] {
    must_close_ = true;
    return net::Result<std::string_view>(make_error_code(Errc::body_too_large));
  };
  // A Content-Length or a chunk size beyond the limit is refused before
  // its bytes are waited for.
  while (pending_body() + parser_.announced() <= limit) {
    if (parser_.complete()) {
      body_ = view_.empty() ? std::string_view(store_).substr(store_off_) : view_;
      view_ = {};
      store_off_ = store_.size();
      return *body_;
    }
    if (net::Status s = pump_body(true); !s) return s.error();
  }
  return too_large();
}

net::Result<std::size_t> ServerConn::read_body(void* buf, std::size_t len) {
  if (body_ || len == 0) return std::size_t{0};
  for (;;) {
    if (!view_.empty()) {
      std::size_t n = std::min(len, view_.size());
      std::memcpy(buf, view_.data(), n);
      view_.remove_prefix(n);
      return n;
    }
    if (store_off_ < store_.size()) {
      std::size_t n = std::min(len, store_.size() - store_off_);
      std::memcpy(buf, store_.data() + store_off_, n);
      store_off_ += n;
      return n;
    }
    if (parser_.complete()) return std::size_t{0};
    if (net::Status s = pump_body(true); !s) return s.error();
  }
}

// What the handler left unread is read and dropped, so the next request
// can be parsed; unless that costs too much or cannot work, then the
// connection closes after the response.
void ServerConn::drain_body() {
  if (parser_.complete() || must_close_ || dead_) return;
  // The client waits for a 100 that never came: it may never send the body.
  if (expect_continue_ && !continue_sent_) {
    must_close_ = true;
    return;
  }
  view_ = {};
  while (!parser_.complete()) {
    if (parser_.body_bytes() + parser_.announced() > cfg_.max_body_bytes || !pump_body(false)) {
      must_close_ = true;
      return;
    }
  }
}

}  // namespace spindle::http::detail
