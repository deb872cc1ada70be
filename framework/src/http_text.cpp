// Request's text accessors (headers, cookies, query), reason phrases and the
// http::Errc category. All of them scan the request on demand: nothing is
// parsed or allocated for a handler that does not ask.
#include <spindle/http/request.hpp>
#include <spindle/http/response.hpp>

#include <algorithm>
#include <iterator>
#include <string>
#include <utility>

#include "ascii.hpp"
#include "http_text.hpp"
#include "path.hpp"

namespace spindle::http {
namespace {

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits s at the first sep: returns what precedes it and leaves the rest
// in s (empty when there is no sep).
std::string_view cut(std::string_view& s, char sep) noexcept {
  auto at = s.find(sep);
  std::string_view head = s.substr(0, at);
  s.remove_prefix(at == s.npos ? s.size() : at + 1);
  return head;
}

// RFC 9110 tchar.
bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), detail::is_tchar);
}

// Go's parseCookieValue: an optional pair of quotes around bytes that are
// printable ASCII but for '"', ';' and '\'. Go also lets in space and comma,
// which RFC 6265 excludes but browsers send.
bool valid_cookie_value(std::string_view v) noexcept {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return std::all_of(v.begin(), v.end(), [](char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != ';' && c != '\\';
  });
}

// Go's QueryUnescape: '+' is a space, %XX a byte; nullopt on a bad escape.
std::optional<std::string> query_unescape(std::string_view s) {
  if (!detail::valid_escapes(s)) return std::nullopt;
  std::string spaced(s);
  // Before decoding, so that "%2B" stays a '+'.
  std::replace(spaced.begin(), spaced.end(), '+', ' ');
  return detail::unescape(spaced);
}

bool query_key_is(std::string_view raw, std::string_view key) {
  if (raw.find_first_of("%+") == raw.npos) return raw == key;
  auto decoded = query_unescape(raw);
  return decoded && *decoded == key;
}

class ErrorCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "spindle.http"; }
  std::string message(int code) const override {
    switch (static_cast<Errc>(code)) {
      case Errc::body_too_large:
        return "request body larger than the limit";
      case Errc::bad_body:
        return "malformed or truncated request body";
    }
    return "unknown http error " + std::to_string(code);
  }
};

}  // namespace

namespace detail {

// Go's readCookies: every Cookie header, pairs split at ';'; a pair with a
// name that is not a token or a value with bad bytes is skipped; "name"
// alone is an empty value. Names are compared case-sensitively, as browsers
// store them.
std::optional<std::string_view> find_cookie(std::span<const Header> headers,
                                            std::string_view name) noexcept {
  for (const Header& h : headers) {
    if (!iequals(h.name, "Cookie")) continue;
    for (std::string_view line = h.value; !line.empty();) {
      std::string_view value = trim_ows(cut(line, ';'));
      std::string_view key = trim_ows(cut(value, '='));
      value = trim_ows(value);
      if (key == name && is_token(key) && valid_cookie_value(value)) return value;
    }
  }
  return std::nullopt;
}

// Go's url.ParseQuery then Values.Get: pairs split at '&', "key" alone is an
// empty value, and a pair with a bad escape or a ';' (Go 1.17+: a proxy may
// read ';' as a separator, so it is refused) is skipped, not an error.
std::optional<std::string> find_query(std::string_view raw_query, std::string_view key) {
  for (std::string_view rest = raw_query; !rest.empty();) {
    std::string_view value = cut(rest, '&');
    if (value.find(';') != value.npos) continue;
    std::string_view raw_key = cut(value, '=');
    if (raw_key.empty() && value.empty()) continue;
    if (!query_key_is(raw_key, key)) continue;
    if (auto decoded = query_unescape(value)) return decoded;
  }
  return std::nullopt;
}

}  // namespace detail

std::optional<std::string_view> Request::header(std::string_view name) const noexcept {
  for (const Header& h : headers()) {
    if (iequals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

std::optional<std::string_view> Request::cookie(std::string_view name) const noexcept {
  return detail::find_cookie(headers(), name);
}

std::optional<std::string> Request::query(std::string_view key) const {
  return detail::find_query(raw_query(), key);
}

// The IANA HTTP Status Code Registry (RFC 9110 names), sorted by code. 306
// and 418 are registered as "(Unused)": 418 keeps the name everyone uses, as
// Go does; 306 has none.
constexpr std::pair<int, std::string_view> kReasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {207, "Multi-Status"},
    {208, "Already Reported"},
    {226, "IM Used"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {418, "I'm a teapot"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {506, "Variant Also Negotiates"},
    {507, "Insufficient Storage"},
    {508, "Loop Detected"},
    {510, "Not Extended"},
    {511, "Network Authentication Required"},
};

std::string_view reason_phrase(int status) noexcept {
  auto it = std::lower_bound(std::begin(kReasons), std::end(kReasons), status,
                             [](const auto& r, int s) { return r.first < s; });
  return it != std::end(kReasons) && it->first == status ? it->second : std::string_view();
}

const std::error_category& category() noexcept {
  static const ErrorCategory instance;
  return instance;
}

}  // namespace spindle::http
