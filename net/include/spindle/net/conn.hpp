// Blocking-style TCP for fibers, in the shape of Go's net package:
//
//   auto ln = net::Listener::listen("127.0.0.1", 8080);
//   for (;;) {
//     auto conn = ln->accept();                  // parks the fiber, not the thread
//     if (!conn) { ... conn.error() ... }
//     spindle::go([c = std::move(*conn)]() mutable {
//       char buf[4096];
//       while (auto n = c.read_some(buf, sizeof buf))
//         if (*n == 0 || !c.write_all(buf, *n)) break;
//     });
//   }
//
// Every call may park the calling fiber; none blocks its thread. Errors are
// values (spindle/net/error.hpp). A Conn may be used by two fibers at once,
// one reading and one writing; close() from any fiber wakes both with
// Errc::closed. Conns and Listeners must not outlive spindle::run.
//
// Contexts (spindle/context.hpp), per call as in Go's DialContext: each
// parking call has a form that also takes a Context. It fails with
// Errc::canceled once the context is canceled, and with Errc::timeout once
// the context's deadline passes (whichever comes first of that and the
// connection's own deadline). A context that is done already fails the call
// before it touches the socket. Like a timeout, cancellation leaves the
// connection usable: a canceled read consumed nothing, a canceled write may
// have sent a prefix (close the connection if the peer cannot tell). The
// forms without a context cost nothing extra.
//
//   auto [ctx, cancel] = spindle::with_timeout(parent, 5s);
//   auto n = conn.read_some(buf, sizeof buf, ctx);
//   if (!n && n.error() == net::Errc::canceled) ...
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "spindle/net/error.hpp"

namespace spindle {
class Context;
}

namespace spindle::net {

namespace detail {
class PollDesc;
}

using Clock = std::chrono::steady_clock;
// A point in time after which an operation fails with Errc::timeout;
// kNoDeadline (the default) means never.
using Deadline = Clock::time_point;
inline constexpr Deadline kNoDeadline = Deadline::max();

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;

  std::uint16_t port() const noexcept;
  std::string to_string() const;  // "127.0.0.1:80", "[::1]:80"
};

class Conn {
 public:
  Conn() = default;
  explicit Conn(int fd);  // takes a connected, non-blocking socket
  // Connects to addr (no DNS; see dial()), waiting until the deadline.
  static Result<Conn> connect(const Address& addr, Deadline deadline = kNoDeadline);
  static Result<Conn> connect(const Address& addr, const Context& ctx);
  Conn(Conn&& other) noexcept;
  Conn& operator=(Conn&& other) noexcept;
  ~Conn();

  // Reads what is available, at least one byte unless the peer closed
  // (then 0). Parks until data arrives or the read deadline passes.
  Result<std::size_t> read_some(void* buf, std::size_t len) { return read(buf, len, nullptr); }
  Result<std::size_t> read_some(void* buf, std::size_t len, const Context& ctx) {
    return read(buf, len, &ctx);
  }
  // One read attempt that never parks: std::errc::operation_would_block
  // when nothing is there yet.
  Result<std::size_t> try_read(void* buf, std::size_t len);
  // True when the last read came back short (the kernel had no more) and
  // no readiness edge or half-close came since: a read now would almost
  // surely say EAGAIN, so a caller may wait_readable() first and save that
  // syscall (nginx's `ready = 0`). read_some() does so itself. Waiting first
  // loses nothing: an edge that came meanwhile ends the wait at once.
  bool drained() const noexcept;
  // Parks until the socket may be readable (the read deadline applies),
  // without reading: lets a caller hold no buffer while the connection is
  // idle. May return early; the next read tells.
  Status wait_readable() { return wait_read(nullptr); }
  Status wait_readable(const Context& ctx) { return wait_read(&ctx); }
  // A one-shot readiness callback instead of a parked fiber, for servers
  // that hold idle connections without a fiber (http::Server's keep-alive
  // wait): fn(arg, outcome) runs exactly once, when the socket may be
  // readable ({}), `deadline` passes (Errc::timeout) or close() is called
  // (Errc::closed), unless cancel_when_readable() takes it back first. It
  // runs on a scheduler thread (a poller after its poll, a timer, or the
  // thread calling close()) and must not block; it may call spindle::go.
  // False: not armed, because the socket is closed or readiness is already
  // pending: read again. At most one at a time, and not while a fiber waits
  // to read (std::logic_error). See net/README.md, "Fiber-less waits".
  using ReadableFn = void (*)(void* arg, std::error_code outcome);
  bool when_readable(Deadline deadline, ReadableFn fn, void* arg);
  // True if the armed callback was taken back and will never run; false if
  // none was armed, or it has run or is about to.
  bool cancel_when_readable() noexcept;
  // Reads exactly len bytes; Errc::eof if the peer closes first.
  Status read_full(void* buf, std::size_t len) { return read_all(buf, len, nullptr); }
  Status read_full(void* buf, std::size_t len, const Context& ctx) {
    return read_all(buf, len, &ctx);
  }
  // Writes all of it (parks while the kernel's buffer is full). Never
  // raises SIGPIPE: a write to a closed peer is an error (EPIPE).
  Status write_all(const void* buf, std::size_t len) { return write(buf, len, nullptr); }
  Status write_all(const void* buf, std::size_t len, const Context& ctx) {
    return write(buf, len, &ctx);
  }
  // Vectored write_all, one syscall when the kernel takes it all.
  Status write_all(iovec* iov, int count) { return writev(iov, count, nullptr); }
  Status write_all(iovec* iov, int count, const Context& ctx) { return writev(iov, count, &ctx); }

  // A deadline applies to every later call in its direction until changed;
  // a call that times out returns Errc::timeout and the connection stays
  // usable (a partial write may have happened).
  void set_read_deadline(Deadline d) noexcept;
  void set_write_deadline(Deadline d) noexcept;
  void set_deadline(Deadline d) noexcept;
  // Instead of a deadline (each replaces the other): every later wait in
  // that direction, for the peer to send more or to take more, may last
  // at most d, counted from its start, however long the whole call takes
  // (nginx's client_body_timeout and send_timeout). Running out is
  // Errc::timeout, as with a deadline.
  void set_read_timeout(std::chrono::nanoseconds d) noexcept;
  void set_write_timeout(std::chrono::nanoseconds d) noexcept;

  Status shutdown_write();  // half-close: the peer reads EOF
  Status shutdown_read();
  // Closes now: the peer sees the close, fibers parked on it and later
  // calls get Errc::closed. The descriptor number is released when the Conn
  // is destroyed, so a call racing close() never touches a reused one.
  // Idempotent.
  void close() noexcept;
  bool is_open() const noexcept;

  Status set_nodelay(bool on);  // on by default
  Status set_keepalive(bool on, std::chrono::seconds idle = std::chrono::seconds(15));
  Address local_address() const;
  Address remote_address() const;
  int fd() const noexcept;

 private:
  void reset() noexcept;  // close and drop the descriptor
  // The calls above; ctx: nullptr or the call's context.
  static Result<Conn> connect_until(const Address& addr, std::int64_t deadline, const Context* ctx);
  Result<std::size_t> read(void* buf, std::size_t len, const Context* ctx);
  Status wait_read(const Context* ctx);
  Status read_all(void* buf, std::size_t len, const Context* ctx);
  Status write(const void* buf, std::size_t len, const Context* ctx);
  Status writev(iovec* iov, int count, const Context* ctx);

  detail::PollDesc* pd_ = nullptr;
  // A deadline in now_ns() units, or a per-wait timeout stored negative
  // (detail::wait_deadline in src/syscall.hpp); atomics because another
  // fiber may set them while one reads or writes (relaxed: a call uses
  // whichever value it sees at start).
  std::atomic<std::int64_t> read_limit_{INT64_MAX};
  std::atomic<std::int64_t> write_limit_{INT64_MAX};
};

struct ListenOptions {
  int backlog = 4096;       // the kernel caps it at net.core.somaxconn
  bool reuse_port = false;  // SO_REUSEPORT: several listeners share the port
};

class Listener {
 public:
  // host: an IPv4 or IPv6 literal, "" or "::" for every address (dual stack).
  // Port 0 picks a free port (see address()). SO_REUSEADDR is always on.
  static Result<Listener> listen(std::string_view host, std::uint16_t port,
                                 const ListenOptions& opts = {});

  Listener() = default;
  Listener(Listener&& other) noexcept;
  Listener& operator=(Listener&& other) noexcept;
  ~Listener();

  // Parks until a connection arrives. Out of file descriptors (EMFILE,
  // ENFILE, ENOBUFS), it logs once, backs off (5 ms doubling to 1 s, as Go's
  // http.Server does) and retries, so it neither spins nor fails. After
  // close() it returns Errc::closed. With a context, also Errc::canceled or
  // Errc::timeout (see Conn), the back-off included.
  Result<Conn> accept() { return accept(nullptr); }
  Result<Conn> accept(const Context& ctx) { return accept(&ctx); }
  void close() noexcept;  // as Conn::close
  Address address() const;

 private:
  void reset() noexcept;
  Result<Conn> accept(const Context* ctx);

  detail::PollDesc* pd_ = nullptr;
  bool logged_exhaustion_ = false;
};

// Resolves host (through spindle::blocking, so DNS never holds a P) and
// connects to the first address that answers within timeout.
Result<Conn> dial(std::string_view host, std::uint16_t port,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30));
// As above, bounded by ctx instead of a timeout (Go's DialContext). The DNS
// lookup itself is not interrupted: a context done during it is noticed
// when it returns.
Result<Conn> dial(std::string_view host, std::uint16_t port, const Context& ctx);

}  // namespace spindle::net
