#include "target.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "ascii.hpp"

namespace spindle::http::detail {
namespace {

bool starts_with_ci(std::string_view s, std::string_view prefix) noexcept {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (ascii_lower(s[i]) != prefix[i]) return false;
  return true;
}

void split_query(std::string_view rest, Target& t) noexcept {
  auto q = rest.find('?');
  t.path = rest.substr(0, q);
  t.query = q == std::string_view::npos ? std::string_view{} : rest.substr(q + 1);
}

// unreserved / sub-delims (RFC 3986 §2): a reg-name's bytes besides pct-encoded.
bool is_name_char(char c) noexcept {
  static constexpr auto kAllowed = [] {
    std::array<bool, 256> t{};
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (char c : std::string_view("-._~!$&'()*+,;=")) t[static_cast<unsigned char>(c)] = true;
    return t;
  }();
  return kAllowed[static_cast<unsigned char>(c)];
}

// reg-name = *( unreserved / pct-encoded / sub-delims ), which covers
// IPv4address too: the length of the reg-name that starts host (up to a
// ':' or the end), or npos if a byte before that is not allowed. One table
// look-up per byte on the common path (Host is checked on every request).
std::size_t reg_name_length(std::string_view host) noexcept {
  const std::size_t n = host.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (is_name_char(host[i])) continue;
    if (host[i] == ':') return i;
    if (host[i] != '%' || i + 2 >= n || hex_value(host[i + 1]) < 0 || hex_value(host[i + 2]) < 0)
      return std::string_view::npos;
    i += 2;
  }
  return n;
}

// IP-literal's inside: IPv6address, or IPvFuture = "v" 1*HEXDIG "."
// 1*( unreserved / sub-delims / ":" ).
bool valid_ip_literal(std::string_view lit) noexcept {
  if (!lit.empty() && (lit[0] == 'v' || lit[0] == 'V')) {
    auto dot = lit.find('.');
    if (dot == std::string_view::npos || dot == 1 || dot + 1 == lit.size()) return false;
    std::string_view version = lit.substr(1, dot - 1), rest = lit.substr(dot + 1);
    return std::all_of(version.begin(), version.end(), [](char c) { return hex_value(c) >= 0; }) &&
           std::all_of(rest.begin(), rest.end(),
                       [](char c) { return c == ':' || is_name_char(c); });
  }
  char text[INET6_ADDRSTRLEN];
  if (lit.size() >= sizeof text) return false;
  std::memcpy(text, lit.data(), lit.size());
  text[lit.size()] = '\0';
  in6_addr addr;
  return inet_pton(AF_INET6, text, &addr) == 1;
}

}  // namespace

std::optional<Target> split_target(std::string_view target, std::string_view method) noexcept {
  Target t;
  if (method == "CONNECT") {
    if (target.empty() || target[0] == '/' || !valid_host(target)) return std::nullopt;
    t.authority = target;
    return t;
  }
  if (!target.empty() && target[0] == '/') {
    split_query(target, t);
    return t;
  }
  if (target == "*") {
    if (method != "OPTIONS") return std::nullopt;
    t.path = target;
    return t;
  }
  std::size_t skip = starts_with_ci(target, "http://")    ? 7
                     : starts_with_ci(target, "https://") ? 8
                                                          : 0;
  if (skip == 0) return std::nullopt;
  std::string_view rest = target.substr(skip);
  auto end = rest.find_first_of("/?#");
  t.authority = rest.substr(0, end);
  if (t.authority.empty() || !valid_host(t.authority)) return std::nullopt;
  rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  if (rest.empty() || rest[0] != '/') {
    // "http://h" or "http://h?q": the path is "/" (RFC 9112 §3.2.1).
    t.path = "/";
    t.query = rest.empty() || rest[0] != '?' ? std::string_view{} : rest.substr(1);
    return t;
  }
  split_query(rest, t);
  return t;
}

// Host = uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2).
bool valid_host(std::string_view host) noexcept {
  std::size_t end;  // of the uri-host
  if (!host.empty() && host[0] == '[') {
    end = host.find(']');
    if (end == std::string_view::npos || !valid_ip_literal(host.substr(1, end - 1))) return false;
    ++end;
  } else {
    end = reg_name_length(host);
    if (end == std::string_view::npos) return false;
  }
  if (end == host.size()) return true;
  if (host[end] != ':') return false;
  std::string_view port = host.substr(end + 1);
  return std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace spindle::http::detail
