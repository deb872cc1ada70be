// The request a handler receives, in the shape of Go's *http.Request.
//
// Method, target, headers and a body that arrived with the header section
// are views into the connection's read buffer: valid until the handler
// returns, never after. Copy what must outlive the handler.
//
// The body is read on demand: body() reads it whole (up to a limit),
// read_body() streams it. Reading it is what sends "100 Continue" to a
// client that asked for it, so a handler that rejects a request without
// reading its body never invites the client to send it. Whatever the handler
// leaves unread is drained (within ServerConfig::max_body_bytes) or the
// connection is closed after the response.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "spindle/context.hpp"
#include "spindle/net/conn.hpp"
#include "spindle/net/error.hpp"

namespace spindle::http {

namespace detail {
class ServerConn;
}

struct Header {
  std::string_view name, value;  // as received; value without surrounding whitespace
};

// Case-insensitive ASCII comparison of header names, tokens, cookie names.
bool iequals(std::string_view a, std::string_view b) noexcept;

class Request {
 public:
  std::string_view method() const noexcept { return method_; }  // "GET", case-sensitive
  std::string_view target() const noexcept {
    return target_;
  }                                                         // as sent: "/a?b", "http://h/a", "*"
  std::string_view path() const noexcept { return path_; }  // escaped, without the query
  std::string_view raw_query() const noexcept { return query_; }  // after '?', escaped
  int version() const noexcept { return version_; }  // 10 for HTTP/1.0, 11 for HTTP/1.1
  // The Host header, or the authority of an absolute-form target.
  std::string_view host() const noexcept { return host_; }

  // The first value of a header, by case-insensitive name.
  std::optional<std::string_view> header(std::string_view name) const noexcept;
  std::span<const Header> headers() const noexcept { return {headers_, nheaders_}; }
  // A cookie's value from the Cookie header(s), as sent (not unquoted).
  std::optional<std::string_view> cookie(std::string_view name) const noexcept;
  // The first value of a query parameter, percent- and '+'-decoded.
  std::optional<std::string> query(std::string_view key) const;

  // The decoded value of a path wildcard of the matched pattern ("" if none),
  // and the pattern itself; set by ServeMux.
  std::string_view param(std::string_view name) const noexcept;
  std::string_view pattern() const noexcept;

  // The body's length if Content-Length gave it; nullopt when chunked.
  std::optional<std::uint64_t> content_length() const noexcept { return content_length_; }
  bool chunked() const noexcept { return chunked_; }

  // Reads the whole body, up to `limit` bytes (0: ServerConfig::max_body_bytes).
  // Errors: http::Errc::body_too_large (answer 413; the connection will close),
  // http::Errc::bad_body (malformed chunked framing: the server closes the
  // connection), net::Errc::timeout (ServerConfig::body_read_timeout), or a
  // connection error. The view lives until the handler returns; calling
  // body() again returns the same bytes.
  net::Result<std::string_view> body(std::size_t limit = 0);
  // Streams the body: up to len bytes, 0 at its end. Same errors as body().
  net::Result<std::size_t> read_body(void* buf, std::size_t len);

  net::Address remote_address() const;
  // Done when the client goes away while the handler runs, or when the
  // server shuts down past its grace period (Go's Request.Context()).
  const Context& context() const;

 private:
  friend class detail::ServerConn;
  friend class ServeMux;
  Request() = default;

  std::string_view method_, target_, path_, query_, host_;
  int version_ = 11;
  const Header* headers_ = nullptr;
  std::size_t nheaders_ = 0;
  std::optional<std::uint64_t> content_length_;
  bool chunked_ = false;
  const void* route_ = nullptr;  // the ServeMux match, while routed
  detail::ServerConn* conn_ = nullptr;
};

// Errors of the HTTP layer, beside net::Errc.
enum class Errc {
  body_too_large = 1,  // the body exceeds the limit given to body()/read_body()
  bad_body,            // malformed chunked framing or a body cut short
};
const std::error_category& category() noexcept;
inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), category()};
}

}  // namespace spindle::http

template <>
struct std::is_error_code_enum<spindle::http::Errc> : std::true_type {};
