// ChunkedDecoder: the chunked transfer coding of request bodies (RFC 9112
// §7.1), fed whole and split at every byte.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "../../framework/src/chunked.hpp"

using spindle::http::detail::ChunkedDecoder;
using namespace std::string_view_literals;

namespace {

constexpr std::size_t kMaxTrailerBytes = 1024, kMaxTrailers = 4;

struct Decoded {
  bool ok = false;
  std::string body;
  std::size_t used = 0;  // bytes of the input that belong to the body
  std::string reason;
};

void append(void* out, const char* at, std::size_t len) {
  static_cast<std::string*>(out)->append(at, len);
}

// Feeds `wire` in pieces of at most `piece` bytes, as reads would bring them.
Decoded decode(std::string_view wire, std::size_t piece = SIZE_MAX) {
  ChunkedDecoder d(kMaxTrailerBytes, kMaxTrailers);
  d.reset();
  Decoded out;
  while (out.used < wire.size() && !d.done()) {
    std::string_view next = wire.substr(out.used, piece);
    auto n = d.decode(next, append, &out.body);
    if (!n) {
      out.reason = d.reason();
      return out;
    }
    out.used += *n;
  }
  out.ok = d.done();
  return out;
}

// Accepted in one piece and in every split, with the same body.
void check_ok(std::string_view wire, std::string_view body) {
  CAPTURE(std::string(wire));
  for (std::size_t piece : {SIZE_MAX, std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
    CAPTURE(piece);
    Decoded d = decode(wire, piece);
    CHECK(d.ok);
    CHECK(d.reason == "");
    CHECK(d.body == body);
  }
}

void check_rejected(std::string_view wire) {
  CAPTURE(std::string(wire));
  for (std::size_t piece : {SIZE_MAX, std::size_t{1}}) {
    CAPTURE(piece);
    Decoded d = decode(wire, piece);
    CHECK_FALSE(d.ok);
    CHECK(d.reason != "");
  }
}

}  // namespace

TEST_CASE("chunked: sizes, data and the end") {
  check_ok("0\r\n\r\n", "");
  check_ok("5\r\nhello\r\n0\r\n\r\n", "hello");
  check_ok("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world");
  check_ok("00A\r\n0123456789\r\n000\r\n\r\n", "0123456789");
  check_ok("a\r\n0123456789\r\nB\r\n0123456789a\r\n0\r\n\r\n", "01234567890123456789a");
  check_ok("1\r\n\r\r\n1\r\n\n\r\n0\r\n\r\n", "\r\n");  // CR and LF are data inside a chunk
}

TEST_CASE("chunked: the body ends where the message does") {
  std::string wire = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  for (std::size_t piece : {SIZE_MAX, std::size_t{1}, std::size_t{7}}) {
    Decoded d = decode(wire, piece);
    CHECK(d.ok);
    CHECK(d.used == wire.find("GET"));
  }
}

TEST_CASE("chunked: extensions, with BWS and quoted strings") {
  for (const char* ext :
       {";a", ";a=b", ";a=b;c", ";a;b;c=d", " ;a=b", "; a=b", ";a =b", ";a= b", " ; a = b",
        ";a=\"quoted;ext\"", ";a=\"say \\\"hi\\\" \\\\ ok\"", ";a=\"\"", ";a=\"tab\there\"",
        ";a=\"caf\xc3\xa9\"", "\t;\ta\t=\tb", ";a=b ;c=\"d\" ;e"}) {
    check_ok(std::string("5") + ext + "\r\nhello\r\n0" + ext + "\r\n\r\n", "hello");
  }
}

TEST_CASE("chunked: malformed extensions") {
  for (const char* ext :
       {";", "; ", ";=v", "; =v", ";a=", ";a= ", ";a=\"unterminated", ";a=b c", ";a=\x7f", ";a b",
        ";a=\"x\"y", ";a=\"\x01\"", ";a=\"\\\x7f\"", ";a=b\rX", ";(a)", ";a=b;", ";a ", ";a=b "}) {
    check_rejected(std::string("5") + ext + "\r\nhello\r\n0\r\n\r\n");
  }
  check_rejected("5;a\0b\r\nhello\r\n0\r\n\r\n"sv);
}

TEST_CASE("chunked: malformed sizes") {
  for (const char* size : {"", "g", "5g", "0x5", "-5", "+5", " 5", "5 ", "5\t", "\xd9\xa5"})
    check_rejected(std::string(size) + "\r\nhello\r\n0\r\n\r\n");
  // Beyond 64 bits.
  check_rejected("10000000000000000\r\nhello\r\n0\r\n\r\n");
  check_rejected("FFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n");
}

TEST_CASE("chunked: a huge size is announced before its data comes") {
  ChunkedDecoder d(kMaxTrailerBytes, kMaxTrailers);
  d.reset();
  std::string body;
  auto n = d.decode("FFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n", append, &body);
  REQUIRE(n);
  CHECK(*n == 30);  // all of it is data of the first chunk
  CHECK(body == "hello\r\n0\r\n\r\n");
  CHECK(d.body_bytes() == 12);
  CHECK(d.announced() == UINT64_MAX - 12);
  CHECK_FALSE(d.done());
  // A chunk whose size would take the body's total beyond 64 bits is refused.
  check_rejected("1\r\nx\r\nFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n");
}

TEST_CASE("chunked: line ends are CRLF only") {
  for (const char* wire :
       {"5\nhello\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n", "5\r\nhello\r\n0\n\r\n",
        "5\r\nhello\r\n0\r\n\n", "5;ext=1\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\nX: 1\n\r\n",
        "5\rhello\r\n0\r\n\r\n", "5\r\nhello\r0\r\n\r\n", "5\r\nhello\r\n0\r\nX: 1\r\r\n",
        "5\r\nhello\r\n0\r\n\rX", "5\r\nhelloXX0\r\n\r\n", "5\r\nhello0\r\n\r\n",
        "3\r\nhello\r\n0\r\n\r\n"})
    check_rejected(wire);
}

TEST_CASE("chunked: trailers follow the field rules") {
  check_ok("5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\nZ: a\tb c\xff\r\n\r\n", "hello");
  for (const char* trailer : {"X Bad: 1", "X-Fold: a\r\n b", "X-Fold: a\r\n\tb", " X: 1", ": v",
                              "NoColon", "X : 1", "X\t: 1", "X: a\x7f", "X: a\x01", "(X): 1"})
    check_rejected(std::string("5\r\nhello\r\n0\r\n") + trailer + "\r\n\r\n");
  check_rejected("5\r\nhello\r\n0\r\nX: a\0b\r\n\r\n"sv);
}

TEST_CASE("chunked: trailer limits") {
  std::string many = "0\r\n";
  for (std::size_t i = 0; i < kMaxTrailers; ++i) many += "X" + std::to_string(i) + ": 1\r\n";
  check_ok(many + "\r\n", "");
  check_rejected(many + "Y: 1\r\n\r\n");
  check_ok("0\r\nX: " + std::string(kMaxTrailerBytes - 7, 'a') + "\r\n\r\n", "");
  check_rejected("0\r\nX: " + std::string(kMaxTrailerBytes, 'a') + "\r\n\r\n");
}

TEST_CASE("chunked: extension bytes are bounded by the data") {
  std::string ext;
  while (ext.size() <= ChunkedDecoder::kExtensionAllowance) ext += ";a=b";
  check_rejected("1" + ext + "\r\nx\r\n0\r\n\r\n");
  // Leading zeros cost allowance too.
  check_rejected(std::string(ChunkedDecoder::kExtensionAllowance + 20, '0') +
                 "1\r\nx\r\n0\r\n\r\n");
  // After enough data, the same extensions pass.
  std::string data(ChunkedDecoder::kExtensionAllowance, 'd');
  check_ok("4000\r\n" + data + "\r\n1" + ext + "\r\nx\r\n0\r\n\r\n", data + "x");
}

TEST_CASE("chunked: an error sticks") {
  ChunkedDecoder d(kMaxTrailerBytes, kMaxTrailers);
  d.reset();
  CHECK_FALSE(d.decode("zz\r\n", nullptr, nullptr));
  CHECK_FALSE(d.decode("0\r\n\r\n", nullptr, nullptr));
  d.reset();
  CHECK(d.decode("0\r\n\r\n", nullptr, nullptr));
  CHECK(d.done());
}
