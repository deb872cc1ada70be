#include "parser.hpp"

#include <cstring>

namespace spindle::http::detail {
namespace {

constexpr std::uint64_t kExtensionAllowance = 16 * 1024;  // as Go's chunked reader

// Extends a span that llhttp delivered in several pieces of one buffer.
void extend(std::string_view& s, const char* at, std::size_t len) noexcept {
  if (s.data() == nullptr) {
    s = {at, len};
  } else {
    s = {s.data(), static_cast<std::size_t>(at + len - s.data())};
  }
}

std::string_view trim_right(std::string_view v) noexcept {
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

}  // namespace

// llhttp's callbacks, with the Parser in llhttp_t::data. Before the head is
// done the data callbacks record views; after it (trailers, chunk
// extensions) they only count bytes.
struct ParserCallbacks {
  static Parser& self(llhttp_t* p) { return *static_cast<Parser*>(p->data); }

  static int fail(llhttp_t* p, int status, const char* why) {
    self(p).status_ = status;
    llhttp_set_error_reason(p, why);
    return HPE_USER;
  }

  static int on_method(llhttp_t* p, const char* at, std::size_t len) {
    extend(self(p).method_, at, len);
    return 0;
  }
  static int on_url(llhttp_t* p, const char* at, std::size_t len) {
    extend(self(p).target_, at, len);
    return 0;
  }

  static int on_header_field(llhttp_t* p, const char* at, std::size_t len) {
    Parser& s = self(p);
    if (s.head_done_) return count_trailer(p, len);
    if (s.in_value_ || s.headers_.empty()) {
      if (s.headers_.size() == s.max_headers_) return fail(p, 431, "too many header fields");
      s.headers_.push_back({});
      s.in_value_ = false;
    }
    extend(s.headers_.back().name, at, len);
    return 0;
  }

  static int on_header_value(llhttp_t* p, const char* at, std::size_t len) {
    Parser& s = self(p);
    if (s.head_done_) return count_trailer(p, len);
    s.in_value_ = true;
    extend(s.headers_.back().value, at, len);
    return 0;
  }

  static int on_header_value_complete(llhttp_t* p) {
    Parser& s = self(p);
    if (s.head_done_) {
      if (++s.trailers_ > s.max_headers_) return fail(p, 400, "too many trailer fields");
      return 0;
    }
    Header& h = s.headers_.back();
    if (!s.in_value_) h.value = {h.name.data() + h.name.size(), 0};  // "X:" with no value
    s.in_value_ = true;
    h.value = trim_right(h.value);
    if (iequals(h.name, "Host")) {
      ++s.host_count_;
      s.host_ = h.value;
    } else if (iequals(h.name, "Transfer-Encoding")) {
      if (!iequals(h.value, "chunked")) s.te_other_ = true;
    } else if (iequals(h.name, "Expect")) {
      s.expect_ = h.value;
    }
    return 0;
  }

  static int count_trailer(llhttp_t* p, std::size_t len) {
    Parser& s = self(p);
    s.trailer_bytes_ += len;
    if (s.trailer_bytes_ > s.max_trailer_bytes_) return fail(p, 400, "trailer section too large");
    return 0;
  }

  static int on_headers_complete(llhttp_t* p) {
    self(p).head_done_ = true;
    return 0;
  }

  static int on_extension(llhttp_t* p, const char*, std::size_t len) {
    Parser& s = self(p);
    s.ext_bytes_ += len;
    if (s.ext_bytes_ > kExtensionAllowance + s.body_bytes_)
      return fail(p, 400, "chunk extensions too large");
    return 0;
  }

  static int on_body(llhttp_t* p, const char* at, std::size_t len) {
    Parser& s = self(p);
    s.body_bytes_ += len;
    if (s.sink_) s.sink_(s.sink_ctx_, at, len);
    return 0;
  }

  // Pausing here makes llhttp_execute return at the message's last byte.
  static int on_message_complete(llhttp_t* p) {
    self(p).complete_ = true;
    return HPE_PAUSED;
  }

  static llhttp_settings_t make() {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_method = on_method;
    s.on_url = on_url;
    s.on_header_field = on_header_field;
    s.on_header_value = on_header_value;
    s.on_header_value_complete = on_header_value_complete;
    s.on_headers_complete = on_headers_complete;
    s.on_chunk_extension_name = on_extension;
    s.on_chunk_extension_value = on_extension;
    s.on_body = on_body;
    s.on_message_complete = on_message_complete;
    return s;
  }
};

namespace {
const llhttp_settings_t kSettings = ParserCallbacks::make();
}

Parser::Parser(std::size_t max_headers, std::size_t max_trailer_bytes)
    : max_headers_(max_headers), max_trailer_bytes_(max_trailer_bytes) {}

int Parser::parse_head(std::string_view head) {
  llhttp_init(&p_, HTTP_REQUEST, &kSettings);
  p_.lenient_flags = LENIENT_VERSION;  // the version is judged in finish_head()
  p_.data = this;
  headers_.clear();
  method_ = target_ = host_ = {};
  expect_.reset();
  content_length_.reset();
  host_count_ = status_ = 0;
  in_value_ = head_done_ = complete_ = chunked_ = keep_alive_ = te_other_ = false;
  sink_ = nullptr;
  body_bytes_ = ext_bytes_ = trailer_bytes_ = trailers_ = 0;
  tail_[0] = tail_[1] = 0;
  body_error_ = false;

  llhttp_errno_t err = llhttp_execute(&p_, head.data(), head.size());
  reason_ = llhttp_get_error_reason(&p_);
  if (!reason_) reason_ = "";
  if (err == HPE_USER) return status_;
  if (err != HPE_OK && err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) return 400;
  if (!head_done_) {
    reason_ = "incomplete header section";
    return 400;
  }
  return finish_head();
}

int Parser::finish_head() {
  if (p_.http_major != 1) {
    reason_ = "unsupported HTTP version";
    return 505;
  }
  version_ = p_.http_minor == 0 ? 10 : 11;
  bool has_te = (p_.flags & F_TRANSFER_ENCODING) != 0;
  chunked_ = (p_.flags & F_CHUNKED) != 0;
  if (has_te && version_ == 10) {
    reason_ = "Transfer-Encoding in an HTTP/1.0 request";
    return 400;
  }
  if (te_other_) {
    reason_ = "unsupported transfer coding";
    return 501;
  }
  if (p_.flags & F_CONTENT_LENGTH) content_length_ = p_.content_length;
  if (host_count_ > 1 || (version_ == 11 && host_count_ == 0) || !valid_host(host_)) {
    reason_ = "missing, repeated or invalid Host";
    return 400;
  }
  auto parts = split_target(target_, method_);
  if (!parts) {
    reason_ = "invalid request-target";
    return 400;
  }
  parts_ = *parts;
  bool close = (p_.flags & F_CONNECTION_CLOSE) != 0;
  keep_alive_ = version_ == 11 ? !close : (p_.flags & F_CONNECTION_KEEP_ALIVE) && !close;
  // An upgrade we do not perform, or CONNECT: whatever follows is not HTTP.
  if (p_.upgrade) keep_alive_ = false;
  return 0;
}

// The final line of a chunked body (after "0\r\n" and any trailers) must be
// CRLF; llhttp 8.1 also accepts a bare LF there.
bool Parser::trailer_ends_with_crlf(std::string_view fed) const noexcept {
  char last2[2];
  if (fed.size() >= 2) {
    std::memcpy(last2, fed.data() + fed.size() - 2, 2);
  } else if (fed.size() == 1) {
    last2[0] = tail_[1];
    last2[1] = fed[0];
  } else {
    std::memcpy(last2, tail_, 2);
  }
  return last2[0] == '\r' && last2[1] == '\n';
}

std::optional<std::size_t> Parser::parse_body(std::string_view data, BodySink sink, void* ctx) {
  if (complete_) return 0;
  if (body_error_) return std::nullopt;
  sink_ = sink;
  sink_ctx_ = ctx;
  llhttp_errno_t err = llhttp_execute(&p_, data.data(), data.size());
  sink_ = nullptr;
  std::size_t used = data.size();
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    used = static_cast<std::size_t>(llhttp_get_error_pos(&p_) - data.data());
  } else if (err != HPE_OK) {
    reason_ = llhttp_get_error_reason(&p_);
    body_error_ = true;
    return std::nullopt;
  }
  std::string_view fed = data.substr(0, used);
  if (complete_ && chunked_ && !trailer_ends_with_crlf(fed)) {
    reason_ = "bare LF ending the chunked body";
    body_error_ = true;
    return std::nullopt;
  }
  if (fed.size() >= 2) {
    std::memcpy(tail_, fed.data() + fed.size() - 2, 2);
  } else if (fed.size() == 1) {
    tail_[0] = tail_[1];
    tail_[1] = fed[0];
  }
  return used;
}

}  // namespace spindle::http::detail
