// Channels and select, as Go's: typed FIFO pipes between fibers, and a
// statement that waits on several of them at once.
//
//   spindle::Channel<int> ch;             // unbuffered: send waits for a receiver
//   spindle::Channel<Job> jobs(1024);     // buffered: send waits only when full
//   spindle::go([&] { ch.send(42); ch.close(); });
//   for (auto v : ch) use(v);             // receives until closed and drained
//
// Every wait parks the calling fiber, not its thread; from a plain OS thread
// the same calls block the thread, so fibers and threads can share a channel.
// Each blocking operation is a scheduling point (it honours preemption).
//
// Semantics (Go's; "blocks" means parks the fiber or blocks the thread):
//   send(v)    Blocks until a receiver takes v (unbuffered) or there is room
//              in the buffer. Throws ChannelClosed if the channel is closed,
//              or is closed while the sender waits (Go panics).
//   recv()     Blocks until a value is available. Returns std::nullopt once
//              the channel is closed and its buffer drained.
//   close()    Wakes every waiting receiver (they get std::nullopt) and every
//              waiting sender (they throw ChannelClosed). Values already in
//              the buffer are still delivered. Closing twice throws.
//   try_send / try_recv   The same without blocking; see each.
// Values are delivered in send order: a value goes straight from the sender
// into the waiting receiver's storage, or through the buffer; a sender
// waiting on a full buffer moves its value to the buffer's tail the moment a
// receiver frees a slot, so FIFO holds for senders that waited too.
//
// Lifetime: a channel is shared by reference (hold it in a scope that outlives
// its users, or in a std::shared_ptr); it is neither copyable nor movable. A
// channel destroyed while fibers are parked on it leaves them parked forever,
// as in Go; at shutdown they unwind without touching it.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "spindle/timer.hpp"
#include "spindle/waiter.hpp"

namespace spindle {

// The payload of a channel used only as a signal (Go's struct{}).
struct Empty {};

// A send on, or a second close of, a closed channel: a programming error.
class ChannelClosed : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

template <class T>
class Channel;

namespace detail {

class ChannelBase;
struct Parking;  // a blocked operation (channel.cpp)

// How the type-erased core moves one channel's element type around. `src`
// is always a T to move from; a receiver's `dst` is an empty std::optional<T>;
// a buffer `slot` is raw storage for one T.
struct ElemOps {
  void (*deliver)(void* dst, void* src) noexcept;  // *dst = move(*src)
  void (*put)(void* slot, void* src) noexcept;     // new (slot) T(move(*src))
  void (*take)(void* dst, void* slot) noexcept;    // *dst = move(*slot); destroy slot
  void (*destroy)(void* slot) noexcept;
  std::size_t size, align;
};

template <class T>
struct ElemOpsOf {
  static T& as(void* p) noexcept { return *std::launder(static_cast<T*>(p)); }
  static void deliver(void* dst, void* src) noexcept {
    static_cast<std::optional<T>*>(dst)->emplace(std::move(as(src)));
  }
  static void put(void* slot, void* src) noexcept { ::new (slot) T(std::move(as(src))); }
  static void take(void* dst, void* slot) noexcept {
    deliver(dst, slot);
    destroy(slot);
  }
  static void destroy(void* slot) noexcept { as(slot).~T(); }
  static constexpr ElemOps value{deliver, put, take, destroy, sizeof(T), alignof(T)};
};

// One send or receive: a whole channel operation, or one case of a select.
// While its owner waits, it is the node in the channel's wait queue (Go's
// sudog); it lives on the owner's stack.
struct ChanOp {
  ChannelBase* chan = nullptr;  // nullptr: never ready (Go's nil channel)
  void* elem = nullptr;         // send: the T to move from; recv: the optional to fill
  bool send = false;

  // Guarded by chan's lock while queued (the select engine sets them before
  // linking the op in, under that lock).
  ChanOp* prev = nullptr;
  ChanOp* next = nullptr;
  Parking* parking = nullptr;
  int index = 0;        // which op of its select
  bool queued = false;  // linked in chan's sendq or recvq
  // Set by close() when it completes this op: a send then throws. (A
  // receive just keeps its optional empty.) Read by the owner once woken.
  bool closed = false;
};

// A FIFO of intrusive nodes (members prev, next, queued), guarded by its
// owner's lock: a channel's wait queues, a context's done callbacks.
template <class Node>
struct IntrusiveQueue {
  Node* head = nullptr;
  Node* tail = nullptr;

  void push(Node* n) noexcept {
    n->prev = tail;
    n->next = nullptr;
    (tail ? tail->next : head) = n;
    tail = n;
    n->queued = true;
  }
  Node* pop() noexcept {
    Node* n = head;
    if (n) unlink(n);
    return n;
  }
  void unlink(Node* n) noexcept {
    (n->prev ? n->prev->next : head) = n->next;
    (n->next ? n->next->prev : tail) = n->prev;
    n->prev = n->next = nullptr;
    n->queued = false;
  }
};
using WaitQueue = IntrusiveQueue<ChanOp>;

// `deadline` of select_ops(): don't wait, or wait without a timer.
constexpr std::int64_t kNoWait = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kForever = std::numeric_limits<std::int64_t>::max();

// The select engine, which every channel operation goes through (a send is
// a one-case select). Completes exactly one of ops[0..n) and returns its
// index, or completes none and returns -1 when `deadline` (now_ns() units)
// passes. `order` is scratch space for 2n indices. Throws ChannelClosed if
// the op it completes is a send on a closed channel.
int select_ops(ChanOp* ops, int n, std::uint16_t* order, std::int64_t deadline);

// The part of a channel that does not depend on its element type: the lock,
// the buffer ring and the wait queues. Channel<T> adds the typed API.
class ChannelBase {
 public:
  ChannelBase(const ChannelBase&) = delete;
  ChannelBase& operator=(const ChannelBase&) = delete;

  // See the header comment. Throws ChannelClosed if already closed.
  void close();
  // Values in the buffer now (a snapshot, as Go's len(ch)).
  std::size_t len() const noexcept;
  std::size_t capacity() const noexcept { return cap_; }

 protected:
  ChannelBase(std::size_t capacity, const ElemOps& ops);
  ~ChannelBase();

  // One operation on this channel alone: select_ops() of one op, with a
  // fast path that locks this channel only and builds no select when the
  // op completes at once. Returns 0, or -1 if it did not complete by
  // `deadline`.
  int run_one(void* elem, bool send, std::int64_t deadline);

 private:
  friend class SelectEngine;  // channel.cpp

  enum class Outcome { done, closed, would_block };
  // With lock_ held: complete the op now if possible. A parked party that
  // the op completes is claimed and returned in *woken, to be woken once
  // lock_ is released.
  Outcome try_locked(void* elem, bool send, ChanOp** woken) noexcept {
    return send ? send_locked(elem, woken) : recv_locked(elem, woken);
  }
  Outcome send_locked(void* src, ChanOp** woken) noexcept;
  Outcome recv_locked(void* dst, ChanOp** woken) noexcept;
  void* slot(std::size_t i) const noexcept { return buf_ + i * ops_.size; }

  // Taken in address order by select (see SelectLocks), so never more than
  // a few pointer writes and one element move long.
  mutable SpinLock lock_;
  const ElemOps& ops_;
  const std::size_t cap_;
  std::byte* const buf_;   // cap_ slots; nullptr when unbuffered
  std::size_t head_ = 0;   // guarded by lock_: the oldest buffered value
  std::size_t count_ = 0;  // guarded by lock_
  bool closed_ = false;    // guarded by lock_
  WaitQueue sendq_;        // guarded by lock_: blocked senders
  WaitQueue recvq_;        // guarded by lock_: blocked receivers
};

}  // namespace detail

// A typed channel; see the header comment. T must be nothrow-movable (its
// values are moved while the channel's internal spin lock is held).
template <class T>
class Channel : public detail::ChannelBase {
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "spindle::Channel<T> needs a T that moves and destroys without throwing");

 public:
  // capacity 0: unbuffered, every send meets a receiver.
  explicit Channel(std::size_t capacity = 0) : ChannelBase(capacity, detail::ElemOpsOf<T>::value) {}

  void send(T value) { run_one(&value, true, detail::kForever); }

  std::optional<T> recv() {
    std::optional<T> out;
    run_one(&out, false, detail::kForever);
    return out;
  }

  // Sends only if that needs no wait (a receiver is parked, or the buffer has
  // room). Returns false and leaves `value` alone otherwise. Throws
  // ChannelClosed if the channel is closed.
  bool try_send(T&& value) { return run_one(&value, true, detail::kNoWait) == 0; }
  bool try_send(const T& value) requires std::is_copy_constructible_v<T> {
    T copy(value);
    return try_send(std::move(copy));
  }

  // Receives only if that needs no wait. Returns false if nothing is
  // available; true if it completed: `out` then holds the value, or
  // std::nullopt if the channel is closed and drained.
  bool try_recv(std::optional<T>& out) {
    out.reset();
    return run_one(&out, false, detail::kNoWait) == 0;
  }

  // `for (auto v : ch)` receives until the channel is closed and drained.
  // Each value is moved out to the loop variable, so move-only T works.
  class Iterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    explicit Iterator(Channel* ch) : ch_(ch), cur_(ch->recv()) {}
    T&& operator*() { return std::move(*cur_); }
    Iterator& operator++() {
      cur_ = ch_->recv();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const { return !cur_; }

   private:
    Channel* ch_;
    std::optional<T> cur_;
  };
  Iterator begin() { return Iterator(this); }
  std::default_sentinel_t end() { return {}; }
};

// ---------------------------------------------------------------------------
// select
//
// Waits until one of several channel operations can proceed, performs that
// one only, then runs its callback:
//
//   int chosen = spindle::select(
//       spindle::on_recv(jobs, [&](std::optional<Job> j) { ... }),  // nullopt: closed
//       spindle::on_send(results, r, [&] { ... }),
//       spindle::on_recv(ctx.done(), [&] { ... }),  // a callback may ignore the value
//       spindle::on_timeout(10ms, [&] { ... }));
//
// Cases:
//   on_recv(ch, fn)          receive; fn(std::optional<T>) or fn()
//   on_send(ch, value, fn)   send value; fn() (fn optional). The value is
//                            moved into the channel only if this case is chosen.
//   on_timeout(d, fn)        none of the others completed within d
//   on_deadline(t, fn)       none of the others completed by t
//   otherwise(fn)            nothing is ready now: don't wait (Go's default)
// A channel may be given as a pointer; nullptr is never ready (Go's nil
// channel: a way to disable a case). At most one of on_timeout, on_deadline
// and otherwise.
//
// Blocks while no case is ready (unless otherwise or a timeout is given;
// without any ready-able case it blocks forever, as `select {}`). When
// several are ready, picks one uniformly at random, so none starves. Exactly
// one case completes: the others leave their channels untouched. Returns the
// chosen case's position in the argument list, after its callback returned.
// Throws ChannelClosed if the chosen case is a send on a closed channel (a
// send case is ready once its channel is closed, as in Go). Callbacks run on
// the calling fiber after every channel was released; what they throw
// propagates. Deadlines and timeouts need a running runtime.

namespace detail {

template <class T, class F>
struct RecvCase {
  ChannelBase* chan;
  F fn;
  std::optional<T> slot;
  void bind(ChanOp& op) {
    op.chan = chan;
    op.elem = &slot;
  }
  void complete() {
    if constexpr (std::is_invocable_v<F&, std::optional<T>>)
      std::invoke(fn, std::move(slot));
    else
      std::invoke(fn);
  }
};

template <class T, class F>
struct SendCase {
  ChannelBase* chan;
  T value;
  F fn;
  void bind(ChanOp& op) {
    op.chan = chan;
    op.elem = &value;
    op.send = true;
  }
  void complete() { std::invoke(fn); }
};

template <class F>
struct TimeoutCase {
  std::int64_t deadline;
  F fn;
  void complete() { std::invoke(fn); }
};

template <class F>
struct DefaultCase {
  F fn;
  void complete() { std::invoke(fn); }
};

struct NoCallback {
  void operator()() const noexcept {}
};

template <class C>
constexpr bool is_chan_case = requires(C c, ChanOp op) {
  c.bind(op);
};
template <class C>
constexpr bool is_timeout_case = false;
template <class F>
constexpr bool is_timeout_case<TimeoutCase<F>> = true;
template <class C>
constexpr bool is_default_case = false;
template <class F>
constexpr bool is_default_case<DefaultCase<F>> = true;

template <class... Cases, std::size_t... I>
int select(std::index_sequence<I...>, Cases&... cases) {
  constexpr int kChans = (0 + ... + is_chan_case<Cases>);
  constexpr int kTimeouts = (0 + ... + is_timeout_case<Cases>);
  constexpr int kDefaults = (0 + ... + is_default_case<Cases>);
  static_assert(kTimeouts + kDefaults <= 1,
                "spindle::select: at most one of on_timeout, on_deadline and otherwise");
  static_assert(kChans < 1 << 15, "spindle::select: too many cases");

  std::array<ChanOp, kChans> ops{};
  std::array<int, kChans> arg_of{};  // op index -> argument index
  std::array<std::uint16_t, 2 * kChans> order;
  std::int64_t deadline = kDefaults ? kNoWait : kForever;
  int special = -1;  // the argument index of the timeout or default case
  int k = 0;
  auto collect = [&](auto& c, int arg) {
    using C = std::remove_reference_t<decltype(c)>;
    if constexpr (is_chan_case<C>) {
      c.bind(ops[k]);
      arg_of[k++] = arg;
    } else {
      if constexpr (is_timeout_case<C>) deadline = c.deadline;
      special = arg;
    }
  };
  (collect(cases, static_cast<int>(I)), ...);

  int done = select_ops(ops.data(), kChans, order.data(), deadline);
  int chosen = done >= 0 ? arg_of[done] : special;
  ((static_cast<int>(I) == chosen ? cases.complete() : void()), ...);
  return chosen;
}

}  // namespace detail

template <class... Cases>
int select(Cases&&... cases) {
  return detail::select(std::index_sequence_for<Cases...>{}, cases...);
}

template <class T, class F = detail::NoCallback>
detail::RecvCase<T, std::decay_t<F>> on_recv(Channel<T>* ch, F&& fn = {}) {
  return {ch, std::forward<F>(fn), std::nullopt};
}
template <class T, class F = detail::NoCallback>
detail::RecvCase<T, std::decay_t<F>> on_recv(Channel<T>& ch, F&& fn = {}) {
  return on_recv(&ch, std::forward<F>(fn));
}

template <class T, class U, class F = detail::NoCallback>
detail::SendCase<T, std::decay_t<F>> on_send(Channel<T>* ch, U&& value, F&& fn = {}) {
  return {ch, T(std::forward<U>(value)), std::forward<F>(fn)};
}
template <class T, class U, class F = detail::NoCallback>
detail::SendCase<T, std::decay_t<F>> on_send(Channel<T>& ch, U&& value, F&& fn = {}) {
  return on_send(&ch, std::forward<U>(value), std::forward<F>(fn));
}

template <class F = detail::NoCallback>
detail::TimeoutCase<std::decay_t<F>> on_deadline(std::chrono::steady_clock::time_point t,
                                                 F&& fn = {}) {
  return {to_ns(t), std::forward<F>(fn)};
}
template <class Rep, class Period, class F = detail::NoCallback>
detail::TimeoutCase<std::decay_t<F>> on_timeout(std::chrono::duration<Rep, Period> d, F&& fn = {}) {
  return {now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(),
          std::forward<F>(fn)};
}

template <class F = detail::NoCallback>
detail::DefaultCase<std::decay_t<F>> otherwise(F&& fn = {}) {
  return {std::forward<F>(fn)};
}

}  // namespace spindle
