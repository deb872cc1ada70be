// Parsed routing patterns and Go's precedence relation between them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace spindle::http::detail {

struct Segment {
  enum class Kind {
    literal,  // text is the unescaped segment
    wild,     // {text}
    multi,    // {text...}, or a trailing slash (text empty): the rest of the path
    dollar,   // {$}: the trailing slash only
  };
  Kind kind;
  std::string text;
};

struct Pattern {
  std::string str;     // as registered
  std::string method;  // empty: any
  std::string host;    // empty: any
  std::vector<Segment> segments;
  std::vector<std::string> names;  // named wildcards, in path order

  bool ends_in_multi() const { return segments.back().kind == Segment::Kind::multi; }
};

// Throws std::invalid_argument saying what is wrong with s.
Pattern parse_pattern(std::string_view s);

// Throws std::invalid_argument naming both patterns if some request matches
// both and neither is more specific, so neither can be said to win.
void check_conflict(const Pattern& registered, const Pattern& added);

}  // namespace spindle::http::detail
