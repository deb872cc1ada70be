// The HTTP text helpers: header names, cookies, query strings, reason
// phrases, the Date cache and content types.
#include <doctest/doctest.h>
#include <spindle/http/request.hpp>
#include <spindle/http/response.hpp>

#include <time.h>

#include <atomic>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "../../framework/src/date.hpp"
#include "../../framework/src/http_text.hpp"
#include "../../framework/src/mime.hpp"

namespace http = spindle::http;
using http::detail::find_cookie;
using http::detail::find_query;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs pairs_of(const http::Headers& h) {
  return {h.all().begin(), h.all().end()};
}

}  // namespace

TEST_CASE("iequals: ASCII case folding only") {
  CHECK(http::iequals("Content-Type", "content-TYPE"));
  CHECK(http::iequals("", ""));
  CHECK_FALSE(http::iequals("Content-Type", "Content-Typ"));
  CHECK_FALSE(http::iequals("a", "b"));
  // '[' and '{' (and '@' and '`') are 0x20 apart but are not letters.
  CHECK_FALSE(http::iequals("[", "{"));
  CHECK_FALSE(http::iequals("@", "`"));
  CHECK_FALSE(http::iequals("\xc3\x89", "\xc3\xa9"));  // É, é: bytes compared as they are
}

TEST_CASE("Headers: set replaces every value in place, add appends, del removes all") {
  http::Headers h;
  CHECK_FALSE(h.get("X-A").has_value());
  h.add("X-A", "1");
  h.add("Vary", "Accept");
  h.add("x-a", "2");
  h.add("Vary", "Cookie");
  CHECK(h.get("x-A") == "1");
  CHECK(pairs_of(h) == Pairs{{"X-A", "1"}, {"Vary", "Accept"}, {"x-a", "2"}, {"Vary", "Cookie"}});

  h.set("X-a", "3");  // the first keeps its place and spelling
  CHECK(pairs_of(h) == Pairs{{"X-A", "3"}, {"Vary", "Accept"}, {"Vary", "Cookie"}});
  h.set("Content-Type", "text/plain");  // absent: appended
  CHECK(pairs_of(h).back() == std::pair<std::string, std::string>{"Content-Type", "text/plain"});

  h.del("VARY");
  CHECK(pairs_of(h) == Pairs{{"X-A", "3"}, {"Content-Type", "text/plain"}});
  h.del("absent");
  CHECK(h.all().size() == 2);
  h.set("x-a", "");
  CHECK(h.get("X-A") == "");
  h.clear();
  CHECK(h.all().empty());
}

TEST_CASE("cookies: several pairs and headers, spaces, quotes, missing") {
  const http::Header headers[] = {
      {"Accept", "a=1"},
      {"Cookie", "a=1; b=two ;c= 3;;  d=\"quoted value\"; flag"},
      {"cookie", "e=5;a=ignored;Case=upper"},
  };
  CHECK(find_cookie(headers, "a") == "1");  // the first one sent wins
  CHECK(find_cookie(headers, "b") == "two");
  CHECK(find_cookie(headers, "c") == "3");
  CHECK(find_cookie(headers, "d") == "\"quoted value\"");  // as sent, not unquoted
  CHECK(find_cookie(headers, "flag") == "");
  CHECK(find_cookie(headers, "e") == "5");  // a second Cookie header
  CHECK(find_cookie(headers, "Case") == "upper");
  CHECK_FALSE(find_cookie(headers, "case").has_value());  // names are case-sensitive
  CHECK_FALSE(find_cookie(headers, "missing").has_value());
  CHECK_FALSE(find_cookie(headers, "").has_value());
  CHECK_FALSE(find_cookie({}, "a").has_value());
}

TEST_CASE("cookies: pairs with an invalid name or value are skipped") {
  const http::Header headers[] = {
      {"Cookie", "bad\\=1; q=\"a\"b\"; s=a\\b; x y=2; t=ok; q=later; u=\"unterminated"},
  };
  CHECK_FALSE(find_cookie(headers, "bad\\").has_value());
  CHECK_FALSE(find_cookie(headers, "x y").has_value());
  CHECK_FALSE(find_cookie(headers, "s").has_value());
  CHECK_FALSE(find_cookie(headers, "u").has_value());
  CHECK(find_cookie(headers, "q") == "later");  // the invalid first one is skipped
  CHECK(find_cookie(headers, "t") == "ok");
}

TEST_CASE("query: first value, '+' and %XX decoded, as Go's URL.Query().Get") {
  const std::string_view q = "a=1&b=x+y&c=%2F&a=2&d=%2B+%25&e&f=&%6B%65%79=v&sp+ace=1";
  CHECK(find_query(q, "a") == "1");
  CHECK(find_query(q, "b") == "x y");
  CHECK(find_query(q, "c") == "/");
  CHECK(find_query(q, "d") == "+ %");  // an escaped '+' stays a '+'
  CHECK(find_query(q, "e") == "");     // a key without '=' has an empty value
  CHECK(find_query(q, "f") == "");
  CHECK(find_query(q, "key") == "v");  // keys are decoded too
  CHECK(find_query(q, "sp ace") == "1");
  CHECK_FALSE(find_query(q, "g").has_value());
  CHECK_FALSE(find_query(q, "A").has_value());
  CHECK_FALSE(find_query("", "a").has_value());
  CHECK_FALSE(find_query("&&", "").has_value());
  CHECK(find_query("=x", "") == "x");
}

TEST_CASE("query: a pair with a bad escape or a ';' is skipped, as in Go") {
  CHECK_FALSE(find_query("a=%zz", "a").has_value());
  CHECK_FALSE(find_query("a=%2", "a").has_value());
  CHECK_FALSE(find_query("a=%", "a").has_value());
  CHECK(find_query("a=%zz&a=ok", "a") == "ok");
  CHECK(find_query("%zz=1&a=2", "a") == "2");
  CHECK_FALSE(find_query("a%=1", "a%").has_value());
  CHECK_FALSE(find_query("a=1;b=2", "a").has_value());
  CHECK_FALSE(find_query("a=1;b=2", "b").has_value());
  CHECK(find_query("x=1;y&a=3", "a") == "3");
}

TEST_CASE("reason phrases: every IANA-registered code, nothing else") {
  const int registered[] = {100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208,
                            226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403,
                            404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416,
                            417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500,
                            501, 502, 503, 504, 505, 506, 507, 508, 510, 511};
  int named = 0;
  for (int code = -1; code < 1000; ++code) {
    bool is_registered =
        std::find(std::begin(registered), std::end(registered), code) != std::end(registered);
    CAPTURE(code);
    CHECK(http::reason_phrase(code).empty() == !is_registered);
    named += !http::reason_phrase(code).empty();
  }
  CHECK(named == std::size(registered));
  CHECK(http::reason_phrase(200) == "OK");
  CHECK(http::reason_phrase(404) == "Not Found");
  CHECK(http::reason_phrase(413) == "Content Too Large");  // RFC 9110, not RFC 7231's name
  CHECK(http::reason_phrase(422) == "Unprocessable Content");
  CHECK(http::reason_phrase(431) == "Request Header Fields Too Large");
  CHECK(http::reason_phrase(505) == "HTTP Version Not Supported");
  CHECK(http::reason_phrase(306).empty());  // "(Unused)"
}

TEST_CASE("http::Errc: its own category and messages") {
  std::error_code ec = http::Errc::body_too_large;
  CHECK(ec.category().name() == std::string("spindle.http"));
  CHECK(ec == http::Errc::body_too_large);
  CHECK(ec != http::Errc::bad_body);
  CHECK(ec.message() == "request body larger than the limit");
  CHECK(http::make_error_code(http::Errc::bad_body).message() ==
        "malformed or truncated request body");
  CHECK_FALSE(std::error_code(http::Errc::bad_body) == std::errc::invalid_argument);
}

TEST_CASE("date_now: an IMF-fixdate for now, in GMT") {
  // The format is pinned by parsing the text back and formatting the
  // result again (below): both must give the same 29 bytes. (No std::regex:
  // GCC 12 warns inside <regex> under ASan, and CI builds with -Werror.)
  std::string date(http::detail::date_now());
  CAPTURE(date);
  REQUIRE(date.size() == 29);

  std::tm tm{};
  REQUIRE(strptime(date.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr);
  std::time_t parsed = timegm(&tm);
  CHECK(std::llabs(static_cast<long long>(parsed - std::time(nullptr))) <= 2);
  // Formatting the parsed time again in the C locale gives the same text,
  // so the weekday agrees with the date and every field is zero-padded.
  char again[64];
  std::tm utc{};
  gmtime_r(&parsed, &utc);
  REQUIRE(std::strftime(again, sizeof again, "%a, %d %b %Y %H:%M:%S GMT", &utc) == 29);
  CHECK(date == again);
}

TEST_CASE("date_now: one text per second per thread, consistent across threads") {
  // Within a second a thread gets its cached text back: the same bytes.
  std::string_view a = http::detail::date_now();
  std::string_view b = http::detail::date_now();
  CHECK(a.data() == b.data());

  // Many threads calling at once, across at least one second boundary: each
  // sees well-formed text that never goes back in time.
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1100);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::time_t last = 0;
      while (std::chrono::steady_clock::now() < until) {
        std::string date(http::detail::date_now());
        std::tm tm{};
        const char* end = strptime(date.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        std::time_t now = timegm(&tm);
        if (date.size() != 29 || !end || *end != '\0' || now < last) ++bad;
        last = now;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(bad.load() == 0);
}

TEST_CASE("mime_type: by extension, case-insensitive, octet-stream otherwise") {
  using http::detail::mime_type;
  CHECK(mime_type("index.html") == "text/html; charset=utf-8");
  CHECK(mime_type("/static/STYLE.CSS") == "text/css; charset=utf-8");
  CHECK(mime_type("app.js") == "text/javascript; charset=utf-8");
  CHECK(mime_type("data.json") == "application/json");
  CHECK(mime_type("notes.txt") == "text/plain; charset=utf-8");
  CHECK(mime_type("a.png") == "image/png");
  CHECK(mime_type("a.jpg") == "image/jpeg");
  CHECK(mime_type("a.JPEG") == "image/jpeg");
  CHECK(mime_type("a.gif") == "image/gif");
  CHECK(mime_type("a.svg") == "image/svg+xml");
  CHECK(mime_type("a.webp") == "image/webp");
  CHECK(mime_type("favicon.ico") == "image/x-icon");
  CHECK(mime_type("m.wasm") == "application/wasm");
  CHECK(mime_type("doc.pdf") == "application/pdf");
  CHECK(mime_type("feed.xml") == "text/xml; charset=utf-8");
  CHECK(mime_type("f.woff2") == "font/woff2");
  CHECK(mime_type("clip.mp4") == "video/mp4");
  CHECK(mime_type("archive.tar.gz") == "application/gzip");  // the last extension
  CHECK(mime_type("README") == "application/octet-stream");
  CHECK(mime_type("dir.d/file") == "application/octet-stream");  // a dot in a directory
  CHECK(mime_type("file.") == "application/octet-stream");
  CHECK(mime_type("a.unknown") == "application/octet-stream");
  CHECK(mime_type("a.averyveryverylongextension") == "application/octet-stream");
  CHECK(mime_type("") == "application/octet-stream");
}
