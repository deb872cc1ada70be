#include "poll_desc.hpp"

#include <asio/post.hpp>

#include <sys/socket.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "spindle/net/error.hpp"
#include "spindle/timer.hpp"

namespace spindle::net::detail {

namespace {
constexpr auto relaxed = std::memory_order_relaxed;

// The ReadyList of the poll() running on this thread. Handlers only run
// inside poll(), on the polling thread, and no fiber switch happens there,
// so a thread_local is right here (see fiber_local.hpp for when it is not).
thread_local spindle::detail::ReadyList* t_ready = nullptr;

std::unique_ptr<spindle::detail::Poller> make_poller() {
  return std::make_unique<AsioPoller>();
}
}  // namespace

spindle::detail::ReadyList* current_ready_list() noexcept {
  return t_ready;
}

AsioPoller& reactor() {
  return static_cast<AsioPoller&>(spindle::detail::install_poller(make_poller));
}

AsioPoller::AsioPoller() : work_(asio::make_work_guard(io_)) {}

// Runs what is still queued (the completions of waits that unwinding or
// close() cancelled), so every PollDesc reference is dropped, then stops.
AsioPoller::~AsioPoller() {
  work_.reset();
  spindle::detail::ReadyList ignored;
  t_ready = &ignored;
  io_.restart();
  io_.poll();
  t_ready = nullptr;
}

void AsioPoller::poll(std::int64_t deadline, spindle::detail::ReadyList& ready) {
  t_ready = &ready;
  if (deadline == 0) {
    io_.poll();
  } else {
    // Block for the first event (or the deadline), then take whatever else
    // is ready without blocking again.
    if (deadline == spindle::detail::kNeverPoll)
      io_.run_one();
    else
      io_.run_one_until(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline)));
    io_.poll();
  }
  t_ready = nullptr;
  if (io_.stopped()) io_.restart();
}

void AsioPoller::interrupt() {
  if (interrupt_pending_.exchange(true, std::memory_order_acq_rel)) return;
  asio::post(io_, [this] { interrupt_pending_.store(false, std::memory_order_release); });
}

// ---------------------------------------------------------------------------

struct PollDesc::Deadline : Timer {
  PollDesc* pd;
  Dir dir;
  Fiber* fiber;
  std::atomic<bool> done{false};  // release: the callback no longer touches us
};

PollDesc::PollDesc(int fd) : desc_(reactor().io(), fd), fd_(fd) {}

PollDesc* PollDesc::open(int fd) {
  return new PollDesc(fd);
}

// Caller holds lock_. The handler keeps the PollDesc alive until it runs.
void PollDesc::arm(Dir dir) {
  slots_[static_cast<int>(dir)].armed = true;
  refs_.fetch_add(1, relaxed);
  reactor().armed(1);
  auto type = dir == Dir::read ? asio::posix::descriptor_base::wait_read
                               : asio::posix::descriptor_base::wait_write;
  desc_.async_wait(type, [this, dir](const std::error_code& ec) {
    on_ready(dir, ec);
    release();
  });
}

// Caller holds lock_. Returns the slot's waiter, if any, with its outcome set.
Fiber* PollDesc::take_waiter(Slot& s, std::error_code outcome) noexcept {
  Fiber* w = s.waiter;
  if (!w) return nullptr;
  *s.result = outcome;
  s.waiter = nullptr;
  s.result = nullptr;
  return w;
}

void PollDesc::on_ready(Dir dir, const std::error_code& ec) noexcept {
  Slot& s = slots_[static_cast<int>(dir)];
  lock_.lock();
  s.armed = false;
  // An aborted wait without close() (another direction's cancel) is not
  // readiness, but waking the waiter to retry its syscall is harmless.
  Fiber* w =
      take_waiter(s, closed_.load(relaxed) ? make_error_code(Errc::closed) : std::error_code{});
  if (!w && !ec) s.ready = true;
  lock_.unlock();
  reactor().armed(-1);
  if (w) t_ready->push(w);
}

void PollDesc::on_deadline(Timer* t) noexcept {
  auto* d = static_cast<Deadline*>(t);
  PollDesc* pd = d->pd;
  Slot& s = pd->slots_[static_cast<int>(d->dir)];
  pd->lock_.lock();
  Fiber* w = s.waiter == d->fiber ? pd->take_waiter(s, make_error_code(Errc::timeout)) : nullptr;
  pd->lock_.unlock();
  d->done.store(true, std::memory_order_release);
  if (w) ready(w);
}

std::error_code PollDesc::wait(Dir dir, std::int64_t deadline) {
  Slot& s = slots_[static_cast<int>(dir)];
  bool timed = deadline != spindle::detail::kNeverPoll;
  if (timed && deadline <= now_ns()) return Errc::timeout;
  lock_.lock();
  if (closed_.load(relaxed)) {
    lock_.unlock();
    return Errc::closed;
  }
  if (s.ready) {  // readiness came in since the caller's last try
    s.ready = false;
    lock_.unlock();
    return {};
  }
  if (s.waiter) {
    lock_.unlock();
    throw std::logic_error("spindle::net: two fibers waiting in the same direction on one socket");
  }
  if (!s.armed) arm(dir);
  std::error_code result;
  Deadline timer;
  timer.when = deadline;
  timer.fire = on_deadline;
  timer.pd = this;
  timer.dir = dir;
  timer.fiber = current_fiber();
  // Runs however the park ends, the shutdown's Unwind included: the slot
  // must not name a fiber that is no longer parked, and the timer may be
  // firing right now, so wait until it is done with `timer`. The waiter
  // holds a reference: once woken by close(), it may only run after its
  // owner is gone (close the listener, return).
  refs_.fetch_add(1, relaxed);
  struct Cleanup {
    PollDesc* pd;
    Slot& s;
    Deadline& timer;
    bool timed;
    ~Cleanup() {
      pd->lock_.lock();
      if (s.waiter == timer.fiber) pd->take_waiter(s, {});
      pd->lock_.unlock();
      if (timed && !stop_timer(&timer))
        while (!timer.done.load(std::memory_order_acquire)) std::this_thread::yield();
      pd->release();
    }
  } cleanup{this, s, timer, timed};
  park(dir == Dir::read ? WaitReason::io_read : WaitReason::io_write, [&](Fiber* self) {
    s.waiter = self;
    s.result = &result;
    if (timed) start_timer(&timer);
    lock_.unlock();
    return true;
  });
  return result;
}

// The fd itself stays open until the last reference goes (~PollDesc), so a
// fiber between its syscall and its wait never touches a reused fd number;
// shutdown() makes the peer see the close now.
void PollDesc::close() noexcept {
  lock_.lock();
  if (closed_.load(relaxed)) return lock_.unlock();
  closed_.store(true, relaxed);
  Fiber* r = take_waiter(slots_[0], make_error_code(Errc::closed));
  Fiber* w = take_waiter(slots_[1], make_error_code(Errc::closed));
  ::shutdown(fd_, SHUT_RDWR);
  std::error_code ignored;
  desc_.cancel(ignored);  // the armed waits complete and drop their references
  lock_.unlock();
  if (r) ready(r);
  if (w) ready(w);
}

void PollDesc::release() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

}  // namespace spindle::net::detail
