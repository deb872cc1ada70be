// Server: listeners, the accept fibers, and the shutdown protocol
// (framework/README.md has the numbered version).
#include <spdlog/spdlog.h>

#include "server_conn.hpp"
#include "server_state.hpp"
#include "spindle/runtime.hpp"

namespace spindle::http {

using detail::ServerConn;
using detail::ServerState;

namespace {

// One per listener. At max_connections it stops calling accept(): new
// connections wait in the kernel's backlog until one closes.
void accept_loop(ServerState& st, net::Listener& ln) {
  for (;;) {
    {
      std::unique_lock lock(st.mu);
      st.changed.wait(lock, [&] {
        return st.shutting_down.load() ||
               st.open.load(std::memory_order_relaxed) < st.cfg.max_connections;
      });
      if (st.shutting_down.load()) break;
    }
    auto conn = ln.accept();
    if (!conn) {
      if (conn.error() == net::Errc::closed) break;
      continue;  // accept already backs off on descriptor exhaustion
    }
    // Counted before the fiber runs, so shutdown() waits for it too.
    st.open.fetch_add(1, std::memory_order_relaxed);
    spindle::go(SpawnOptions{.name = "http-conn"}, [&st, c = std::move(*conn)]() mutable {
      ServerConn::run(new ServerConn(st, std::move(c)));
    });
  }
  std::lock_guard lock(st.mu);
  --st.accepting;
  st.changed.notify_all();
}

}  // namespace

Server::Server(Handler handler, ServerConfig cfg)
    : state_(std::make_unique<ServerState>(std::move(handler), cfg)) {}

Server::~Server() {
  bool serving;
  std::shared_ptr<detail::SignalLink> signals;
  {
    std::lock_guard lock(state_->mu);
    serving = state_->serving && !state_->stopped;
    signals = std::move(state_->signals);
  }
  if (signals) {  // waits for a shutdown() the signal fiber is running
    std::lock_guard lock(signals->mu);
    signals->srv = nullptr;
    signals->reader.close();
  }
  if (serving) shutdown(std::chrono::milliseconds(0));
}

net::Result<net::Address> Server::listen(std::string_view host, std::uint16_t port,
                                         const net::ListenOptions& opts) {
  auto ln = net::Listener::listen(host, port, opts);
  if (!ln) return ln.error();
  net::Address addr = ln->address();
  std::lock_guard lock(state_->mu);
  state_->listeners.push_back(std::move(*ln));
  return addr;
}

net::Status Server::serve() {
  ServerState& st = *state_;
  std::unique_lock lock(st.mu);
  if (st.serving) throw std::logic_error("http::Server::serve called twice");
  st.serving = true;
  if (!st.shutting_down.load()) {
    for (auto& ln : st.listeners) {
      ++st.accepting;
      spindle::go(SpawnOptions{.name = "http-accept"}, [&st, &ln] { accept_loop(st, ln); });
    }
  }
  st.changed.wait(lock, [&] { return st.stopped; });
  return net::ok();
}

void Server::shutdown(std::chrono::milliseconds grace) {
  ServerState& st = *state_;
  auto deadline = std::chrono::steady_clock::now() + grace;
  auto gone = [&] { return st.open.load(std::memory_order_relaxed) == 0 && st.accepting == 0; };
  std::unique_lock lock(st.mu);
  if (!st.shutting_down.exchange(true)) {
    // 1. Stop accepting.
    for (auto& ln : st.listeners) ln.close();
    // 2. Idle connections close now, unless a request has arrived.
    for (ServerConn* c : st.conns) c->close_if_idle();
    st.changed.notify_all();
  }
  // 3. In-flight requests finish (their responses say "Connection: close").
  if (!st.changed.wait_until(lock, deadline, gone)) {
    // 4. At the deadline: cancel the handlers' contexts, close the rest.
    st.grace.cancel();
    for (ServerConn* c : st.conns) c->force_close();
    st.changed.wait(lock, gone);
  }
  st.stopped = true;
  st.changed.notify_all();
}

std::size_t Server::connections() const noexcept {
  return state_->open.load(std::memory_order_relaxed);
}

}  // namespace spindle::http
