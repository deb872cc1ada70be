// One request's framing, parsed by llhttp (strict mode) plus the checks
// llhttp 8.1 leaves to its user.
//
// parse_head() runs over a complete header section (see head_scan.hpp) in
// one llhttp_execute, so names and values are views into that one buffer;
// parse_body() then feeds the bytes after it, piece by piece as they are
// read, and stops at the end of the message (llhttp is paused there), so
// the next pipelined request is never touched.
//
// What llhttp 8.1 strict mode rejects by itself: both Content-Length and
// Transfer-Encoding, repeated or malformed Content-Length ("+5", "5, 5",
// empty), chunked not last or twice, bare LF at the end of header lines and
// of chunk sizes and data, bad characters in names and values. What is
// checked here: obs-fold (head_scan), Transfer-Encoding on HTTP/1.0 (400),
// codings other than chunked (501, RFC 9112 §6.1), versions other than
// HTTP/1.x (505; 1.2+ is served as 1.1, RFC 9110 §6.2; llhttp's
// LENIENT_VERSION is on only so that this decision is ours), Host (RFC 9112
// §3.2: exactly one, valid, on 1.1), a bare LF ending the trailer section,
// and the bytes spent on chunk extensions and trailers.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "spindle/http/request.hpp"
#include "target.hpp"

namespace spindle::http::detail {

class Parser {
 public:
  Parser(std::size_t max_headers, std::size_t max_trailer_bytes);
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Parses a complete header section. 0 on success, else the status to
  // answer before closing: 400, 431, 501 or 505.
  int parse_head(std::string_view head);

  std::string_view method() const noexcept { return method_; }
  std::string_view target() const noexcept { return target_; }
  const Target& target_parts() const noexcept { return parts_; }  // after parse_head
  int version() const noexcept { return version_; }               // 10 or 11
  std::span<const Header> headers() const noexcept { return headers_; }
  std::string_view host() const noexcept { return host_; }
  std::optional<std::string_view> expect() const noexcept { return expect_; }
  std::optional<std::uint64_t> content_length() const noexcept { return content_length_; }
  bool chunked() const noexcept { return chunked_; }
  // The client allows another request after this one.
  bool keep_alive() const noexcept { return keep_alive_; }
  // The message is complete (no body, or all of it parsed).
  bool complete() const noexcept { return complete_; }
  // Decoded body bytes parsed so far.
  std::uint64_t body_bytes() const noexcept { return body_bytes_; }
  // Why parsing failed, for the log.
  const char* reason() const noexcept { return reason_; }

  // Feeds body bytes; on_body gets the decoded pieces (views into data).
  // Returns how many bytes of data belong to this message (the rest is the
  // next request), or nullopt if the body is malformed.
  using BodySink = void (*)(void* ctx, const char* at, std::size_t len);
  std::optional<std::size_t> parse_body(std::string_view data, BodySink sink, void* ctx);

 private:
  friend struct ParserCallbacks;
  int finish_head();
  bool trailer_ends_with_crlf(std::string_view fed) const noexcept;

  llhttp_t p_{};
  std::size_t max_headers_, max_trailer_bytes_;
  std::vector<Header> headers_;  // capacity kept from request to request

  std::string_view method_, target_, host_;
  Target parts_;
  std::optional<std::string_view> expect_;
  std::optional<std::uint64_t> content_length_;
  int version_ = 11;
  int host_count_ = 0;
  int status_ = 0;  // set by a callback that fails the head
  const char* reason_ = "";
  bool in_value_ = false;  // the last header callback was a value
  bool head_done_ = false, complete_ = false, chunked_ = false, keep_alive_ = false;
  bool te_other_ = false;  // a Transfer-Encoding other than "chunked"

  // Body state.
  BodySink sink_ = nullptr;
  void* sink_ctx_ = nullptr;
  std::uint64_t body_bytes_ = 0, ext_bytes_ = 0, trailer_bytes_ = 0;
  std::size_t trailers_ = 0;
  char tail_[2] = {0, 0};  // the last two body bytes fed, for the final CRLF check
  bool body_error_ = false;
};

}  // namespace spindle::http::detail
