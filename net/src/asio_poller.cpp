#include "asio_poller.hpp"

#include <memory>

#include "asio_access.hpp"
#include "poll_desc.hpp"
#include "spindle/timer.hpp"

namespace spindle::net::detail {
namespace {

// The poll running on this thread: its ReadyList, and the mask of the
// edge being handled. Edge ops run only inside poll(), on the polling
// thread, and no fiber switch happens there, so thread_locals are right
// here (see fiber_local.hpp for when they are not).
thread_local spindle::detail::ReadyList* t_ready = nullptr;
thread_local std::uint32_t t_edge_events = 0;

std::unique_ptr<spindle::detail::Poller> make_poller() {
  return std::make_unique<AsioPoller>();
}

// epoll_reactor::run's timeout: 0 polls, -1 blocks; otherwise microseconds,
// which it rounds up to whole milliseconds, so the poll never ends early.
long timeout_usec(std::int64_t deadline) {
  if (deadline == 0) return 0;
  if (deadline == spindle::detail::kNeverPoll) return -1;
  std::int64_t left = deadline - now_ns();
  return left <= 0 ? 0 : static_cast<long>((left + 999) / 1000);
}

}  // namespace

AsioPoller& poller() {
  return static_cast<AsioPoller&>(spindle::detail::install_poller(make_poller));
}

spindle::detail::ReadyList& poll_ready_list() noexcept {
  return *t_ready;
}

std::uint32_t edge_events() noexcept {
  return t_edge_events;
}

// The reactor is not made the io_context's task (no init_task), so io_'s
// poll() never waits in epoll: only poll() below does.
AsioPoller::AsioPoller()
    : work_(asio::make_work_guard(io_)),
      sched_(asio::use_service<asio::detail::scheduler>(io_)),
      reactor_(asio::use_service<asio::detail::reactor>(io_)) {}

// Runs the completions still posted, so every PollDesc reference they hold
// is dropped. Edge ops still queued when io_ is destroyed are destroyed
// with it (Edge::aborted, owner == nullptr): their sockets were left open.
AsioPoller::~AsioPoller() {
  work_.reset();
  io_.poll();
}

// A blocking poll does not block if an interrupt() came since the last
// blocking poll returned: its wake-up edge may have gone to a non-blocking
// poll (so a wake-up is never lost, whoever consumed the edge). It clears
// the mark again once it returns, having been woken by it or not.
void AsioPoller::poll(std::int64_t deadline, spindle::detail::ReadyList& ready) {
  std::unique_lock lock(polling_, std::defer_lock);
  bool blocking = deadline != 0;
  if (blocking) {
    lock.lock();
    if (interrupt_pending_.exchange(false, std::memory_order_acq_rel)) deadline = 0;
  } else if (!lock.try_lock()) {
    return;
  }
  asio::detail::op_queue<asio::detail::scheduler_operation> ops;
  reactor_.run(timeout_usec(deadline), ops);
  if (blocking) interrupt_pending_.exchange(false, std::memory_order_acq_rel);
  t_ready = &ready;
  complete_ready(ops);
  t_ready = nullptr;
  lock.unlock();
  PollDesc::run_edge_notifies();
}

// Completes each ready descriptor state as Asio's scheduler would: its
// perform_io runs the queued edge ops' perform() under the descriptor's
// mutex. perform_io counts scheduler "work" on this thread's Asio call
// stack entry, so one must exist; nothing here counts work, so what it
// counts is dropped.
void AsioPoller::complete_ready(asio::detail::op_queue<asio::detail::scheduler_operation>& ops) {
  if (ops.empty()) return;
  thread_local asio::detail::scheduler_thread_info info;
  using CallStack =
      asio::detail::call_stack<asio::detail::thread_context, asio::detail::thread_info_base>;
  CallStack::context in_scheduler(&sched_, info);
  const asio::error_code ok;
  while (asio::detail::scheduler_operation* op = ops.front()) {
    ops.pop();
    t_edge_events = ready_events(*op);
    op->complete(&sched_, ok, t_edge_events);
  }
  info.private_outstanding_work = 0;
}

// Asio's interrupt re-arms its always-readable eventfd: one epoll_ctl, and
// an edge that ends the current or next epoll_wait.
void AsioPoller::interrupt() {
  if (interrupt_pending_.exchange(true, std::memory_order_acq_rel)) return;
  reactor_.interrupt();
}

}  // namespace spindle::net::detail
