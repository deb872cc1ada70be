// libFuzzer target: arbitrary bytes through the server's parse-and-respond
// path, over a real loopback connection.
//
// A Server with routes that read, echo and stream bodies runs in a
// spindle::run on a background thread for the whole fuzzing session. Each
// input is sent on a fresh connection, the write side is shut, and every
// byte the server answers is read until it closes. What must hold for any
// input: no crash or sanitizer report (the process dies), the server closes
// the connection within kHang (else we abort: a hang), and whatever it sent
// is a sequence of HTTP/1.1 responses.
//
//   build/fuzz/tests/fuzz/http-fuzz -max_total_time=60 tests/fuzz/corpus/http
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spindle/http/mux.hpp>
#include <spindle/http/server.hpp>
#include <spindle/runtime.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

namespace {

using namespace std::chrono_literals;
namespace http = spindle::http;

constexpr int kHangMs = 10'000;
std::atomic<std::uint16_t> g_port{0};

void routes(http::ServeMux& mux) {
  mux.handle("GET /plaintext",
             [](http::Request&, http::ResponseWriter& w) { w.text(200, "Hello, World!"); });
  mux.handle("POST /echo", [](http::Request& req, http::ResponseWriter& w) {
    auto body = req.body(64 * 1024);
    if (!body) {
      w.send_status(body.error() == http::Errc::body_too_large ? 413 : 400);
      return;
    }
    w.text(200, *body);
  });
  mux.handle("PUT /stream", [](http::Request& req, http::ResponseWriter& w) {
    char buf[512];
    for (;;) {  // echo in chunks, flushing each: chunked encoding
      auto n = req.read_body(buf, sizeof buf);
      if (!n || *n == 0 || !w.write({buf, *n}) || !w.flush()) return;
    }
  });
  mux.handle("/items/{id}", [](http::Request& req, http::ResponseWriter& w) {
    w.headers().set("X-Cookie", req.cookie("a").value_or(""));
    w.text(200, std::string(req.param("id")) + req.query("q").value_or(""));
  });
  mux.handle("GET /throw", [](http::Request&, http::ResponseWriter&) {
    throw std::runtime_error("handler failure");
  });
}

void serve_forever() {
  spindle::Config cfg;
  cfg.procs = 2;
  spindle::run(cfg, [] {
    http::ServeMux mux;
    routes(mux);
    http::ServerConfig sc;
    sc.read_header_timeout = 2s;  // a truncated request must not stall the input
    sc.body_read_timeout = 2s;
    http::Server srv(mux, sc);
    auto addr = srv.listen("127.0.0.1", 0);
    if (!addr) std::abort();
    g_port = addr->port();
    (void)srv.serve();
  });
}

// Waits for an interrupted connect to complete; false with err set if it failed.
bool finish_connect(int fd, int& err) {
  pollfd p{fd, POLLOUT, 0};
  while (::poll(&p, 1, kHangMs) < 0 && errno == EINTR) {
  }
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  return err == 0;
}

// Retries while the loopback's ephemeral ports are all in use (EADDRNOTAVAIL):
// tens of thousands of inputs a minute can outrun TIME_WAIT's 60 s.
int connect_server() {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(g_port.load());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int tries = 0;; ++tries) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
    int err = errno;
    // libFuzzer's SIGALRM can interrupt the connect, which then goes on in
    // the background: wait for it to finish.
    if (err == EINTR && finish_connect(fd, err)) return fd;
    if (fd >= 0) ::close(fd);
    if (err != EADDRNOTAVAIL || tries == 200) {
      std::fprintf(stderr, "http-fuzz: connect: %s\n", std::strerror(err));
      std::abort();
    }
    std::this_thread::sleep_for(50ms);
  }
}

// Closes with a reset: we sent our FIN first, so a plain close would leave
// this side in TIME_WAIT holding an ephemeral port for 60 s.
void close_abortive(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

// Reads until the server closes; aborts if it does not within kHangMs.
// Also stops sending once the server closed (a reset is a fine answer).
std::string read_all(int fd) {
  std::string out;
  char buf[16 * 1024];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kHangMs);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    int ready = left.count() <= 0 ? 0 : ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      std::fprintf(stderr, "http-fuzz: server did not close within %d ms\n", kHangMs);
      std::abort();
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;  // closed, or reset after an error response
    out.append(buf, static_cast<std::size_t>(n));
  }
}

void send_all(int fd, const std::uint8_t* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the server closed early: its answer is still read
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::thread(serve_forever).detach();
  while (g_port.load() == 0) std::this_thread::sleep_for(1ms);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  int fd = connect_server();
  // Input larger than the socket buffers would block while the server is
  // waiting to write; send from a thread while this one reads.
  std::thread sender([&] {
    send_all(fd, data, size);
    ::shutdown(fd, SHUT_WR);
  });
  std::string answer = read_all(fd);
  sender.join();
  close_abortive(fd);
  if (!answer.empty() && answer.rfind("HTTP/1.1 ", 0) != 0 && answer.rfind("HTTP/1.0 ", 0) != 0) {
    std::fprintf(stderr, "http-fuzz: answer is not an HTTP response: %.40s\n", answer.c_str());
    std::abort();
  }
  return 0;
}
