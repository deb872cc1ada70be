// Finding the end of a request's header section before it is parsed.
//
// The server hands llhttp a header section only once it is whole, so that
// every name and value arrives in one callback as a view into one
// contiguous buffer. This scanner finds that end incrementally (each byte
// is looked at about once, however slowly the client trickles it in) and
// enforces the size limits on the way.
//
// It also rewrites, in place, each HTAB in a field line's trailing OWS as
// SP: llhttp 8.1 accepts only SP after a Content-Length's digits, while
// RFC 9110 §5.5 makes any OWS there no part of the value (values are
// trimmed, so no view the handler sees changes).
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace spindle::http::detail {

class HeadScanner {
 public:
  enum class Outcome { need_more, complete, uri_too_long, too_large, obs_fold };

  HeadScanner(std::size_t max_request_line, std::size_t max_head)
      : max_line_(max_request_line), max_head_(max_head) {}

  // Scans data (the bytes of the request so far, from its first byte;
  // earlier calls saw a prefix of it). complete: head_length() is the
  // length of the header section, its final empty line included.
  Outcome scan(std::span<char> data) noexcept;
  std::size_t head_length() const noexcept { return end_; }
  // Forget the previous request.
  void reset() noexcept { pos_ = end_ = line_end_ = 0; }

 private:
  std::size_t max_line_, max_head_;
  std::size_t pos_ = 0;       // where to resume: every LF before it is judged
  std::size_t end_ = 0;       // the head's length, once complete
  std::size_t line_end_ = 0;  // 1 + the request line's LF, once seen (else 0)
};

// Bytes of empty lines (CRLF or LF) at the start of data, which RFC 9112
// §2.2 lets a server ignore before a request line.
std::size_t leading_empty_lines(std::string_view data) noexcept;

}  // namespace spindle::http::detail
