// The netpoller: Asio's epoll reactor behind the scheduler's Poller slot.
// See net/README.md, "The netpoller", for who polls and when.
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
// After io_context.hpp, which it needs first.
#include <asio/detail/reactor.hpp>
#include <asio/detail/scheduler.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>

#include "spindle/poller.hpp"

namespace spindle::net::detail {

// Drives the reactor itself (epoll_reactor::run, one epoll_wait per poll)
// instead of through the io_context, whose poll() ends with a second
// epoll_wait that is almost always empty and takes its scheduler's mutex
// per ready socket. The io_context only owns the reactor and runs what the
// reactor posts to it: the completions of edge ops that close() dequeued
// (run_posted).
class AsioPoller final : public spindle::detail::Poller {
 public:
  AsioPoller();
  ~AsioPoller() override;
  void poll(std::int64_t deadline, spindle::detail::ReadyList& ready) override;
  void interrupt() override;
  bool has_waiters() const override { return armed_.load(std::memory_order_relaxed) > 0; }

  asio::detail::reactor& reactor() { return reactor_; }
  // Counts the edge ops queued, so idle Ms know there is I/O to poll for.
  void armed(int delta) { armed_.fetch_add(delta, std::memory_order_relaxed); }
  // Runs the completions the reactor posted (edge ops dequeued by close()).
  void run_posted() { io_.poll(); }

 private:
  void complete_ready(asio::detail::op_queue<asio::detail::scheduler_operation>& ops);

  asio::io_context io_;
  // Keeps io_ from stopping when no completion is outstanding (a stopped
  // io_context's poll() runs nothing).
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::detail::scheduler& sched_;
  asio::detail::reactor& reactor_;
  // One thread at a time runs the reactor, from its epoll_wait until every
  // ready state it returned is dequeued: epoll_reactor::run links them into
  // the caller's queue through the states themselves. A non-blocking poll
  // that finds it taken returns at once (the holder hands out what is
  // ready); the one blocking poll (the scheduler's poller_busy) waits.
  std::mutex polling_;
  // Set by interrupt(), taken by the next blocking poll (see poll()): one
  // epoll_ctl per wake-up, and a wake-up whose edge another poll consumed
  // still keeps the blocking poll from blocking. acq_rel: what the
  // interrupter published before is seen by the poll that takes the mark.
  std::atomic<bool> interrupt_pending_{false};
  std::atomic<int> armed_{0};
};

// The running runtime's AsioPoller, installed on first use. Takes the
// runtime's lock: look it up once per socket, not per wait.
AsioPoller& poller();

// The ReadyList of the poll running on this thread, and the event mask of
// the edge being handled: valid inside a reactor op's perform() only (no
// fiber switch happens there).
spindle::detail::ReadyList& poll_ready_list() noexcept;
std::uint32_t edge_events() noexcept;

}  // namespace spindle::net::detail
