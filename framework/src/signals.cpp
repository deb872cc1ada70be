// shutdown_on_signals: SIGTERM/SIGINT turned into Server::shutdown without
// a thread blocked in sigwait.
//
// The self-pipe trick: a handler (on whatever thread the kernel picks) sends
// one byte into a socketpair, the only thing it may safely do; a fiber
// parked on the other end through the netpoller wakes up and shuts the
// server down. A second signal means "now": the handler calls _exit(1).
//
// Teardown (the fiber ends, or spindle::run unwinds it): the previous
// dispositions come back first, then the write end is retired and closed
// once no handler is still using it, so a late signal never writes to a
// closed, possibly reused, descriptor.
//
// The fiber reaches the Server through a SignalLink (server_state.hpp) that
// ~Server cuts and whose pipe it closes: a signal after the Server is gone
// shuts nothing down, and the watch ends with the Server.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <spindle/http/server.hpp>
#include <spindle/net/conn.hpp>
#include <spindle/runtime.hpp>

#include "server_state.hpp"

namespace spindle::http {
namespace {

constexpr int kSignals[] = {SIGTERM, SIGINT};

// Shared with the handler, so lock-free atomics only (async-signal-safe),
// all seq_cst: the handler's "enter, then load the fd" and teardown's
// "retire the fd, then check for handlers" form a Dekker pair, so either
// teardown sees the handler inside or the handler sees -1.
std::atomic<int> g_write_fd{-1};   // the socketpair end handlers write; -1: none
std::atomic<int> g_in_handler{0};  // handlers that may be using g_write_fd
std::atomic<int> g_signals{0};     // signals caught since installation
static_assert(std::atomic<int>::is_always_lock_free);

// Written by install() before the handlers go in, read by Watch's
// destructor only: one watch at a time (install() checks).
struct sigaction g_previous[std::size(kSignals)];

void on_signal(int) {
  int saved_errno = errno;
  if (g_signals.fetch_add(1) > 0) _exit(1);
  g_in_handler.fetch_add(1);
  if (int fd = g_write_fd.load(); fd >= 0) {
    // Never blocks, never raises SIGPIPE; one byte is all the fiber needs,
    // so a full buffer (EAGAIN) loses nothing.
    (void)!send(fd, "s", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  g_in_handler.fetch_sub(1);
  errno = saved_errno;
}

// The handlers installed, owning the socketpair's write end; movable into
// the watching fiber, whose end (or unwinding) uninstalls them.
class Watch {
 public:
  explicit Watch(int write_fd) {
    int expected = -1;
    if (!g_write_fd.compare_exchange_strong(expected, write_fd))
      throw std::logic_error("spindle::http::shutdown_on_signals: already watching signals");
    g_signals.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;  // other threads' slow syscalls carry on
    sigemptyset(&sa.sa_mask);
    for (std::size_t i = 0; i < std::size(kSignals); ++i)
      sigaction(kSignals[i], &sa, &g_previous[i]);
    write_fd_ = write_fd;
  }
  Watch(Watch&& other) noexcept : write_fd_(std::exchange(other.write_fd_, -1)) {}
  Watch& operator=(Watch&&) = delete;
  ~Watch() {
    if (write_fd_ < 0) return;
    for (std::size_t i = 0; i < std::size(kSignals); ++i)
      sigaction(kSignals[i], &g_previous[i], nullptr);
    g_write_fd.store(-1);
    // A handler that loaded the fd before the store is inside send(): a
    // few microseconds.
    while (g_in_handler.load() != 0) std::this_thread::yield();
    ::close(write_fd_);
  }

 private:
  int write_fd_ = -1;
};

}  // namespace

void shutdown_on_signals(Server& srv, std::chrono::milliseconds grace) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
    throw std::system_error(errno, std::system_category(), "shutdown_on_signals: socketpair");
  auto link = std::make_shared<detail::SignalLink>();
  link->srv = &srv;
  link->reader = net::Conn(fds[0]);
  Watch watch = [&] {
    try {
      return Watch(fds[1]);
    } catch (...) {
      ::close(fds[1]);
      throw;
    }
  }();
  // Installed before returning, so a signal from now on is a graceful
  // shutdown; the fiber parks in the netpoller and holds no thread.
  {
    std::lock_guard lock(srv.state_->mu);
    srv.state_->signals = link;
  }
  go({.name = "http-signals"}, [link, grace, watch = std::move(watch)] {
    char byte;
    if (auto n = link->reader.read_some(&byte, 1); !n || *n != 1) return;
    std::lock_guard lock(link->mu);
    if (link->srv) link->srv->shutdown(grace);
  });
}

}  // namespace spindle::http
