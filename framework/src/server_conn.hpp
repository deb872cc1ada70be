// One connection's fiber: read a request, run the handler, write the
// response, again (see framework/README.md for the state machine).
//
// Everything here runs on a connection fiber, except close_if_idle() and
// force_close(), which shutdown() calls under the ServerState's lock, the
// disconnect watcher (conn_context.cpp), which only waits for readability
// while the handler runs with its body read, and on_readable(), the
// fiber-less idle wait's callback. A ServerConn lives on the heap: between
// requests it has no fiber (see "Idle without a fiber" in
// framework/README.md), and a new fiber resumes it when its next request
// arrives.
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

  // The body of a connection fiber: serves c until it closes (then deletes
  // it) or parks without a fiber (then the readiness callback owns it).
  // woke: {} to read, or why a fiber-less wait ended (closed, timeout).
  static void run(ServerConn* c, std::error_code woke = {});
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

  // read_head()'s answer when the connection parked without a fiber: the
  // caller must return at once, touching no member (another fiber may be
  // serving this connection already).
  static constexpr int kParked = -2;

  // conn_read.cpp
  int read_head(bool first);  // 0: head ready; -1: close quietly; kParked; else a status
  net::Result<std::size_t> wait_and_fill(bool idle, net::Deadline deadline);
  static void on_readable(void* self, std::error_code outcome) noexcept;
  // server_conn.cpp
  bool serve(std::error_code woke);  // false: parked (see run)
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
  // The first request's header section is due by then (read_header_timeout
  // from the accept), across fiber-less waits.
  const net::Deadline first_deadline_;

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

  // Idle waits versus shutdown, without a lock (conn_read.cpp):
  //   busy --(fiber arms the fiber-less wait for a request's first byte)--> idle
  //   idle --(the new fiber the wait's callback started)--> busy
  //   idle --(close_if_idle: nothing has arrived)--> closed
  //   any  --(force_close)--> closed, for good
  // The fibers' moves are CASes, so a move that finds `closed` fails and
  // the connection ends. All accesses are seq_cst: the fiber's "busy->idle,
  // then load shutting_down" and shutdown()'s "store shutting_down, then
  // load state_" are a Dekker pair, so either the fiber sees shutting_down
  // (and closes itself) or shutdown() sees it idle (and closes it), never
  // neither. While idle, the connection has no fiber: the PollDesc's lock
  // gives the armed wait to exactly one of readiness, the idle deadline and
  // close() (net/README.md), whose callback starts the one fiber that moves
  // idle->busy or, finding `closed`, closes and deletes the connection.
  enum class IdleState : unsigned char { busy, idle, closed };
  bool enter_idle() noexcept;  // false: the server is closing this connection
  bool leave_idle() noexcept;  // false: the server closed it while it parked
  std::atomic<IdleState> state_{IdleState::busy};
};

}  // namespace spindle::http::detail
