#include "chunked.hpp"

#include <algorithm>
#include <limits>

#include "ascii.hpp"

namespace spindle::http::detail {
namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
constexpr int kSizeDigits = 16;  // hex digits of a 64-bit size; more (leading zeros) cost allowance

// RFC 9110 §5.6.4 qdtext: HTAB, SP, and field-vchar but for '"' and '\'.
constexpr bool is_qdtext(char c) noexcept {
  return is_ows(c) || (is_field_vchar(c) && c != '"' && c != '\\');
}

}  // namespace

void ChunkedDecoder::reset() noexcept {
  state_ = State::size;
  digits_ = 0;
  chunk_size_ = chunk_left_ = body_bytes_ = ext_bytes_ = 0;
  trailer_bytes_ = trailers_ = 0;
  reason_ = "";
}

std::optional<std::size_t> ChunkedDecoder::decode(std::string_view data, BodySink sink, void* ctx) {
  std::size_t i = 0;
  const std::size_t n = data.size();
  while (i < n && state_ != State::done) {
    if (state_ == State::data) {  // the bulk of the bytes: one sink call per piece
      auto take = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_left_, n - i));
      if (sink) sink(ctx, data.data() + i, take);
      i += take;
      chunk_left_ -= take;
      body_bytes_ += take;
      if (chunk_left_ == 0) state_ = State::data_cr;
      continue;
    }
    if (!step(data[i])) return std::nullopt;
    ++i;
  }
  if (state_ == State::error) return std::nullopt;
  return i;
}

bool ChunkedDecoder::fail(const char* why) noexcept {
  state_ = State::error;
  reason_ = why;
  return false;
}

bool ChunkedDecoder::step(char c) noexcept {
  switch (state_) {
    case State::data_cr:
      if (c != '\r') return fail("chunk data not followed by CRLF");
      state_ = State::data_lf;
      return true;
    case State::data_lf:
      if (c != '\n') return fail("bare CR after chunk data");
      state_ = State::size;
      digits_ = 0;
      chunk_size_ = 0;
      return true;
    case State::trailer_start:
    case State::trailer_name:
    case State::trailer_value:
    case State::trailer_lf:
    case State::final_lf:
      return trailer(c);
    case State::error:
      return false;
    case State::data:
    case State::done:  // decode() never steps these
      return fail("internal: chunked decoder stepped in a data state");
    default:
      return size_line(c);
  }
}

// chunk-size [ chunk-ext ] CRLF
bool ChunkedDecoder::size_line(char c) noexcept {
  auto count_ext = [this] {
    return ++ext_bytes_ <= kExtensionAllowance + body_bytes_ || fail("chunk extensions too large");
  };
  switch (state_) {
    case State::size:
      if (int v = hex_value(c); v >= 0) {
        if (chunk_size_ > (kMax >> 4)) return fail("chunk size beyond 64 bits");
        chunk_size_ = chunk_size_ << 4 | static_cast<std::uint64_t>(v);
        return ++digits_ <= kSizeDigits || count_ext();
      }
      if (digits_ == 0) return fail("invalid chunk size");
      if (c == '\r') {
        state_ = State::size_lf;
        return true;
      }
      if (c != ';' && !is_ows(c)) return fail("invalid chunk size");
      state_ = c == ';' ? State::ext_name_start : State::size_ws;
      return count_ext();
    case State::size_lf:
      if (c != '\n') return fail("bare CR in a chunk size line");
      return end_size_line();
    default:
      return count_ext() && extension(c);
  }
}

bool ChunkedDecoder::end_size_line() noexcept {
  if (chunk_size_ > kMax - body_bytes_) return fail("chunked body beyond 64 bits");
  if (chunk_size_ == 0) {
    state_ = State::trailer_start;
  } else {
    chunk_left_ = chunk_size_;
    state_ = State::data;
  }
  return true;
}

// *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), after the
// size (or its BWS) and up to the CR.
bool ChunkedDecoder::extension(char c) noexcept {
  auto next = [this](State s) {
    state_ = s;
    return true;
  };
  auto after_value = [&] {  // a value (or a name without one) has ended
    if (is_ows(c)) return next(State::ext_value_ws);
    if (c == ';') return next(State::ext_name_start);
    if (c == '\r') return next(State::size_lf);
    return fail("invalid chunk extension");
  };
  switch (state_) {
    case State::size_ws:
      if (is_ows(c)) return true;
      if (c == ';') return next(State::ext_name_start);
      return fail("whitespace after a chunk size");
    case State::ext_name_start:
      if (is_ows(c)) return true;
      if (is_tchar(c)) return next(State::ext_name);
      return fail("invalid chunk extension name");
    case State::ext_name:
      if (is_tchar(c)) return true;
      if (is_ows(c)) return next(State::ext_name_ws);
      if (c == '=') return next(State::ext_value_start);
      if (c == ';') return next(State::ext_name_start);
      if (c == '\r') return next(State::size_lf);
      return fail("invalid chunk extension name");
    case State::ext_name_ws:
      if (is_ows(c)) return true;
      if (c == '=') return next(State::ext_value_start);
      if (c == ';') return next(State::ext_name_start);
      return fail("invalid chunk extension");
    case State::ext_value_start:
      if (is_ows(c)) return true;
      if (c == '"') return next(State::ext_quoted);
      if (is_tchar(c)) return next(State::ext_token);
      return fail("invalid chunk extension value");
    case State::ext_token:
      if (is_tchar(c)) return true;
      return after_value();
    case State::ext_quoted:
      if (c == '"') return next(State::ext_value_end);
      if (c == '\\') return next(State::ext_quoted_pair);
      if (is_qdtext(c)) return true;
      return fail("invalid character in a quoted chunk extension");
    case State::ext_quoted_pair:
      if (is_ows(c) || is_field_vchar(c)) return next(State::ext_quoted);
      return fail("invalid quoted-pair in a chunk extension");
    case State::ext_value_end:
      return after_value();
    case State::ext_value_ws:
      if (is_ows(c)) return true;
      if (c == ';') return next(State::ext_name_start);
      return fail("invalid chunk extension");
    default:
      return fail("internal: chunked decoder lost in an extension");
  }
}

// trailer-section CRLF, after the last chunk's size line.
bool ChunkedDecoder::trailer(char c) noexcept {
  if (++trailer_bytes_ > max_trailer_bytes_) return fail("trailer section too large");
  switch (state_) {
    case State::trailer_start:
      if (c == '\r') {
        state_ = State::final_lf;
        return true;
      }
      if (is_ows(c)) return fail("obs-fold or whitespace at the start of a trailer line");
      if (!is_tchar(c)) return fail("invalid trailer field name");
      if (++trailers_ > max_trailers_) return fail("too many trailer fields");
      state_ = State::trailer_name;
      return true;
    case State::trailer_name:
      if (is_tchar(c)) return true;
      if (c != ':') return fail("invalid trailer field name");
      state_ = State::trailer_value;
      return true;
    case State::trailer_value:
      if (is_ows(c) || is_field_vchar(c)) return true;
      if (c != '\r') return fail("invalid character in a trailer value");
      state_ = State::trailer_lf;
      return true;
    case State::trailer_lf:
      if (c != '\n') return fail("bare CR in a trailer field");
      state_ = State::trailer_start;
      return true;
    case State::final_lf:
      if (c != '\n') return fail("bare CR ending the chunked body");
      state_ = State::done;
      return true;
    default:
      return fail("internal: chunked decoder lost in the trailers");
  }
}

}  // namespace spindle::http::detail
