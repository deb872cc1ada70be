// The response: framing chosen when the head is committed, bytes gathered
// in out_ and sent with one write per batch.
//
// A handler's writes collect in wbody_ until it returns (then the head
// gets a Content-Length and head and body go out together) or until they
// exceed kBodyBuffer or the handler flushes (then the head is committed
// with chunked encoding for HTTP/1.1, or a body that ends at close for
// HTTP/1.0). out_ is sent when the connection is about to wait for the
// client, so the responses to pipelined requests that were already
// buffered leave in one write.
#include <charconv>
#include <cstring>

#include "date.hpp"
#include "server_conn.hpp"
#include "span_writer.hpp"

namespace spindle::http::detail {
namespace {

using namespace std::string_view_literals;

constexpr std::size_t kBodyBuffer = 16 * 1024;  // body held back to compute Content-Length
constexpr std::size_t kOutBuffer = 64 * 1024;   // larger pieces are written from where they are

void append_number(std::string& out, std::uint64_t v, int base = 10) {
  char digits[24];
  auto r = std::to_chars(digits, digits + sizeof digits, v, base);
  out.append(digits, r.ptr);
}

bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::optional<std::uint64_t> parse_length(std::string_view v) {
  std::uint64_t n = 0;
  auto r = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || r.ec != std::errc() || r.ptr != v.data() + v.size()) return std::nullopt;
  return n;
}

}  // namespace

void ServerConn::reset_response() noexcept {
  w_.headers_.clear();
  w_.status_ = 0;
  wbody_.clear();
  type_.clear();
  written_ = sent_ = 0;
  declared_.reset();
  started_ = chunked_out_ = until_close_ = no_body_ = false;
}

bool ServerConn::closing() const noexcept {
  // A client still waiting for 100 Continue may or may not send its body.
  bool unsent_body = expect_continue_ && !continue_sent_ && !parser_.complete();
  return must_close_ || unsent_body || !parser_.keep_alive() ||
         srv_.shutting_down.load(std::memory_order_relaxed) ||
         (cfg_.max_requests_per_connection != 0 && served_ + 1 >= cfg_.max_requests_per_connection);
}

// HEAD, 1xx, 204 and 304 responses have no body (RFC 9110 §6.4.1).
bool ServerConn::drops_body() const noexcept {
  int s = w_.status();
  return head_request_ || s < 200 || s == 204 || s == 304;
}

void ServerConn::set_default_type(std::string_view type) {
  if (!w_.headers_.get("Content-Type")) type_.assign(type);
}

// Writes the status line and header fields to out_ and fixes the framing.
// final: the handler has returned, so wbody_ is the whole body.
void ServerConn::commit_head(bool final) {
  const int status = w_.status();
  no_body_ = drops_body();
  bool user_server = false, user_date = false, user_type = false;
  for (const auto& [name, value] : w_.headers_.all()) {
    if (iequals(name, "Content-Length")) {
      declared_ = parse_length(value);
      if (!declared_) must_close_ = true;  // unusable: the body ends at close
    } else if (iequals(name, "Connection")) {
      if (has_token(value, "close")) must_close_ = true;
    } else if (iequals(name, "Server")) {
      user_server = true;
    } else if (iequals(name, "Date")) {
      user_date = true;
    } else if (iequals(name, "Content-Type")) {
      user_type = true;
    }
  }
  bool bodiless_status = status < 200 || status == 204;
  std::optional<std::uint64_t> length;
  if (no_body_) {
    if (!bodiless_status && !declared_ && final && written_ > 0) length = written_;
  } else if (!declared_) {
    if (final) {
      length = written_;
    } else if (req_.version_ == 11) {
      chunked_out_ = true;
    } else {
      until_close_ = must_close_ = true;
    }
  }

  std::size_t max = 192 + reason_phrase(status).size() + type_.size();  // fixed fields, numbers
  for (const auto& [name, value] : w_.headers_.all()) max += name.size() + value.size() + 4;
  SpanWriter out(out_, max);
  out.put("HTTP/1.1 "sv).number(static_cast<std::uint64_t>(status)).put(" "sv);
  out.put(reason_phrase(status)).put("\r\n"sv);
  if (!user_server) out.put("Server: spindle\r\n"sv);
  if (!user_date) out.put("Date: "sv).put(date_now()).put("\r\n"sv);
  for (const auto& [name, value] : w_.headers_.all()) {
    if (iequals(name, "Transfer-Encoding") || iequals(name, "Connection")) continue;
    if (iequals(name, "Content-Length") && (bodiless_status || !declared_)) continue;
    out.put_field_text(name).put(": "sv).put_field_text(value).put("\r\n"sv);
  }
  if (!type_.empty() && !user_type && !bodiless_status)
    out.put("Content-Type: "sv).put(type_).put("\r\n"sv);
  if (length) out.put("Content-Length: "sv).number(*length).put("\r\n"sv);
  if (chunked_out_) out.put("Transfer-Encoding: chunked\r\n"sv);
  if (closing()) {
    must_close_ = true;
    out.put("Connection: close\r\n"sv);
  } else if (req_.version_ == 10) {
    out.put("Connection: keep-alive\r\n"sv);
  }
  out.put("\r\n"sv);
  started_ = true;
}

// Frames body bytes after the head: chunked, within a declared length, or
// plain. Small pieces join out_; a large one is written from where it is.
net::Status ServerConn::emit(std::string_view data) {
  if (no_body_ || data.empty()) return net::ok();
  if (declared_ && data.size() > *declared_ - sent_) {
    data = data.substr(0, *declared_ - sent_);  // more than declared: cut, then close
    must_close_ = true;
  }
  sent_ += data.size();
  if (chunked_out_) {
    append_number(out_, data.size(), 16);
    out_.append("\r\n"sv);
  }
  net::Status s = net::ok();
  if (out_.size() + data.size() <= kOutBuffer) {
    out_.append(data);
  } else {
    s = send_out(data);
  }
  if (chunked_out_) out_.append("\r\n"sv);
  return s;
}

net::Status ServerConn::write(std::string_view data) {
  if (dead_) return net::Errc::closed;
  if (w_.status_ == 0) w_.status_ = 200;
  written_ += data.size();
  if (!started_) {
    if (drops_body()) return net::ok();
    if (wbody_.size() + data.size() <= kBodyBuffer) {
      wbody_.append(data);
      return net::ok();
    }
    commit_head(false);
    net::Status s = emit(wbody_);
    wbody_.clear();
    if (!s) return s;
  }
  return emit(data);
}

net::Status ServerConn::body_appended(std::size_t before) {
  if (w_.status_ == 0) w_.status_ = 200;
  written_ += wbody_.size() - before;
  if (drops_body()) {
    wbody_.resize(before);
    return net::ok();
  }
  if (wbody_.size() <= kBodyBuffer) return net::ok();
  commit_head(false);
  net::Status s = emit(wbody_);
  wbody_.clear();
  return s;
}

net::Status ServerConn::flush() {
  if (dead_) return net::Errc::closed;
  if (w_.status_ == 0) w_.status_ = 200;
  if (!started_) {
    commit_head(false);
    net::Status s = emit(wbody_);
    wbody_.clear();
    if (!s) return s;
  }
  return send_out();
}

// The handler has returned: complete the response in out_ (sent with the
// next batch).
void ServerConn::finish_response() {
  if (dead_) return;
  if (w_.status_ == 0) w_.status_ = 200;
  if (!started_) {
    commit_head(true);
    (void)emit(wbody_);
    wbody_.clear();
  } else if (chunked_out_) {
    out_.append("0\r\n\r\n"sv);
  }
  if (declared_ && !no_body_ && sent_ < *declared_) must_close_ = true;  // short: close
  if (out_.size() > kOutBuffer) (void)send_out();
}

net::Status ServerConn::send_out(std::string_view extra) {
  if (dead_) return net::Errc::closed;
  iovec iov[2] = {{out_.data(), out_.size()}, {const_cast<char*>(extra.data()), extra.size()}};
  net::Status s = out_.empty()    ? conn_.write_all(&iov[1], 1)
                  : extra.empty() ? conn_.write_all(&iov[0], 1)
                                  : conn_.write_all(iov, 2);
  out_.clear();
  if (!s) dead_ = must_close_ = true;
  return s;
}

}  // namespace spindle::http::detail
