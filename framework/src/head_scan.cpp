#include "head_scan.hpp"

#include <cstring>

#include "ascii.hpp"

namespace spindle::http::detail {

namespace {

// The line ending at the LF at lf is a field line whose first byte is not
// OWS (obs-fold was rejected), so the walk back stops inside it.
void soften_trailing_ows(char* base, std::size_t lf) noexcept {
  std::size_t j = lf;
  if (base[j - 1] == '\r') --j;
  for (; is_ows(base[j - 1]); --j) base[j - 1] = ' ';
}

}  // namespace

// Each LF ends a line; the line after it either starts with whitespace
// (obs-fold, rejected here because llhttp 8.1 accepts it), is empty (the
// end of the head), or is the next field. An LF whose successor has not
// arrived yet is judged on the next call.
HeadScanner::Outcome HeadScanner::scan(std::span<char> data) noexcept {
  char* base = data.data();
  const std::size_t n = data.size();
  while (pos_ < n) {
    const void* lf = std::memchr(base + pos_, '\n', n - pos_);
    if (!lf) {
      pos_ = n;
      break;
    }
    std::size_t i = static_cast<const char*>(lf) - base;
    if (line_end_ == 0) {
      if (i + 1 > max_line_) return Outcome::uri_too_long;
      line_end_ = i + 1;
    }
    if (i + 1 >= n) {  // the next line's first byte decides
      pos_ = i;
      break;
    }
    char next = base[i + 1];
    if (is_ows(next)) return Outcome::obs_fold;
    if (i >= line_end_) soften_trailing_ows(base, i);
    std::size_t end = 0;
    if (next == '\n') {
      end = i + 2;
    } else if (next == '\r') {
      if (i + 2 >= n) {
        pos_ = i;
        break;
      }
      if (base[i + 2] == '\n') end = i + 3;
    }
    if (end) {
      if (end > max_head_) return Outcome::too_large;
      end_ = end;
      return Outcome::complete;
    }
    pos_ = i + 1;
  }
  if (line_end_ == 0 && n > max_line_) return Outcome::uri_too_long;
  if (n > max_head_) return Outcome::too_large;
  return Outcome::need_more;
}

std::size_t leading_empty_lines(std::string_view data) noexcept {
  std::size_t i = 0;
  for (;;) {
    if (i < data.size() && data[i] == '\n') {
      ++i;
    } else if (i + 1 < data.size() && data[i] == '\r' && data[i + 1] == '\n') {
      i += 2;
    } else {
      return i;
    }
  }
}

}  // namespace spindle::http::detail
