// Appending many small pieces to a string without a capacity check each:
// the caller reserves an upper bound up front, the destructor trims.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace spindle::http::detail {

class SpanWriter {
 public:
  // max: no more than this many bytes will be put.
  SpanWriter(std::string& out, std::size_t max) : out_(out) {
    std::size_t at = out.size();
    out.resize(at + max);
    p_ = out.data() + at;
  }
  ~SpanWriter() { out_.resize(static_cast<std::size_t>(p_ - out_.data())); }
  SpanWriter(const SpanWriter&) = delete;
  SpanWriter& operator=(const SpanWriter&) = delete;

  SpanWriter& put(std::string_view s) noexcept {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
    return *this;
  }
  // s with CR and LF replaced by spaces: a handler's header text must not
  // be able to end the header line (response splitting).
  SpanWriter& put_field_text(std::string_view s) noexcept {
    for (char c : s) *p_++ = c == '\r' || c == '\n' ? ' ' : c;
    return *this;
  }
  SpanWriter& number(std::uint64_t v, int base = 10) noexcept {
    p_ = std::to_chars(p_, p_ + 20, v, base).ptr;
    return *this;
  }

 private:
  std::string& out_;
  char* p_;
};

}  // namespace spindle::http::detail
