#include "pattern.hpp"

#include <spindle/http/router.hpp>

#include <algorithm>
#include <stdexcept>

#include "path.hpp"

namespace spindle::http::detail {
namespace {

using Kind = Segment::Kind;

[[noreturn]] void fail(std::string_view pattern, std::string_view why) {
  throw std::invalid_argument("spindle::http: pattern \"" + std::string(pattern) +
                              "\": " + std::string(why));
}

bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

// RFC 9110 token, as Go's validMethod.
bool valid_method(std::string_view m) noexcept {
  if (m.empty()) return false;
  for (char c : m) {
    if (!is_alpha(c) && !is_digit(c) && std::string_view("!#$%&'*+.^_`|~-").find(c) == m.npos)
      return false;
  }
  return true;
}

// A Go identifier (ASCII only).
bool valid_name(std::string_view n) noexcept {
  if (n.empty() || is_digit(n[0])) return false;
  for (char c : n) {
    if (!is_alpha(c) && !is_digit(c) && c != '_') return false;
  }
  return true;
}

// Parses the segment seg, the last one when last is set, into p.
void add_segment(Pattern& p, std::string_view seg, bool last) {
  if (seg.find('{') == seg.npos) {
    if (!valid_escapes(seg)) fail(p.str, "invalid percent-encoding");
    p.segments.push_back({Kind::literal, unescape(seg)});
    return;
  }
  if (seg.front() != '{') fail(p.str, "bad wildcard segment (must start with '{')");
  if (seg.back() != '}') fail(p.str, "bad wildcard segment (must end with '}')");
  std::string_view name = seg.substr(1, seg.size() - 2);
  if (name == "$") {
    if (!last) fail(p.str, "{$} not at end");
    p.segments.push_back({Kind::dollar, ""});
    return;
  }
  bool multi = name.ends_with("...");
  if (multi) name.remove_suffix(3);
  if (multi && !last) fail(p.str, "{...} wildcard not at end");
  if (!valid_name(name)) fail(p.str, "bad wildcard name \"" + std::string(name) + "\"");
  for (const auto& n : p.names) {
    if (n == name) fail(p.str, "duplicate wildcard name \"" + std::string(name) + "\"");
  }
  if (p.names.size() == RouteMatch::kMaxParams) fail(p.str, "too many wildcards");
  p.names.emplace_back(name);
  p.segments.push_back({multi ? Kind::multi : Kind::wild, std::string(name)});
}

// How the requests matched by p1 relate to those matched by p2.
enum class Rel { equivalent, more_general, more_specific, disjoint, overlaps };

Rel inverse(Rel r) noexcept {
  if (r == Rel::more_general) return Rel::more_specific;
  if (r == Rel::more_specific) return Rel::more_general;
  return r;
}

// The relation of two patterns given the relations of two independent parts
// of them (methods and paths, or consecutive segments).
Rel combine(Rel r1, Rel r2) noexcept {
  switch (r1) {
    case Rel::equivalent:
      return r2;
    case Rel::disjoint:
      return Rel::disjoint;
    case Rel::overlaps:
      return r2 == Rel::disjoint ? Rel::disjoint : Rel::overlaps;
    default:  // more_general, more_specific
      if (r2 == Rel::equivalent) return r1;
      if (r2 == inverse(r1)) return Rel::overlaps;
      return r2;
  }
}

Rel compare_methods(const Pattern& p1, const Pattern& p2) noexcept {
  if (p1.method == p2.method) return Rel::equivalent;
  if (p1.method.empty()) return Rel::more_general;
  if (p2.method.empty()) return Rel::more_specific;
  if (p1.method == "GET" && p2.method == "HEAD") return Rel::more_general;
  if (p1.method == "HEAD" && p2.method == "GET") return Rel::more_specific;
  return Rel::disjoint;
}

Rel compare_segments(const Segment& s1, const Segment& s2) noexcept {
  if (s1.kind == Kind::multi || s2.kind == Kind::multi) {
    if (s1.kind == s2.kind) return Rel::equivalent;
    return s1.kind == Kind::multi ? Rel::more_general : Rel::more_specific;
  }
  // A single wildcard matches a non-empty segment, never the trailing slash.
  if (s1.kind == Kind::wild && s2.kind == Kind::wild) return Rel::equivalent;
  if (s1.kind == Kind::wild) return s2.kind == Kind::dollar ? Rel::disjoint : Rel::more_general;
  if (s2.kind == Kind::wild) return s1.kind == Kind::dollar ? Rel::disjoint : Rel::more_specific;
  if (s1.kind == s2.kind && s1.text == s2.text) return Rel::equivalent;
  return Rel::disjoint;
}

Rel compare_paths(const Pattern& p1, const Pattern& p2) noexcept {
  const auto &a = p1.segments, &b = p2.segments;
  std::size_t n = std::min(a.size(), b.size());
  Rel rel = Rel::equivalent;
  for (std::size_t i = 0; i < n && rel != Rel::disjoint; ++i) {
    rel = combine(rel, compare_segments(a[i], b[i]));
  }
  if (rel == Rel::disjoint || a.size() == b.size()) return rel;
  // The shorter pattern must end in a multi, which matches all the longer
  // one's remaining segments can.
  if (a.size() < b.size())
    return p1.ends_in_multi() ? combine(rel, Rel::more_general) : Rel::disjoint;
  return p2.ends_in_multi() ? combine(rel, Rel::more_specific) : Rel::disjoint;
}

// A path that both patterns match, to show in a conflict message: where one
// has a wildcard, the other's segment.
std::string common_path(const Pattern& p1, const Pattern& p2) {
  const auto &a = p1.segments, &b = p2.segments;
  std::string out;
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const Segment* s = &b[std::min(i, b.size() - 1)];
    if (i >= b.size() || (i < a.size() && a[i].kind != Kind::wild && a[i].kind != Kind::multi))
      s = &a[i];
    out += '/';
    if (s->kind == Kind::literal || s->kind == Kind::wild) out += s->text;
  }
  return out;
}

}  // namespace

Pattern parse_pattern(std::string_view s) {
  Pattern p;
  p.str = s;
  if (s.empty()) fail(s, "empty pattern");
  std::string_view rest = s;
  if (auto sp = s.find_first_of(" \t"); sp != s.npos) {
    p.method = s.substr(0, sp);
    if (!valid_method(p.method)) fail(s, "invalid method \"" + p.method + "\"");
    auto start = s.find_first_not_of(" \t", sp);
    rest = start == s.npos ? std::string_view() : s.substr(start);
  }
  auto slash = rest.find('/');
  if (slash == rest.npos) fail(s, "host/path missing /");
  p.host = rest.substr(0, slash);
  if (p.host.find('{') != std::string::npos) fail(s, "host contains '{' (missing initial '/'?)");
  std::string_view path = rest.substr(slash);
  // Request paths are cleaned before matching, so this could never match.
  if (!is_clean(path)) fail(s, "unclean path can never match");

  while (!path.empty()) {
    path.remove_prefix(1);  // the '/'
    if (path.empty()) {     // trailing slash: the subtree
      p.segments.push_back({Kind::multi, ""});
      break;
    }
    auto end = path.find('/');
    add_segment(p, path.substr(0, end), end == path.npos);
    path = end == path.npos ? std::string_view() : path.substr(end);
  }
  return p;
}

void check_conflict(const Pattern& registered, const Pattern& added) {
  // Rule 1: a pattern with a host beats one without; different hosts are disjoint.
  if (registered.host != added.host) return;
  Rel mrel = compare_methods(added, registered);
  if (mrel == Rel::disjoint) return;
  Rel prel = compare_paths(added, registered);
  Rel rel = combine(mrel, prel);
  if (rel != Rel::equivalent && rel != Rel::overlaps) return;

  std::string a = "\"" + added.str + "\"", r = "\"" + registered.str + "\"";
  std::string why;
  if (rel == Rel::equivalent) {
    why = a + " matches the same requests as " + r;
  } else if (prel == Rel::overlaps) {
    why = a + " and " + r + " both match some paths, like \"" + common_path(added, registered) +
          "\", but neither is more specific than the other";
  } else if (mrel == Rel::more_general) {
    why = a + " matches more methods than " + r + ", but has a more specific path";
  } else {
    why = a + " matches fewer methods than " + r + ", but has a more general path";
  }
  throw std::invalid_argument("spindle::http: pattern " + a + " conflicts with pattern " + r +
                              ": " + why);
}

}  // namespace spindle::http::detail
