#include "target.hpp"

#include <array>

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

bool valid_host(std::string_view host) noexcept {
  // unreserved, sub-delims, '%' of pct-encoded, ':' of the port, '[' ']' of IP-literal.
  static constexpr auto kAllowed = [] {
    std::array<bool, 256> t{};
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (char c : std::string_view("-._~!$&'()*+,;=%:[]")) t[static_cast<unsigned char>(c)] = true;
    return t;
  }();
  for (char c : host)
    if (!kAllowed[static_cast<unsigned char>(c)]) return false;
  return true;
}

}  // namespace spindle::http::detail
