// Router: Go 1.22 ServeMux pattern syntax, precedence, conflicts and results.
#include <doctest/doctest.h>
#include <spindle/http/router.hpp>

#include <cstdlib>
#include <initializer_list>
#include <new>
#include <stdexcept>
#include <string>

namespace http = spindle::http;
using Kind = http::RouteMatch::Kind;

namespace {

// Counts heap allocations, to check that routing a request needs none.
std::size_t g_allocations = 0;

}  // namespace

// The sanitizers bring their own operator new; count only in the plain build.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kCountsAllocations = false;
#else
constexpr bool kCountsAllocations = true;
// Out of line, so GCC does not pair an inlined malloc with a delete.
[[gnu::noinline]] void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
#endif

namespace {

// Handlers are their own patterns, so a test can see which one won.
http::Router<std::string> router_of(std::initializer_list<const char*> patterns) {
  http::Router<std::string> r;
  for (const char* p : patterns) r.handle(p, p);
  return r;
}

// The winning pattern, or the status when nothing was found.
std::string route(const http::Router<std::string>& r, std::string_view method,
                  std::string_view path, std::string_view host = "") {
  auto m = r.match(method, host, path);
  if (m.kind() != Kind::found) return std::to_string(m.status());
  CHECK(m.pattern() == *m.handler);
  return *m.handler;
}

// The message of the std::invalid_argument that registering patterns throws.
std::string error_of(std::initializer_list<const char*> patterns) {
  try {
    router_of(patterns);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool mentions(const std::string& s, std::string_view what) {
  return s.find(what) != s.npos;
}

}  // namespace

TEST_CASE("patterns: accepted syntax") {
  for (const char* p : {"/", "/a", "/a/", "GET /items/{id}", "/static/{path...}", "POST /items",
                        "/items/{$}", "example.com/", "GET example.com/a/{x}", "GET\t /a/{x}/{y}",
                        "/{_x1}/b", "/a%20b", "DELETE /"}) {
    CHECK_NOTHROW(router_of({p}));
  }
}

TEST_CASE("patterns: rejected syntax, with the reason") {
  CHECK(mentions(error_of({""}), "empty pattern"));
  CHECK(mentions(error_of({"/a/{x"}), "must end with '}'"));
  CHECK(mentions(error_of({"/a/x{y}"}), "must start with '{'"));
  CHECK(mentions(error_of({"/{x...}/a"}), "not at end"));
  CHECK(mentions(error_of({"/{$}/a"}), "{$} not at end"));
  CHECK(mentions(error_of({" /a"}), "invalid method"));
  CHECK(mentions(error_of({"G(T /a"}), "invalid method"));
  CHECK(mentions(error_of({"/{}"}), "bad wildcard name"));
  CHECK(mentions(error_of({"/{1x}"}), "bad wildcard name"));
  CHECK(mentions(error_of({"/{x}/{x}"}), "duplicate wildcard name"));
  CHECK(mentions(error_of({"GET"}), "missing /"));
  CHECK(mentions(error_of({"ex{a}.com/"}), "host contains '{'"));
  CHECK(mentions(error_of({"/a/../b"}), "unclean"));
  CHECK(mentions(error_of({"//a"}), "unclean"));
  CHECK(mentions(error_of({"/a%zz"}), "percent-encoding"));
  CHECK(mentions(error_of({"/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}"}), "too many wildcards"));
}

TEST_CASE("precedence: the most specific pattern wins, whatever the order") {
  auto r = router_of({"/images/", "/images/thumbnails/"});
  CHECK(route(r, "GET", "/images/thumbnails/x.png") == "/images/thumbnails/");
  CHECK(route(r, "GET", "/images/x.png") == "/images/");
  CHECK(route(r, "GET", "/images/") == "/images/");

  r = router_of({"GET /", "/"});
  CHECK(route(r, "GET", "/x") == "GET /");
  CHECK(route(r, "HEAD", "/x") == "GET /");
  CHECK(route(r, "POST", "/x") == "/");

  r = router_of({"/b/{bucket}/o/{noun}", "/b/{bucket}/o/default"});
  CHECK(route(r, "GET", "/b/k/o/default") == "/b/{bucket}/o/default");
  CHECK(route(r, "GET", "/b/k/o/other") == "/b/{bucket}/o/{noun}");

  r = router_of({"/a/{x}", "/a/b", "/{rest...}"});
  CHECK(route(r, "GET", "/a/b") == "/a/b");
  CHECK(route(r, "GET", "/a/c") == "/a/{x}");
  CHECK(route(r, "GET", "/a/c/d") == "/{rest...}");
}

TEST_CASE("precedence: a host-qualified pattern beats a host-less one") {
  auto r = router_of({"/a/{x}", "example.com/", "GET other.org/a/b"});
  CHECK(route(r, "GET", "/a/b", "example.com") == "example.com/");
  CHECK(route(r, "GET", "/a/b", "example.com:8080") == "example.com/");
  CHECK(route(r, "GET", "/a/b", "other.org") == "GET other.org/a/b");
  CHECK(route(r, "POST", "/a/b", "other.org") == "/a/{x}");  // host-less fallback
  CHECK(route(r, "GET", "/a/b", "elsewhere") == "/a/{x}");
  CHECK(route(r, "GET", "/a/b") == "/a/{x}");
}

TEST_CASE("conflicts and duplicates throw, naming both patterns") {
  std::string e = error_of({"/a/{x}", "/{y}/b"});
  CHECK(mentions(e, "\"/a/{x}\""));
  CHECK(mentions(e, "\"/{y}/b\""));
  CHECK(mentions(e, "/a/b"));  // a path both match

  e = error_of({"GET /a", "GET /a"});
  CHECK(mentions(e, "matches the same requests"));
  CHECK(mentions(error_of({"/a/{x}", "/a/{y}"}), "\"/a/{y}\" matches the same requests as"));
  CHECK(mentions(error_of({"/a/b", "GET /a/{x}"}), "fewer methods"));
  CHECK(mentions(error_of({"GET /a/{x}", "/a/b"}), "more specific path"));
  CHECK(mentions(error_of({"/a/", "/a/{x...}"}), "same requests"));

  // Not conflicts: disjoint, strictly ordered, or separated by the host.
  CHECK_NOTHROW(router_of({"GET /a", "POST /a", "/a/{$}", "/a/{x}", "/a/"}));
  CHECK_NOTHROW(router_of({"GET /a/{x}", "HEAD /a/{x}"}));
  CHECK_NOTHROW(router_of({"example.com/a", "/a"}));
  auto r = router_of({"/a/{x}", "GET /a/b"});  // more specific in both method and path
  CHECK(route(r, "GET", "/a/b") == "GET /a/b");
  CHECK(route(r, "POST", "/a/b") == "/a/{x}");
}

TEST_CASE("404, and 405 with the Allow list") {
  auto r = router_of({"GET /x", "POST /x", "DELETE /y/{id}"});
  auto m = r.match("PUT", "", "/x");
  CHECK(m.kind() == Kind::method_not_allowed);
  CHECK(m.status() == 405);
  CHECK(m.allow_header() == "GET, HEAD, POST");
  CHECK(r.allowed("", "/x") == std::vector<std::string_view>{"GET", "HEAD", "POST"});
  CHECK(route(r, "OPTIONS", "/y/7") == "405");
  CHECK(r.match("OPTIONS", "", "/y/7").allow_header() == "DELETE");
  CHECK(route(r, "GET", "/z") == "404");
  CHECK(r.match("GET", "", "/z").allowed().empty());
}

TEST_CASE("a single wildcard matches one non-empty segment, never the trailing slash") {
  auto r = router_of({"/a/{x}", "/b/{x}/{y}"});
  CHECK(route(r, "GET", "/a/1") == "/a/{x}");
  CHECK(route(r, "GET", "/a/") == "404");
  CHECK(route(r, "GET", "/a/1/") == "404");
  CHECK(route(r, "GET", "/b/1") == "404");
  CHECK(route(r, "GET", "/b/1/2") == "/b/{x}/{y}");
}

TEST_CASE("allowed(): what OPTIONS can answer, cleaning and checking the path first") {
  auto r = router_of({"GET /dir/", "PUT example.com/dir/x", "DELETE /dir/x"});
  CHECK(r.allowed("", "/dir") == std::vector<std::string_view>{"GET", "HEAD"});
  CHECK(r.allowed("example.com:80", "/dir/./x") ==
        std::vector<std::string_view>{"DELETE", "GET", "HEAD", "PUT"});
  CHECK(r.allowed("", "/dir/%x").empty());
  CHECK(r.match("POST", "", "/dir").allow_header() == "GET, HEAD");  // no redirect for POST
}

TEST_CASE("methods(): every method a pattern names, for OPTIONS *") {
  CHECK(router_of({}).methods().empty());
  CHECK(router_of({"/any"}).methods().empty());
  auto r = router_of({"POST /a", "GET example.com/b", "DELETE /c/{id}", "POST /d", "/e"});
  CHECK(r.methods() == std::vector<std::string_view>{"DELETE", "GET", "HEAD", "POST"});
}

TEST_CASE("HEAD is served by GET routes, unless a HEAD route exists") {
  auto r = router_of({"GET /a", "GET /b", "HEAD /b"});
  CHECK(route(r, "HEAD", "/a") == "GET /a");
  CHECK(route(r, "HEAD", "/b") == "HEAD /b");
  CHECK(route(r, "GET", "/b") == "GET /b");
}

TEST_CASE("{$} matches only the slash-terminated path; a trailing slash the subtree") {
  auto r = router_of({"/{$}", "/a/{$}", "/b/"});
  CHECK(route(r, "GET", "/") == "/{$}");
  CHECK(route(r, "GET", "/x") == "404");
  CHECK(route(r, "GET", "/a/") == "/a/{$}");
  CHECK(route(r, "GET", "/a/x") == "404");
  CHECK(route(r, "GET", "/b/") == "/b/");
  CHECK(route(r, "GET", "/b/x/y") == "/b/");
}

TEST_CASE("{rest...} captures the remainder, possibly empty") {
  auto r = router_of({"/static/{path...}", "GET /files/{dir}/{name...}"});
  auto m = r.match("GET", "", "/static/css/site.css");
  REQUIRE(m.kind() == Kind::found);
  CHECK(m.param("path") == "css/site.css");
  m = r.match("GET", "", "/static/");
  REQUIRE(m.kind() == Kind::found);
  CHECK(m.param("path") == "");
  m = r.match("GET", "", "/files/d/");
  REQUIRE(m.kind() == Kind::found);
  CHECK(m.param("dir") == "d");
  CHECK(m.param("name") == "");
  CHECK(m.param("missing") == "");
}

TEST_CASE("parameters match escaped segments and are then decoded") {
  auto r = router_of({"GET /items/{id}", "/a%20b/{x}/c"});
  auto m = r.match("GET", "", "/items/a%2Fb");
  REQUIRE(m.kind() == Kind::found);
  CHECK(m.param("id") == "a/b");
  m = r.match("GET", "", "/items/plain");
  REQUIRE(m.kind() == Kind::found);
  CHECK(m.param("id") == "plain");

  // Literals compare decoded: "%20" in the request matches ' ' in the pattern.
  m = r.match("GET", "", "/a%20b/%E2%9C%93/c");
  REQUIRE(m.kind() == Kind::found);
  CHECK(m.param("x") == "\xE2\x9C\x93");

  CHECK(route(r, "GET", "/items/a%2") == "400");
  CHECK(route(r, "GET", "/items/%zz") == "400");
}

TEST_CASE("a Match stays valid when moved") {
  auto r = router_of({"/{a}/{b}"});
  auto m = r.match("GET", "", "/x%20y/z%21");  // two decoded values, one buffer
  auto moved = std::move(m);
  CHECK(moved.param("a") == "x y");
  CHECK(moved.param("b") == "z!");
}

TEST_CASE("unclean paths redirect to the cleaned path") {
  auto r = router_of({"/b", "/dir/"});
  auto m = r.match("GET", "", "/a/../b");
  CHECK(m.kind() == Kind::redirect);
  CHECK(m.status() == 301);
  CHECK(m.location() == "/b");
  CHECK(r.match("GET", "", "//b").location() == "/b");
  CHECK(r.match("GET", "", "/./b").location() == "/b");
  CHECK(r.match("GET", "", "/x/./y/").location() == "/x/y/");  // even with no route
  CHECK(r.match("GET", "", "/../..").location() == "/");
  CHECK(r.match("GET", "", "/x/../dir").location() == "/dir/");  // straight to the subtree
}

TEST_CASE("a path naming a subtree pattern redirects to it with a slash") {
  auto r = router_of({"/dir/", "/", "/d2/{$}", "/files/{f...}"});
  auto m = r.match("GET", "", "/dir");
  CHECK(m.kind() == Kind::redirect);
  CHECK(m.location() == "/dir/");
  CHECK(r.match("GET", "", "/d2").location() == "/d2/");
  CHECK(r.match("GET", "", "/files").location() == "/files/");
  CHECK(route(r, "GET", "/files/x") == "/files/{f...}");  // no redirect for a subtree match
  CHECK(route(r, "GET", "/other") == "/");
}

TEST_CASE("groups prefix their patterns, keeping the method") {
  http::Router<std::string> r;
  auto api = r.group("/api/v1");
  api.handle("GET /items", "list");
  api.handle("POST /items/{id}", "update");
  api.group("/admin/").handle("/", "admin");
  r.group("example.com/").handle("/x", "host");

  auto m = r.match("GET", "", "/api/v1/items");
  REQUIRE(m.kind() == Kind::found);
  CHECK(*m.handler == "list");
  CHECK(m.pattern() == "GET /api/v1/items");
  m = r.match("POST", "", "/api/v1/items/7");
  CHECK(m.pattern() == "POST /api/v1/items/{id}");
  CHECK(m.param("id") == "7");
  CHECK(r.match("GET", "", "/api/v1/admin/users").pattern() == "/api/v1/admin/");
  CHECK(r.match("GET", "example.com", "/x").pattern() == "example.com/x");
  CHECK_THROWS_AS(api.handle("example.com/x", "bad"), std::invalid_argument);
  CHECK_THROWS_AS(r.group("api"), std::invalid_argument);
}

TEST_CASE("a failed registration leaves the router as it was") {
  auto r = router_of({"/a/{x}"});
  CHECK_THROWS_AS(r.handle("/a/{y}", "dup"), std::invalid_argument);
  CHECK(route(r, "GET", "/a/1") == "/a/{x}");
}

TEST_CASE("routing a request allocates only to decode escaped parameters" *
          doctest::skip(!kCountsAllocations)) {
  auto r = router_of({"GET /items/{id}", "/static/{path...}", "/", "example.com/a/{$}"});
  auto allocations = [&](std::string_view method, std::string_view host, std::string_view path) {
    std::size_t before = g_allocations;
    auto m = r.match(method, host, path);
    std::size_t after = g_allocations;
    CHECK(m.kind() == Kind::found);
    return after - before;
  };
  CHECK(allocations("GET", "", "/items/42") == 0);
  CHECK(allocations("HEAD", "host:80", "/items/42") == 0);
  CHECK(allocations("GET", "", "/static/css/site.css") == 0);  // the trailing-slash probe too
  CHECK(allocations("GET", "example.com", "/a/") == 0);
  CHECK(allocations("POST", "", "/anything/else") == 0);
  CHECK(allocations("GET", "", "/items/%E2%9C%93%E2%9C%93%E2%9C%93%E2%9C%93%E2%9C%93%E2%9C%93") ==
        1);
}
