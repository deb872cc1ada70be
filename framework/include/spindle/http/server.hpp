// Server: HTTP/1.1 over fibers, in the shape of Go's http.Server.
//
//   spindle::run({}, [] {
//     http::ServeMux mux;
//     mux.handle("GET /hello", [](auto&, auto& w) { w.text(200, "hi"); });
//     http::Server srv(mux);
//     if (auto addr = srv.listen("0.0.0.0", 8080); !addr) { ...addr.error()... }
//     http::shutdown_on_signals(srv);   // SIGTERM/SIGINT: graceful shutdown
//     srv.serve();                      // returns once shut down
//   });
//
// One fiber per listener accepts; each connection gets a fiber that parses
// requests in place from its read buffer (llhttp, strict mode) and runs the
// handler. Pipelined requests are answered one at a time, in order, and the
// responses to those already buffered go out in one write.
//
// Limits and timeouts have safe defaults (below). Bad input gets a 4xx with
// "Connection: close" and the connection is closed; a handler exception a 500.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "spindle/http/handler.hpp"
#include "spindle/net/conn.hpp"

namespace spindle::http {

struct ServerConfig {
  using ms = std::chrono::milliseconds;
  // Request line longer than this: 414.
  std::size_t max_request_line = 8 * 1024;
  // Header section (request line included) larger than this: 431.
  std::size_t max_header_bytes = 64 * 1024;
  // More header fields than this: 431.
  std::size_t max_headers = 100;
  // Default limit of Request::body(), and the most the server drains of a
  // body the handler left unread before it closes instead.
  std::size_t max_body_bytes = 8 * 1024 * 1024;
  // From the first byte of a request to the end of its header section
  // (slowloris): past it the connection is closed (408 if nothing was
  // answered yet). nginx: client_header_timeout 60 s.
  ms read_header_timeout{20'000};
  // Longest wait for the next piece of a body (nginx: client_body_timeout).
  ms body_read_timeout{60'000};
  // Longest wait for the client to take a piece of the response
  // (nginx: send_timeout).
  ms write_timeout{60'000};
  // A keep-alive connection with no request for this long is closed
  // (nginx: keepalive_timeout 75 s).
  ms idle_timeout{75'000};
  // Connections served at once. At the limit the server stops accepting:
  // new connections wait in the kernel's backlog (never a reset, never a
  // 503 for a request nobody read), then get served in turn.
  std::size_t max_connections = 100'000;
  // Requests served on one connection before it is closed (0: no limit).
  std::size_t max_requests_per_connection = 0;
};

namespace detail {
class ServerState;
}

class Server {
 public:
  explicit Server(Handler handler, ServerConfig cfg = {});
  ~Server();  // shuts down (grace 0) if still serving
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds a listener now (so the port is known before serve()); the
  // address bound, e.g. for port 0.
  net::Result<net::Address> listen(std::string_view host, std::uint16_t port,
                                   const net::ListenOptions& opts = {});
  // Serves every listener until shutdown() completes; then returns.
  // Call from a fiber, once.
  net::Status serve();
  // Graceful shutdown (Go's Server.Shutdown), from any fiber:
  //  1. stop accepting (listeners close: new connections are refused);
  //  2. idle keep-alive connections close at once, unless their next request
  //     has already arrived: that one is served first;
  //  3. in-flight requests finish, answered with "Connection: close";
  //  4. at `grace`, what is left is cancelled (Request::context()) and closed.
  // Returns when every connection is gone; serve() returns too.
  void shutdown(std::chrono::milliseconds grace = std::chrono::seconds(10));

  std::size_t connections() const noexcept;  // open right now

 private:
  friend void shutdown_on_signals(Server& srv, std::chrono::milliseconds grace);
  std::unique_ptr<detail::ServerState> state_;
};

// Starts a fiber that calls srv.shutdown(grace) on the first SIGTERM or
// SIGINT (a second one exits at once, status 1). Call inside spindle::run.
void shutdown_on_signals(Server& srv, std::chrono::milliseconds grace = std::chrono::seconds(10));

}  // namespace spindle::http
