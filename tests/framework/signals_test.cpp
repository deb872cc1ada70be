// shutdown_on_signals: SIGTERM is a graceful shutdown, a second signal an
// immediate exit, and the watcher leaves nothing behind.
#include <dirent.h>
#include <doctest/doctest.h>
#include <signal.h>
#include <spindle/http/mux.hpp>
#include <spindle/http/server.hpp>
#include <spindle/runtime.hpp>
#include <spindle/waitgroup.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "../support/child.hpp"
#include "test_server.hpp"

using namespace std::chrono_literals;
namespace http = spindle::http;

namespace {

int open_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (readdir(d)) ++n;
  closedir(d);
  return n;
}

// In a child: a server whose handler takes `handler_time`, one client whose
// request is in flight when `signals` are raised one by one. Prints what
// the client got, then "serve returned" if it did.
void serve_and_signal(std::chrono::milliseconds handler_time, std::initializer_list<int> signals) {
  std::atomic<bool> in_handler{false};
  http::ServeMux mux;
  mux.handle("GET /slow", [&](http::Request&, http::ResponseWriter& w) {
    in_handler = true;
    spindle::sleep_for(handler_time);
    w.text(200, "finished");
  });
  spindle::Config rc;
  rc.procs = 2;
  spindle::run(rc, [&] {
    http::Server srv(mux);
    auto addr = srv.listen("127.0.0.1", 0);
    if (!addr) std::_Exit(3);
    http::shutdown_on_signals(srv, 10s);
    // Detached, with futures to wait on: when a second signal _exits the
    // process mid-test, ThreadSanitizer would report a joinable thread as
    // leaked (and exit 66).
    std::promise<void> client_done, killer_done;
    std::thread([&, port = addr->port()] {
      auto raw = spindle::testing::exchange(port, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n");
      auto r = spindle::testing::parse_response(raw);
      std::fprintf(stderr, "client got %d %s, connection: %s\n", r.status, r.body.c_str(),
                   r.header("connection").c_str());
      client_done.set_value();
    }).detach();
    std::thread([&] {
      while (!in_handler) std::this_thread::sleep_for(1ms);
      for (int sig : signals) {
        kill(getpid(), sig);
        std::this_thread::sleep_for(50ms);
      }
      killer_done.set_value();
    }).detach();
    (void)srv.serve();
    spindle::blocking([&] {
      client_done.get_future().wait();
      killer_done.get_future().wait();
    });
    std::fprintf(stderr, "serve returned\n");
  });
}

}  // namespace

TEST_CASE("shutdown_on_signals: SIGTERM drains the request in flight, then serve() returns") {
  auto r = spindle::testing::run_in_child([] { serve_and_signal(300ms, {SIGTERM}); });
  CAPTURE(r.err);
  CHECK(r.signal == 0);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("client got 200 finished, connection: close\n") != r.err.npos);
  CHECK(r.err.find("serve returned\n") != r.err.npos);
}

TEST_CASE("shutdown_on_signals: SIGINT too; a second signal exits at once with status 1") {
  auto r = spindle::testing::run_in_child([] { serve_and_signal(30s, {SIGINT, SIGTERM}); });
  CAPTURE(r.err);
  CHECK(r.signal == 0);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("serve returned") == r.err.npos);
}

TEST_CASE("shutdown_on_signals: the watcher keeps nothing alive, restores the handlers") {
  struct sigaction before[2]{};
  sigaction(SIGTERM, nullptr, &before[0]);
  sigaction(SIGINT, nullptr, &before[1]);
  int fds_before = open_fds();
  bool second_call_threw = false;
  spindle::run({}, [&] {
    http::Server srv([](http::Request&, http::ResponseWriter& w) { w.send_status(204); });
    if (!srv.listen("127.0.0.1", 0)) throw std::runtime_error("listen");
    http::shutdown_on_signals(srv);
    try {
      http::shutdown_on_signals(srv);  // one watch at a time
    } catch (const std::logic_error&) {
      second_call_threw = true;
    }
    spindle::WaitGroup wg;
    wg.add(1);
    spindle::go([&] {
      (void)srv.serve();
      wg.done();
    });
    srv.shutdown(1s);
    wg.wait();
    // main_fn returns with the watcher still parked: run() must unwind it.
  });
  CHECK(second_call_threw);
  CHECK(open_fds() == fds_before);
  struct sigaction after[2]{};
  sigaction(SIGTERM, nullptr, &after[0]);
  sigaction(SIGINT, nullptr, &after[1]);
  CHECK((after[0].sa_handler == before[0].sa_handler));
  CHECK((after[1].sa_handler == before[1].sa_handler));
}

namespace {
std::atomic<int> g_own_handler_calls{0};
void own_handler(int) {
  g_own_handler_calls.fetch_add(1);
}
}  // namespace

// The watch ends with the Server: ~Server cuts the watcher's link and
// closes its pipe, so the old handler is back while the runtime still runs,
// and a signal then reaches it instead of shutting down a dead Server.
TEST_CASE("shutdown_on_signals: a destroyed Server ends the watch; later signals are not its") {
  struct sigaction own {
  }, saved{};
  own.sa_handler = own_handler;
  sigemptyset(&own.sa_mask);
  sigaction(SIGTERM, &own, &saved);
  bool restored = false;
  spindle::run({}, [&] {
    {
      http::Server srv([](http::Request&, http::ResponseWriter& w) { w.send_status(204); });
      http::shutdown_on_signals(srv);
    }
    for (int i = 0; i < 5000 && !restored; ++i) {
      struct sigaction now {};
      sigaction(SIGTERM, nullptr, &now);
      restored = now.sa_handler == own_handler;
      if (!restored) spindle::sleep_for(1ms);
    }
    if (restored) raise(SIGTERM);
  });
  sigaction(SIGTERM, &saved, nullptr);
  CHECK(restored);
  CHECK(g_own_handler_calls.load() == 1);
}
