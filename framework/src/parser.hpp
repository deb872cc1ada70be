// One request's framing: the header section parsed by llhttp (strict
// mode) plus the checks llhttp 8.1 leaves to its user; the body framed
// here (Content-Length counted, chunked decoded by ChunkedDecoder).
//
// parse_head() runs over a complete header section (see head_scan.hpp) in
// one llhttp_execute, so names and values are views into that one buffer;
// parse_body() then takes the bytes after it, piece by piece as they are
// read, and stops at the end of the message, so the next pipelined request
// is never touched.
//
// What llhttp 8.1 strict mode rejects by itself: both Content-Length and
// Transfer-Encoding, repeated or malformed Content-Length ("+5", "5, 5",
// empty), chunked not last or twice, bare LF at the end of header lines,
// bad characters in names and values. What is checked here: the request
// line's single spaces and its version's presence (llhttp skips repeated
// spaces and takes a missing version for HTTP/0.9), an empty field name
// (llhttp 8.1 glues ": v" onto the previous field), obs-fold (head_scan),
// Transfer-Encoding on HTTP/1.0 or empty (400), codings other than chunked
// (501, RFC 9112 §6.1), versions other than HTTP/1.x (505; 1.2+ is served
// as 1.1, RFC 9110 §6.2; llhttp's LENIENT_VERSION is on only so that this
// decision is ours), Host (RFC 9112 §3.2: exactly one, valid, on 1.1).
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "chunked.hpp"
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
  std::uint64_t body_bytes() const noexcept;
  // Body bytes announced (by Content-Length or the current chunk's size)
  // and not parsed yet: a size limit can be enforced before they arrive.
  // body_bytes() + announced() fits 64 bits (the decoder refuses more).
  std::uint64_t announced() const noexcept;
  // Why parsing failed, for the log.
  const char* reason() const noexcept { return reason_; }

  // Feeds body bytes; sink (may be null) gets the decoded pieces (views
  // into data). Returns how many bytes of data belong to this message (the
  // rest is the next request), or nullopt if the body is malformed.
  std::optional<std::size_t> parse_body(std::string_view data, BodySink sink, void* ctx);

 private:
  friend struct ParserCallbacks;
  int finish_head(std::string_view head);

  llhttp_t p_{};
  std::size_t max_headers_;
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
  bool te_empty_ = false;  // an empty Transfer-Encoding

  // Body state: a Content-Length body counts down length_left_; a chunked
  // one is decoded by chunks_.
  std::uint64_t length_left_ = 0;
  ChunkedDecoder chunks_;
};

}  // namespace spindle::http::detail
