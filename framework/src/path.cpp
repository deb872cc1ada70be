#include "path.hpp"

#include <vector>

namespace spindle::http::detail {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The byte at s[i] after decoding; advances i past it.
unsigned char next_unescaped(std::string_view s, std::size_t& i) noexcept {
  if (s[i] != '%') return static_cast<unsigned char>(s[i++]);
  auto c = static_cast<unsigned char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
  i += 3;
  return c;
}

bool dot_segment(std::string_view seg) noexcept {
  return seg == "." || seg == "..";
}

}  // namespace

bool valid_escapes(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') continue;
    if (i + 2 >= s.size() || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0) return false;
    i += 2;
  }
  return true;
}

std::string unescape(std::string_view s) {
  std::string out;
  unescape_append(out, s);
  return out;
}

void unescape_append(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size());
  for (std::size_t i = 0; i < s.size();) out.push_back(static_cast<char>(next_unescaped(s, i)));
}

int compare_unescaped(std::string_view escaped, std::string_view plain) noexcept {
  std::size_t i = 0, j = 0;
  while (i < escaped.size() && j < plain.size()) {
    unsigned char a = next_unescaped(escaped, i);
    auto b = static_cast<unsigned char>(plain[j++]);
    if (a != b) return a < b ? -1 : 1;
  }
  bool escaped_done = i == escaped.size(), plain_done = j == plain.size();
  if (escaped_done && plain_done) return 0;
  return escaped_done ? -1 : 1;
}

bool is_clean(std::string_view path) noexcept {
  if (path.empty() || path[0] != '/') return false;
  if (path == "/") return true;
  // Every segment but a final empty one (the trailing slash) must be a name.
  std::string_view rest = path.substr(1);
  for (;;) {
    auto slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    if (seg.empty() || dot_segment(seg)) return false;
    if (slash == std::string_view::npos) return true;
    rest.remove_prefix(slash + 1);
    if (rest.empty()) return true;
  }
}

std::string cleaned(std::string_view path) {
  std::vector<std::string_view> segs;
  for (std::size_t pos = 0; pos <= path.size();) {
    auto slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view seg = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (seg == "..") {
      if (!segs.empty()) segs.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segs.push_back(seg);
    }
  }
  std::string out;
  for (auto seg : segs) out.append("/").append(seg);
  // Like Go, keep a trailing slash: "/a/b/" may be routed to a subtree.
  if (out.empty() || path.ends_with('/')) out.push_back('/');
  return out;
}

std::string_view strip_port(std::string_view host) noexcept {
  auto colon = host.rfind(':');
  if (colon == std::string_view::npos) return host;
  auto bracket = host.rfind(']');
  if (bracket != std::string_view::npos) {
    // "[::1]:80" -> "::1"; a bare "[::1]" has no port.
    if (colon < bracket || host.front() != '[') return host;
    return host.substr(1, bracket - 1);
  }
  if (host.find(':') != colon) return host;  // an unbracketed IPv6 literal
  return host.substr(0, colon);
}

}  // namespace spindle::http::detail
