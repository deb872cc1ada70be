// The chunked transfer coding of a request body (RFC 9112 §7.1), decoded
// strictly, as bytes arrive.
//
// llhttp 8.1 parses the header section only; the body is ours because its
// chunk parser rejects what RFC 9112 allows (BWS around ';' and '=' in
// extensions, quoted-pairs, an extension after one with a value) and lets
// through what it forbids (obs-fold in trailers, a huge chunk size that
// then waits for data forever).
//
//   chunked-body = *chunk last-chunk trailer-section CRLF
//   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//   chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//   chunk-ext-val = token / quoted-string
//
// Line ends are CRLF only: a bare LF or a bare CR anywhere in the framing is
// an error (Go's CVE-2025-22871). chunk-size is 1*HEXDIG without a sign,
// prefix or whitespace before the first ';', and must fit 64 bits.
// Extension bytes are bounded as Go does (CVE-2023-39326): 16 KiB more than
// the data decoded so far. Trailer fields follow the header rules (a token
// name, no whitespace before ':', field-vchar/SP/HTAB values, no obs-fold)
// and limits (bytes and count); they are checked and dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace spindle::http::detail {

// Receives decoded body bytes: views into the data being decoded.
using BodySink = void (*)(void* ctx, const char* at, std::size_t len);

class ChunkedDecoder {
 public:
  static constexpr std::uint64_t kExtensionAllowance = 16 * 1024;  // bytes, as Go's

  ChunkedDecoder(std::size_t max_trailer_bytes, std::size_t max_trailers) noexcept
      : max_trailer_bytes_(max_trailer_bytes), max_trailers_(max_trailers) {}

  // Forget the previous body.
  void reset() noexcept;

  // Decodes data, which follows the bytes given to earlier calls. Returns how
  // many bytes belong to this body (all of data unless it ends inside), or
  // nullopt if the framing is malformed (reason() says why; every later
  // call fails too). sink may be null (the data is dropped).
  std::optional<std::size_t> decode(std::string_view data, BodySink sink, void* ctx);

  bool done() const noexcept { return state_ == State::done; }
  // Data bytes decoded so far.
  std::uint64_t body_bytes() const noexcept { return body_bytes_; }
  // Data bytes the current chunk has announced and not delivered yet: a
  // caller with a size limit can refuse a chunk before its data arrives.
  std::uint64_t announced() const noexcept { return chunk_left_; }
  const char* reason() const noexcept { return reason_; }

 private:
  enum class State : unsigned char {
    size,             // chunk-size digits
    size_ws,          // BWS after the size: only ';' may follow
    ext_name_start,   // after ';' (BWS allowed)
    ext_name,         // in chunk-ext-name
    ext_name_ws,      // BWS after the name: '=' or ';' follow
    ext_value_start,  // after '=' (BWS allowed)
    ext_token,        // in a token value
    ext_quoted,       // in a quoted-string
    ext_quoted_pair,  // after '\' in a quoted-string
    ext_value_end,    // after a value: ';', BWS or CR
    ext_value_ws,     // BWS after a value: ';' must follow
    size_lf,          // CR of the size line seen
    data,             // chunk-data
    data_cr,          // chunk-data done: CR expected
    data_lf,          // LF expected
    trailer_start,    // a trailer line's first byte (or CR of the final line)
    trailer_name,     // in a trailer field name
    trailer_value,    // after the ':'
    trailer_lf,       // CR of a trailer line seen
    final_lf,         // CR of the final empty line seen
    done,
    error,
  };

  // One framing byte; false with reason_ set on an error.
  bool step(char c) noexcept;
  bool size_line(char c) noexcept;
  bool extension(char c) noexcept;
  bool trailer(char c) noexcept;
  bool end_size_line() noexcept;
  bool fail(const char* why) noexcept;

  std::size_t max_trailer_bytes_, max_trailers_;
  State state_ = State::size;
  int digits_ = 0;                // hex digits of this chunk-size
  std::uint64_t chunk_size_ = 0;  // the size being read
  std::uint64_t chunk_left_ = 0;  // data bytes still to come in this chunk
  std::uint64_t body_bytes_ = 0;
  std::uint64_t ext_bytes_ = 0;  // size-line bytes beyond 16 digits and CRLF
  std::size_t trailer_bytes_ = 0, trailers_ = 0;
  const char* reason_ = "";
};

}  // namespace spindle::http::detail
