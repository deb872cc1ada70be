// ServeMux over a real Server: routes and parameters, HEAD through GET,
// OPTIONS, 404, 405, redirects, bad escapes, groups; raw sockets.
#include <doctest/doctest.h>
#include <spindle/http/mux.hpp>

#include <string>
#include <vector>

#include "test_server.hpp"

namespace http = spindle::http;
using spindle::testing::parse_response;
using spindle::testing::Response;

namespace {

// Each handler answers with what routing gave it: "param|pattern".
http::ServeMux test_mux() {
  http::ServeMux mux;
  auto echo = [](std::string_view name) {
    return [name](http::Request& req, http::ResponseWriter& w) {
      w.text(200, std::string(req.param(name)) + "|" + std::string(req.pattern()));
    };
  };
  mux.handle("GET /items/{id}", echo("id"));
  mux.handle("POST /items",
             [](http::Request&, http::ResponseWriter& w) { w.text(201, "created"); });
  mux.handle("/files/{path...}", echo("path"));
  mux.handle("GET /dir/", echo(""));
  mux.handle("OPTIONS /opt",
             [](http::Request&, http::ResponseWriter& w) { w.text(200, "own options"); });
  mux.handle("/any", echo(""));
  mux.handle("GET /meta", [](http::Request& req, http::ResponseWriter& w) {
    w.text(200, std::string(req.header("x-TEST").value_or("-")) + "|" +
                    std::string(req.cookie("s").value_or("-")) + "|" +
                    req.query("b").value_or("-") + "|" + std::string(req.param("id")));
  });
  auto api = mux.group("/api");
  api.handle("GET /users/{name}", echo("name"));
  api.group("/v2").handle("DELETE /x/{id}", echo("id"));
  return mux;
}

// Sends each request line (with Host and Connection: close added) on its
// own connection and returns the parsed responses, in order.
std::vector<Response> serve(const std::vector<std::string>& request_heads) {
  http::ServeMux mux = test_mux();
  std::vector<Response> out;
  spindle::testing::with_server(mux, [&](std::uint16_t port) {
    for (const std::string& head : request_heads) {
      std::string req = head + "\r\nHost: test\r\nConnection: close\r\n\r\n";
      out.push_back(parse_response(spindle::testing::exchange(port, req)));
    }
  });
  return out;
}

Response serve_one(const std::string& request_head) {
  return serve({request_head}).at(0);
}

}  // namespace

TEST_CASE("mux: routes with decoded parameters and the pattern") {
  auto r = serve({"GET /items/42 HTTP/1.1", "GET /items/a%2Fb%20c HTTP/1.1",
                  "GET /files/a/b/c.txt HTTP/1.1", "GET /files/ HTTP/1.1",
                  "POST /items HTTP/1.1\r\nContent-Length: 0", "PATCH /any HTTP/1.1",
                  "GET /dir/sub/x HTTP/1.1"});
  CHECK(r[0].status == 200);
  CHECK(r[0].body == "42|GET /items/{id}");
  CHECK(r[1].body == "a/b c|GET /items/{id}");
  CHECK(r[2].body == "a/b/c.txt|/files/{path...}");
  CHECK(r[3].body == "|/files/{path...}");
  CHECK(r[4].status == 201);
  CHECK(r[4].body == "created");
  CHECK(r[5].body == "|/any");  // a method-less pattern takes any method
  CHECK(r[6].body == "|GET /dir/");
}

TEST_CASE("mux: headers, cookies and the query through a real request") {
  auto r = serve_one(
      "GET /meta?a=1&b=x+y%21&b=2 HTTP/1.1\r\nX-Test: v\r\nCookie: t=1\r\nCookie: s=\"q\"");
  CHECK(r.status == 200);
  CHECK(r.body == "v|\"q\"|x y!|");  // no wildcard: param() is ""
}

TEST_CASE("mux: HEAD is answered by the GET route, without a body") {
  auto r = serve_one("HEAD /items/7 HTTP/1.1");
  CHECK(r.status == 200);
  CHECK(r.header("content-length") == std::to_string(std::string("7|GET /items/{id}").size()));
  CHECK(r.body.empty());
}

TEST_CASE("mux: OPTIONS answers 204 with Allow unless a route takes it") {
  auto r = serve({"OPTIONS /items/7 HTTP/1.1", "OPTIONS /opt HTTP/1.1", "OPTIONS /any HTTP/1.1",
                  "OPTIONS /api/users/x HTTP/1.1", "OPTIONS /nowhere HTTP/1.1"});
  CHECK(r[0].status == 204);
  CHECK(r[0].header("allow") == "GET, HEAD, OPTIONS");
  CHECK(r[0].body.empty());
  CHECK(r[1].status == 200);  // an OPTIONS route of its own
  CHECK(r[1].body == "own options");
  CHECK(r[2].status == 200);  // a method-less route answers every method
  CHECK(r[2].body == "|/any");
  CHECK(r[3].status == 204);
  CHECK(r[3].header("allow") == "GET, HEAD, OPTIONS");
  CHECK(r[4].status == 404);
}

TEST_CASE("mux: OPTIONS * lists every method the mux has") {
  auto r = serve({"OPTIONS * HTTP/1.1"});
  CHECK(r[0].status == 204);
  CHECK(r[0].header("allow") == "DELETE, GET, HEAD, OPTIONS, POST");
  CHECK(r[0].body.empty());
}

TEST_CASE("mux: 404 when nothing matches, 405 with Allow when other methods do") {
  auto r = serve({"GET /nothing HTTP/1.1", "PUT /items/7 HTTP/1.1\r\nContent-Length: 0",
                  "GET /api/v2/x/1 HTTP/1.1"});
  CHECK(r[0].status == 404);
  CHECK(r[0].body == "404 Not Found\n");
  CHECK(r[1].status == 405);
  CHECK(r[1].header("allow") == "GET, HEAD, OPTIONS");
  CHECK(r[2].status == 405);
  CHECK(r[2].header("allow") == "DELETE, OPTIONS");
}

TEST_CASE("mux: unclean paths redirect with 301, keeping the query") {
  auto r = serve({"GET /a/../items/9?x=1&y=%20 HTTP/1.1", "GET //items/9 HTTP/1.1",
                  "GET /dir?q=1 HTTP/1.1", "GET /items/./9 HTTP/1.1"});
  CHECK(r[0].status == 301);
  CHECK(r[0].header("location") == "/items/9?x=1&y=%20");
  CHECK(r[1].status == 301);
  CHECK(r[1].header("location") == "/items/9");
  CHECK(r[2].status == 301);
  CHECK(r[2].header("location") == "/dir/?q=1");  // the subtree, with its slash
  CHECK(r[3].header("location") == "/items/9");
}

TEST_CASE("mux: a bad percent-escape in the path is a 400") {
  auto r = serve({"GET /items/%zz HTTP/1.1", "GET /files/%4 HTTP/1.1"});
  CHECK(r[0].status == 400);
  CHECK(r[1].status == 400);
}

TEST_CASE("mux: groups prefix their patterns, nested groups too") {
  auto r = serve(
      {"GET /api/users/bob HTTP/1.1", "DELETE /api/v2/x/3 HTTP/1.1", "GET /users/bob HTTP/1.1"});
  CHECK(r[0].body == "bob|GET /api/users/{name}");
  CHECK(r[1].body == "3|DELETE /api/v2/x/{id}");
  CHECK(r[2].status == 404);
}

TEST_CASE("mux: param() and pattern() belong to the mux that routed, while it runs") {
  std::string inner_saw, outer_saw_after, outside_saw;
  auto routed = [](const http::Request& req, std::string_view name) {
    return std::string(req.param(name)) + "|" + std::string(req.pattern());
  };
  http::ServeMux inner, outer;
  inner.handle("GET /p/{name}", [&](http::Request& req, http::ResponseWriter& w) {
    inner_saw = routed(req, "name");
    w.text(200, "ok");
  });
  // Muxes nest: the outer one's match is back when the inner one returns.
  outer.handle("GET /p/{id}", [&](http::Request& req, http::ResponseWriter& w) {
    inner.serve(req, w);
    outer_saw_after = routed(req, "id");
  });
  http::Handler outside = [&](http::Request& req, http::ResponseWriter& w) {
    outer.serve(req, w);
    outside_saw = routed(req, "id");
  };
  spindle::testing::with_server(outside, [](std::uint16_t port) {
    (void)spindle::testing::exchange(port,
                                     "GET /p/5 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  });
  CHECK(inner_saw == "5|GET /p/{name}");
  CHECK(outer_saw_after == "5|GET /p/{id}");
  CHECK(outside_saw == "|");
}
