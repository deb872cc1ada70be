#include "parser.hpp"

#include <algorithm>

#include "ascii.hpp"

namespace spindle::http::detail {
namespace {

// Extends a span that llhttp delivered in several pieces of one buffer.
void extend(std::string_view& s, const char* at, std::size_t len) noexcept {
  if (s.data() == nullptr) {
    s = {at, len};
  } else {
    s = {s.data(), static_cast<std::size_t>(at + len - s.data())};
  }
}

std::string_view trim_right(std::string_view v) noexcept {
  while (!v.empty() && is_ows(v.back())) v.remove_suffix(1);
  return v;
}

}  // namespace

// llhttp's callbacks, with the Parser in llhttp_t::data; they record views
// into the header section.
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
    if (s.in_value_ || s.headers_.empty()) {
      if (s.headers_.size() == s.max_headers_) return fail(p, 431, "too many header fields");
      s.headers_.push_back({});
      s.in_value_ = false;
    }
    extend(s.headers_.back().name, at, len);
    return 0;
  }

  // A line that starts with ':' gives no name callback: without this check
  // its value would extend the previous field's.
  static int on_header_field_complete(llhttp_t* p) {
    Parser& s = self(p);
    if (s.in_value_ || s.headers_.empty() || s.headers_.back().name.empty())
      return fail(p, 400, "empty field name");
    return 0;
  }

  static int on_header_value(llhttp_t* p, const char* at, std::size_t len) {
    Parser& s = self(p);
    s.in_value_ = true;
    extend(s.headers_.back().value, at, len);
    return 0;
  }

  static int on_header_value_complete(llhttp_t* p) {
    Parser& s = self(p);
    Header& h = s.headers_.back();
    if (!s.in_value_) h.value = {h.name.data() + h.name.size(), 0};  // "X:" with no value
    s.in_value_ = true;
    h.value = trim_right(h.value);
    if (iequals(h.name, "Host")) {
      ++s.host_count_;
      s.host_ = h.value;
    } else if (iequals(h.name, "Transfer-Encoding")) {
      if (h.value.empty()) s.te_empty_ = true;
      if (!iequals(h.value, "chunked")) s.te_other_ = true;
    } else if (iequals(h.name, "Expect")) {
      s.expect_ = h.value;
    }
    return 0;
  }

  static int on_headers_complete(llhttp_t* p) {
    self(p).head_done_ = true;
    return 0;
  }

  // A message without a body ends with its head. Pausing keeps llhttp from
  // resetting its flags (Connection, framing) for a next message.
  static int on_message_complete(llhttp_t*) { return HPE_PAUSED; }

  static llhttp_settings_t make() {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_method = on_method;
    s.on_url = on_url;
    s.on_header_field = on_header_field;
    s.on_header_field_complete = on_header_field_complete;
    s.on_header_value = on_header_value;
    s.on_header_value_complete = on_header_value_complete;
    s.on_headers_complete = on_headers_complete;
    s.on_message_complete = on_message_complete;
    return s;
  }
};

namespace {
const llhttp_settings_t kSettings = ParserCallbacks::make();

// RFC 9112 §3: method SP request-target SP HTTP-version, one space each;
// llhttp 8.1 skips extra spaces and reads a line without a version as
// HTTP/0.9. The method starts the head (leading empty lines are gone).
bool single_spaced(std::string_view head, std::string_view method,
                   std::string_view target) noexcept {
  if (target.data() == nullptr || method.data() != head.data()) return false;
  if (target.data() != method.data() + method.size() + 1) return false;
  auto after = static_cast<std::size_t>(target.data() + target.size() - head.data());
  return after + 1 < head.size() && head[after] == ' ' && head[after + 1] == 'H';
}
}  // namespace

Parser::Parser(std::size_t max_headers, std::size_t max_trailer_bytes)
    : max_headers_(max_headers), chunks_(max_trailer_bytes, max_headers) {}

int Parser::parse_head(std::string_view head) {
  llhttp_init(&p_, HTTP_REQUEST, &kSettings);
  p_.lenient_flags = LENIENT_VERSION;  // the version is judged in finish_head()
  p_.data = this;
  headers_.clear();
  method_ = target_ = host_ = {};
  expect_.reset();
  content_length_.reset();
  host_count_ = status_ = 0;
  in_value_ = head_done_ = complete_ = chunked_ = keep_alive_ = te_other_ = te_empty_ = false;
  length_left_ = 0;

  llhttp_errno_t err = llhttp_execute(&p_, head.data(), head.size());
  reason_ = llhttp_get_error_reason(&p_);
  if (!reason_) reason_ = "";
  if (err == HPE_USER) return status_;
  if (err != HPE_OK && err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) return 400;
  if (!head_done_) {
    reason_ = "incomplete header section";
    return 400;
  }
  return finish_head(head);
}

int Parser::finish_head(std::string_view head) {
  if (!single_spaced(head, method_, target_)) {
    reason_ = "malformed request line";
    return 400;
  }
  if (p_.http_major != 1) {
    reason_ = "unsupported HTTP version";
    return 505;
  }
  version_ = p_.http_minor == 0 ? 10 : 11;
  bool has_te = (p_.flags & F_TRANSFER_ENCODING) != 0;
  chunked_ = (p_.flags & F_CHUNKED) != 0;
  if ((has_te && version_ == 10) || te_empty_) {
    reason_ = "Transfer-Encoding in an HTTP/1.0 request, or empty";
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
  // No Content-Length and no Transfer-Encoding: no body (RFC 9112 §6.3).
  length_left_ = chunked_ ? 0 : content_length_.value_or(0);
  complete_ = !chunked_ && length_left_ == 0;
  if (chunked_) chunks_.reset();
  return 0;
}

std::uint64_t Parser::body_bytes() const noexcept {
  return chunked_ ? chunks_.body_bytes() : content_length_.value_or(0) - length_left_;
}

std::uint64_t Parser::announced() const noexcept {
  return chunked_ ? chunks_.announced() : length_left_;
}

std::optional<std::size_t> Parser::parse_body(std::string_view data, BodySink sink, void* ctx) {
  if (complete_) return 0;
  if (chunked_) {
    auto used = chunks_.decode(data, sink, ctx);
    if (!used) reason_ = chunks_.reason();
    complete_ = chunks_.done();
    return used;
  }
  auto take = static_cast<std::size_t>(std::min<std::uint64_t>(length_left_, data.size()));
  if (sink && take) sink(ctx, data.data(), take);
  length_left_ -= take;
  complete_ = length_left_ == 0;
  return take;
}

}  // namespace spindle::http::detail
