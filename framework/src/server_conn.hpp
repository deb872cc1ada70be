// One connection's fiber: read a request, run the handler, write the
// response, again (see framework/README.md for the state machine).
//
// Everything here runs on the connection's own fiber, except
// close_if_idle() and force_close(), which shutdown() calls under the
// ServerState's lock, and the disconnect watcher (conn_context.cpp), which
// only waits for readability while the handler runs with its body read.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "head_scan.hpp"
#include "parser.hpp"
#include "read_buffer.hpp"
#include "server_state.hpp"
#include "spindle/context.hpp"
#include "spindle/http/request.hpp"
#include "spindle/http/response.hpp"
#include "spindle/waitgroup.hpp"

namespace spindle::http::detail {

class ServerConn {
 public:
  ServerConn(ServerState& srv, net::Conn conn);
  ~ServerConn();
  ServerConn(const ServerConn&) = delete;
  ServerConn& operator=(const ServerConn&) = delete;

  void serve();
  std::size_t slot = 0;  // index in ServerState::conns (guarded by its mu)

  // Shutdown, called with srv.mu held.
  void close_if_idle() noexcept;  // step 2: unless a request has arrived
  void force_close() noexcept;    // step 4

  // Request's body and context.
  net::Result<std::string_view> body(std::size_t limit);
  net::Result<std::size_t> read_body(void* buf, std::size_t len);
  const Context& context();
  net::Address remote_address() const { return conn_.remote_address(); }

  // ResponseWriter's output.
  net::Status write(std::string_view data);
  net::Status flush();
  bool started() const noexcept { return started_; }
  void set_default_type(std::string_view type);
  std::string& body_buffer() noexcept { return wbody_; }  // json() serializes straight into it
  net::Status body_appended(std::size_t before);          // ... then says where it began

 private:
  // How the connection loop goes on after a request.
  enum class Next { keep, close };

  // conn_read.cpp
  int read_head(bool first);  // 0: head ready; -1: close quietly; else a status
  net::Result<std::size_t> wait_and_fill(bool idle);
  // server_conn.cpp
  Next serve_request();
  bool start_request();
  void run_handler();
  void answer_error(int status);
  void finish_request();
  void linger_close();
  // conn_body.cpp
  net::Status pump_body(bool keep);
  static void body_sink(void* self, const char* at, std::size_t len);
  void on_body(const char* at, std::size_t len);
  std::size_t pending_body() const noexcept;
  void keep_view() noexcept;
  void drain_body();
  // conn_write.cpp
  void reset_response() noexcept;
  void commit_head(bool final);
  void append_head_fields();
  void finish_response();
  net::Status emit(std::string_view data);
  net::Status send_out(std::string_view extra = {});
  void set_write_deadline();
  bool closing() const noexcept;
  bool drops_body() const noexcept;
  // conn_context.cpp
  void maybe_watch();
  void watch() noexcept;
  void end_context() noexcept;

  ServerState& srv_;
  const ServerConfig& cfg_;
  net::Conn conn_;
  ReadBuffer rbuf_;
  HeadScanner scanner_;
  Parser parser_;
  Request req_;
  ResponseWriter w_;
  std::size_t served_ = 0;  // requests answered on this connection

  // The request being served.
  bool head_request_ = false;
  bool expect_continue_ = false, continue_sent_ = false;
  bool must_close_ = false;  // the connection closes after this response
  bool dead_ = false;        // a write failed: nothing more can be sent

  // Its body (conn_body.cpp): decoded bytes not yet handed to the handler
  // are view_ (in rbuf_, when they came in one piece) or store_[store_off_..].
  std::string_view view_;
  std::string store_;
  std::size_t store_off_ = 0;
  std::optional<std::string_view> body_;  // what body() returned

  // Its response (conn_write.cpp).
  std::string out_;                        // bytes to send: heads, bodies, chunk framing
  std::string wbody_;                      // body written before the head is committed
  std::string type_;                       // Content-Type from a convenience, unless set
  std::uint64_t written_ = 0;              // body bytes the handler wrote
  std::uint64_t sent_ = 0;                 // body bytes framed for sending
  std::optional<std::uint64_t> declared_;  // a Content-Length the handler set
  bool started_ = false, chunked_out_ = false, until_close_ = false, no_body_ = false;

  // Its context (conn_context.cpp).
  std::optional<CancelableContext> ctx_;
  bool watching_ = false;
  spindle::WaitGroup watcher_;

  // Idle parking versus shutdown, without a lock (conn_read.cpp):
  //   busy --(fiber parks for a request's first byte)--> idle
  //   idle --(fiber wakes)--> busy
  //   idle --(close_if_idle: nothing has arrived)--> closed
  //   any  --(force_close)--> closed, for good
  // The fiber's moves are CASes, so a move that finds `closed` fails and
  // the fiber ends. All accesses are seq_cst: the fiber's "busy->idle, then
  // load shutting_down" and shutdown()'s "store shutting_down, then load
  // state_" are a Dekker pair, so either the fiber sees shutting_down (and
  // closes itself) or shutdown() sees it idle (and closes it), never
  // neither.
  enum class IdleState : unsigned char { busy, idle, closed };
  bool enter_idle() noexcept;  // false: the server is closing this connection
  bool leave_idle() noexcept;  // false: the server closed it while it parked
  std::atomic<IdleState> state_{IdleState::busy};
};

}  // namespace spindle::http::detail
