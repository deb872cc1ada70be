// The netpoller: Asio's reactor behind the scheduler's Poller slot, and one
// PollDesc per socket (Go's pollDesc). See net/README.md for the protocol.
#pragma once

#include <asio/io_context.hpp>
// After io_context.hpp, which they need first.
#include <asio/detail/reactor.hpp>
#include <asio/detail/reactor_op.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <system_error>

#include "asio_poller.hpp"
#include "spindle/context.hpp"
#include "spindle/park.hpp"
#include "spindle/poller.hpp"
#include "spindle/timer.hpp"
#include "spindle/waiter.hpp"

namespace spindle::net::detail {

class PollDesc;

// {} while ctx is not done; then Errc::timeout (its deadline passed) or
// Errc::canceled.
std::error_code context_error(const Context& ctx) noexcept;

enum class Dir : int { read = 0, write = 1 };

// Per-socket poll state. Owned by its Conn/Listener (one reference, held
// until the owner is destroyed) and by each Asio wait in flight (one each),
// so a handler that runs after close() still finds it. The slots are
// guarded by lock_.
class alignas(64) PollDesc {
 public:
  // Takes ownership of fd, which must be non-blocking.
  static PollDesc* open(int fd);
  int fd() const noexcept { return fd_; }

  // Parks until fd may be ready for dir, `deadline` (now_ns(); INT64_MAX:
  // none) passes, ctx (if any) is done, or close(). Returns {},
  // Errc::timeout (the deadline or ctx's), Errc::canceled (ctx canceled) or
  // Errc::closed. At most one waiter per direction (a reader and a writer
  // may wait at once).
  std::error_code wait(Dir dir, std::int64_t deadline, const Context* ctx = nullptr);

  // Conn::when_readable / cancel_when_readable (see conn.hpp and the
  // README's "Fiber-less waits"). False from notify_readable: not armed,
  // because the socket is closed or a readiness mark is pending (read
  // again). At most one, and never while a fiber waits to read.
  using ReadableFn = void (*)(void* arg, std::error_code outcome);
  bool notify_readable(std::int64_t deadline, ReadableFn fn, void* arg);
  bool cancel_notify() noexcept;
  // Runs the callbacks of the notifies that edges took during this thread's
  // poll (edges run under the reactor's descriptor mutex, callbacks must
  // not). AsioPoller::poll calls it after its handlers.
  static void run_edge_notifies() noexcept;

  // The wait-first hint (Conn::drained): the reader notes each read's
  // outcome; a read edge or the peer's half-close clears the hint.
  void note_read(long got, std::size_t asked) noexcept {
    drained_.store(got > 0 && static_cast<std::size_t>(got) < asked, std::memory_order_relaxed);
  }
  bool drained() const noexcept {
    return drained_.load(std::memory_order_relaxed) &&
           !peer_closed_.load(std::memory_order_relaxed);
  }

  // Wakes both waiters with Errc::closed and shuts the socket down; the fd
  // is closed when the last reference goes. Idempotent.
  void close() noexcept;
  bool closed() const noexcept { return closed_.load(std::memory_order_relaxed); }
  // Drops a reference; the owner closes first. The last one frees.
  void release() noexcept;

 private:
  struct Waiting;
  // Asio's reactor reports a readiness edge of the fd to this op, which
  // stays queued in the reactor from the direction's first wait until
  // close(): the fd is registered once and never re-armed (no epoll_ctl per
  // wait), as Go's netpoller does. Reaches into asio::detail (the
  // epoll_reactor's op queue): see net/README.md.
  struct Edge : asio::detail::reactor_op {
    Edge(PollDesc* p, Dir d) : reactor_op({}, &perform, &aborted), pd(p), dir(d) {}
    // An edge; on the polling thread, under the reactor's descriptor mutex.
    static status perform(reactor_op* op) noexcept;
    // Dequeued by close() (or never run, owner == nullptr, at shutdown).
    static void aborted(void* owner, asio::detail::scheduler_operation* op, const std::error_code&,
                        std::size_t) noexcept;
    PollDesc* const pd;
    const Dir dir;
  };
  // The fiber-less read wait: a member, so arming allocates nothing. Armed
  // (notify_armed_, under lock_) from notify_readable until one taker takes
  // it out under lock_: an edge, its deadline timer, close() or
  // cancel_notify(); the taker then calls fn, which may arm it again.
  //
  // The deadline timer is lazy, as nginx's and Go's timers are: a taker
  // leaves it running, and the next arming, whose deadline is almost always
  // later (now + the same idle timeout), keeps it: when it fires early it
  // starts itself again at the deadline of the arming it finds. So a
  // keep-alive connection pays a timer-heap insert per idle timeout, not
  // an insert and a removal per request. Only an earlier deadline moves it
  // (stop and start); close() stops it.
  struct Notify : Timer {
    PollDesc* pd = nullptr;  // and fire: set once, by the constructor
    ReadableFn fn = nullptr;
    void* arg = nullptr;
    std::error_code outcome;   // written by the taker
    PollDesc* next = nullptr;  // the poll's list of edge-taken notifies (see AsioPoller::poll)
    // Guarded by lock_: this arming's deadline (kNeverPoll: none), and
    // whether the Timer is in a heap or firing. A set timer holds a
    // reference; Timer::when is written only while it is not in a heap.
    std::int64_t deadline = spindle::detail::kNeverPoll;
    bool timer_set = false;
  };
  void set_notify_timer(std::int64_t deadline) noexcept;  // caller holds lock_
  static void on_notify_deadline(Timer* t) noexcept;
  bool take_notify(std::error_code outcome) noexcept;  // caller holds lock_
  void finish_notify(bool run) noexcept;               // the taker, without lock_

  struct Slot {
    // Set once, before lock_ (arming takes the reactor's descriptor mutex,
    // which the edge holds when it takes lock_); relaxed: the exchange only
    // picks who arms.
    std::atomic<bool> armed{false};
    // The direction's one waiting fiber, from the start of wait() to its
    // end: it owns `record` meanwhile. Exchanged with acquire, cleared with
    // release, so the next waiter sees the record as the last one left it.
    std::atomic<bool> busy{false};
    bool ready = false;         // guarded by lock_: an edge came with nobody waiting
    Waiting* waiter = nullptr;  // guarded by lock_: `record` while its fiber is parked
    // The wait record, made by the direction's first wait and reused: on
    // the heap, not the waiting fiber's stack, so wakers never touch a
    // parked stack (its stack may be evicted: scheduler/README.md).
    std::unique_ptr<Waiting> record;
  };

  PollDesc(AsioPoller& poller, int fd);
  ~PollDesc();
  void arm(Dir dir);
  void on_edge(Dir dir, std::uint32_t events) noexcept;
  static void on_deadline(Timer* t) noexcept;
  void on_context_done(Waiting& w, std::error_code why) noexcept;
  Fiber* take_waiter(Slot& s, std::error_code outcome) noexcept;
  Slot& slot(Dir dir) noexcept { return slots_[static_cast<int>(dir)]; }

  // What a wait and an edge touch comes first, within one cache line (the
  // class is aligned to it): with 1,000 connections, each echoed message
  // found its PollDesc cold, and the flags at its end cost a second miss.
  spindle::detail::SpinLock lock_;
  const int fd_;
  // Written under lock_; read without it before each syscall (relaxed: a
  // stale false only costs one syscall on a shut-down socket).
  std::atomic<bool> closed_{false};
  // The last read came back short (the socket was empty), and no read edge
  // came since: written by the reader and by read edges. peer_closed_: an
  // edge said EPOLLRDHUP/HUP/ERR; sticky. Relaxed: they only choose between
  // reading first and waiting first, and a stale value loses nothing,
  // because an edge also leaves Slot::ready (or wakes the waiter) under
  // lock_, which a wait checks before it parks.
  std::atomic<bool> drained_{false};
  std::atomic<bool> peer_closed_{false};
  bool notify_armed_ = false;  // guarded by lock_
  std::atomic<int> refs_{1};   // acq_rel on release: the last one frees
  Slot slots_[2];
  AsioPoller& poller_;  // outlives every PollDesc (see the README's lifetime)
  asio::detail::reactor& reactor_;
  asio::detail::reactor::per_descriptor_data data_ = nullptr;  // the reactor's state for fd_
  Edge edges_[2];
  Notify notify_;
};

}  // namespace spindle::net::detail
