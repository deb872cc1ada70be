#include "server_state.hpp"

#include "server_conn.hpp"

namespace spindle::http::detail {

ServerState::ServerState(Handler h, ServerConfig c)
    : handler(std::move(h)), cfg(c), grace(with_cancel(Context::background())) {}

void ServerState::add(ServerConn& c) {
  std::lock_guard lock(mu);
  c.slot = conns.size();
  conns.push_back(&c);
  // Accepted after grace ended: it must not wait for a request.
  if (grace.ctx.err()) c.force_close();
}

void ServerState::remove(ServerConn& c) {
  std::lock_guard lock(mu);
  ServerConn* last = conns.back();
  conns[c.slot] = last;
  last->slot = c.slot;
  conns.pop_back();
  open.fetch_sub(1, std::memory_order_relaxed);
  changed.notify_all();
}

}  // namespace spindle::http::detail
