// The example HTTP server, and what the HTTP benchmarks and integration
// tests run against:
//   hello [--host 127.0.0.1] [--port 8080] [--procs N] [--max-body BYTES]
//         [--read-header-timeout-ms N] [--idle-timeout-ms N]
//   GET /plaintext  -> 200 text/plain        "Hello, World!"
//   GET /json       -> 200 application/json  {"message":"Hello, World!"}
//   POST /echo      -> 200 with the request body, byte for byte (413 over --max-body, 8 MiB by
//   default)
// Unknown paths get 404, other methods 405 with Allow (from the ServeMux);
// SIGTERM or SIGINT shuts it down gracefully.
#include <spindle/http/mux.hpp>
#include <spindle/http/server.hpp>
#include <spindle/runtime.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "../common/flags.hpp"

namespace http = spindle::http;

namespace {

struct Options {
  spindle::apps::ServeFlags serve{.port = 8080};
  http::ServerConfig server;
};

Options parse(int argc, char** argv) {
  Options o;
  spindle::apps::parse_flags(
      argc, argv,
      "usage: hello [--host H] [--port N] [--procs N] [--max-body BYTES]\n"
      "             [--read-header-timeout-ms N] [--idle-timeout-ms N]\n",
      [&](std::string_view name, const char* value) {
        if (name == "--max-body")
          o.server.max_body_bytes = std::strtoull(value, nullptr, 10);
        else if (name == "--read-header-timeout-ms")
          o.server.read_header_timeout = std::chrono::milliseconds(std::atoll(value));
        else if (name == "--idle-timeout-ms")
          o.server.idle_timeout = std::chrono::milliseconds(std::atoll(value));
        else
          return o.serve.set(name, value);
        return true;
      });
  return o;
}

void routes(http::ServeMux& mux) {
  mux.handle("GET /plaintext", [](http::Request&, http::ResponseWriter& w) {
    w.text(200, "Hello, World!", "text/plain");
  });
  mux.handle("GET /json", [](http::Request&, http::ResponseWriter& w) {
    // A new object per request. Built by assignment: the initializer-list
    // form makes a temporary json per element and a pair array, and
    // copies them (three times the allocations).
    nlohmann::json message;
    message["message"] = "Hello, World!";
    w.json(200, message);
  });
  mux.handle("POST /echo", [](http::Request& req, http::ResponseWriter& w) {
    auto body = req.body();
    if (!body) {
      if (body.error() == http::Errc::body_too_large)
        w.send_status(413);
      else
        w.send_status(400);
      return;
    }
    auto type = req.header("Content-Type");
    w.text(200, *body, type ? *type : "application/octet-stream");
  });
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);
  int status = 0;
  spindle::run({.procs = opt.serve.procs}, [&] {
    http::ServeMux mux;
    routes(mux);
    http::Server srv(mux, opt.server);
    auto addr = srv.listen(opt.serve.host, static_cast<std::uint16_t>(opt.serve.port));
    if (!addr) {
      std::fprintf(stderr, "hello: listen on %s:%d: %s\n", opt.serve.host.c_str(), opt.serve.port,
                   addr.error().message().c_str());
      status = 1;
      return;
    }
    // The handlers go in before the line that tells a supervisor (and the
    // tests) it may send SIGTERM.
    http::shutdown_on_signals(srv);
    std::printf("listening on %s:%u\n", opt.serve.host.c_str(), addr->port());
    std::fflush(stdout);
    (void)srv.serve();
  });
  return status;
}
