// For framework tests: a real Server on 127.0.0.1 (port 0) inside
// spindle::run, and a raw-socket client on plain blocking sockets.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <spindle/http/server.hpp>
#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

#include "../support/net.hpp"

namespace spindle::testing {

// Runs a Server for handler, calls client(port) through spindle::blocking
// (so its blocking sockets hold no P), then shuts the server down. Client
// code should record what it saw and leave the checks to the caller: an
// exception escaping the runtime ends the process.
inline void with_server(http::Handler handler, const std::function<void(std::uint16_t)>& client,
                        http::ServerConfig cfg = {}) {
  spindle::Config rc;
  rc.procs = 2;
  spindle::run(rc, [&] {
    http::Server srv(std::move(handler), cfg);
    auto addr = srv.listen("127.0.0.1", 0);
    if (!addr) throw std::runtime_error("listen: " + addr.error().message());
    spindle::WaitGroup served;
    served.add(1);
    spindle::go([&] {
      (void)srv.serve();
      served.done();
    });
    spindle::blocking([&] { client(addr->port()); });
    srv.shutdown(std::chrono::seconds(5));
    served.wait();
  });
}

// Sends request on a new connection and returns every byte the server sends
// until it closes (so the request should say "Connection: close"); "" if
// the connection failed. Gives up after 10 s of silence.
inline std::string exchange(std::uint16_t port, std::string_view request) {
  int fd = blocking_connect(port);
  if (fd < 0) return "";
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (std::size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, n);
  ::close(fd);
  return out;
}

// One response as received: header names lower-cased, the body as sent
// (exchange() reads to the close, so no framing is undone).
struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::string body;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "<none>" : it->second;
  }
};

inline Response parse_response(std::string_view raw) {
  Response r;
  auto end = raw.find("\r\n\r\n");
  if (!raw.starts_with("HTTP/1.1 ") || end == raw.npos || raw.size() < 12) return r;
  r.status = std::stoi(std::string(raw.substr(9, 3)));
  std::string_view head = raw.substr(0, end);
  r.body = raw.substr(end + 4);
  for (auto eol = head.find("\r\n"); eol != head.npos; eol = head.find("\r\n")) {
    head.remove_prefix(eol + 2);
    std::string_view line = head.substr(0, head.find("\r\n"));
    auto colon = line.find(':');
    if (colon == line.npos) continue;
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (value.starts_with(' ')) value.remove_prefix(1);
    r.headers[name] = std::string(value);
  }
  return r;
}

}  // namespace spindle::testing
