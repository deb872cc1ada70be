// What a Server shares with its listener and connection fibers.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

#include "spindle/condvar.hpp"
#include "spindle/context.hpp"
#include "spindle/http/server.hpp"
#include "spindle/mutex.hpp"
#include "spindle/net/conn.hpp"

namespace spindle::http::detail {

class ServerConn;

// shutdown_on_signals' hold on a Server (signals.cpp): its fiber calls
// shutdown() through this link, and ~Server cuts the link first, so a
// signal that comes after the Server is gone finds nothing to shut down.
struct SignalLink {
  spindle::Mutex mu;
  Server* srv = nullptr;  // guarded by mu; null once the Server is gone
  net::Conn reader;       // the signal pipe; ~Server closes it to end the fiber
};

class ServerState {
 public:
  ServerState(Handler h, ServerConfig c);

  // Registration of a connection fiber's ServerConn, and its end.
  void add(ServerConn& c);
  void remove(ServerConn& c);

  const Handler handler;
  const ServerConfig cfg;

  // Set once by shutdown() (seq_cst, with ServerConn::state_: see
  // ServerConn::enter_idle). Connections read it to answer with
  // "Connection: close" and to stop idling.
  std::atomic<bool> shutting_down{false};
  // Cancelled at the end of the grace period; request contexts derive
  // from it.
  const CancelableContext grace;

  spindle::Mutex mu;
  spindle::CondVar changed;  // a connection went away, or shutdown began
  // Guarded by mu.
  std::vector<net::Listener> listeners;
  std::vector<ServerConn*> conns;         // registered ServerConns (unordered)
  std::size_t accepted = 0;               // counted by accept before the fiber registers
  std::size_t accepting = 0;              // accept fibers still running
  bool serving = false, stopped = false;  // serve() called / shutdown() done

  std::shared_ptr<SignalLink> signals;  // guarded by mu; see SignalLink

  // connections() without the lock (relaxed: a statistic).
  std::atomic<std::size_t> open{0};
};

}  // namespace spindle::http::detail
