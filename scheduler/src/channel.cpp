// Channels and select: the type-erased core behind spindle/channel.hpp.
//
// The design is Go's (runtime/chan.go, runtime/select.go), reshaped so that
// there is one code path:
//
// Every operation is a select. Channel<T>::send is a select of one send
// case that may wait forever; try_send is the same that may not wait; a
// select with `otherwise` or a timeout only changes how long it may wait.
// A select runs in three passes:
//   1. Lock every channel involved, in address order (two selects over the
//      same channels then cannot deadlock), and poll the cases in a random
//      order: the first that can complete now does (fairness: of several
//      ready cases, each is chosen equally often). Done.
//   2. Otherwise link one ChanOp per case into its channel's wait queue and
//      park. The channels are unlocked in the park commit, once the fiber's
//      context is saved, so that whoever finds it queued may ready() it at
//      once (park.hpp). A plain thread unlocks them, then sleeps; its Waiter
//      remembers a wake that comes first.
//   3. Once woken, unlink the ops that did not complete.
// A lone operation does pass 1 itself, in ChannelBase::run_one: its lock
// order and poll order are trivial, so it only builds the engine when it
// has to wait, and hands it the channel still locked.
//
// Claiming. A parked select sits in several queues at once, and several
// parties may come for it: a sender on one channel, close() of another, the
// select's timer. The first to CAS its Parking::winner from kUnclaimed owns
// the completion; the others drop the op from their queue and move on to the
// next waiter. Exactly one party wakes the owner, exactly once. The claimer
// moves the value while it holds the channel's lock (the owner cannot leave
// before it is woken, so its op and storage are stable), unlocks, and only
// then wakes the owner: the woken party may free the channel (waiter.hpp).
//
// Why the park commit may still read the select's stack after unlocking one
// of its channels: a woken select must lock, in pass 3, every channel on
// which it has an op that did not complete, in the same address order in
// which the commit unlocks them. A claimer got in through a channel the
// commit has already unlocked (or is the timer, which completes no op), so
// every channel the commit still holds has a losing op on it, and pass 3
// waits for the commit at the first of them. The commit therefore reads the
// ops and lock order freely until its last unlock, and nothing after it
// (Go's selparkcommit; unlock_all() below). The timer is started in the
// commit too, before any unlock, for the same reason.
#include "spindle/channel.hpp"

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>

#include "spindle/park.hpp"
#include "spindle/runtime.hpp"

namespace spindle::detail {

namespace {
constexpr int kUnclaimed = -1;
constexpr int kTimedOut = -2;

[[noreturn]] void throw_send_on_closed() {
  throw ChannelClosed("spindle::Channel: send on closed channel");
}

// xorshift64, one per thread, for the poll order: a few cycles, and fair
// enough that four always-ready cases are each chosen a quarter of the time.
// Out of line so no fiber ever holds this thread-local's address across a
// switch (README: thread_local and migration).
[[gnu::noinline]] std::uint32_t fast_rand() noexcept {
  thread_local std::uint64_t state = 0;
  if (state == 0) {
    state = std::hash<std::thread::id>{}(std::this_thread::get_id()) ^
            static_cast<std::uint64_t>(now_ns()) ^ 0x9e3779b97f4a7c15;
    state |= 1;
  }
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<std::uint32_t>(state >> 32);
}

// Uniform in [0, n) by multiply-shift (Lemire), no division.
std::uint32_t fast_randn(std::uint32_t n) noexcept {
  return static_cast<std::uint32_t>((std::uint64_t{fast_rand()} * n) >> 32);
}
}  // namespace

// One blocked operation (a channel op, or a whole select): the waiter to wake
// and the claim that lets exactly one party complete it.
struct Parking {
  Waiter waiter;
  // kUnclaimed until a party completes the operation; then the index of the
  // op it completed, or kTimedOut. Relaxed: the CAS only decides who wins.
  // What the winner hands over is published by the channel's lock and by
  // wake(), which the owner waits for before it reads `winner`.
  std::atomic<int> winner{kUnclaimed};

  bool claim(int index) noexcept {
    int expected = kUnclaimed;
    return winner.compare_exchange_strong(expected, index, std::memory_order_relaxed);
  }
};

namespace {
// A select's deadline. fire() competes with the channels for the claim.
struct SelectTimer : Timer {
  SelectTimer(Parking& p, std::int64_t deadline) : parking(&p) {
    when = deadline;
    fire = [](Timer* t) {
      auto* self = static_cast<SelectTimer*>(t);
      Parking* parking = self->parking;
      if (parking->claim(kTimedOut)) return parking->waiter.wake();
      // Lost: the select is leaving through a channel and waits for this
      // store, our last touch, before its frame (and this timer) goes away.
      self->released.store(true, std::memory_order_release);
    };
  }

  // Makes sure fire() is done with this timer: removes it, or waits for a
  // fire() that lost the claim to finish (a few instructions).
  void disarm() noexcept {
    if (stop_timer(this)) return;
    while (!released.load(std::memory_order_acquire)) std::this_thread::yield();
  }

  Parking* parking;
  std::atomic<bool> released{false};  // see fire()
};

// Pops waiting ops until one whose owner it can claim. An op whose select
// was completed by another party meanwhile is just dropped from the queue;
// its owner's pass 3 finds it unlinked.
ChanOp* claim(WaitQueue& q) noexcept {
  while (ChanOp* op = q.pop()) {
    if (op->parking->claim(op->index)) return op;
  }
  return nullptr;
}

void wake(ChanOp* op) noexcept {
  op->parking->waiter.wake();
}
}  // namespace

// ---------------------------------------------------------------------------
// ChannelBase

namespace {
std::byte* allocate_ring(std::size_t capacity, const ElemOps& ops) {
  if (capacity == 0) return nullptr;
  if (capacity > std::numeric_limits<std::size_t>::max() / ops.size)
    throw std::length_error("spindle::Channel: capacity too large");
  const std::size_t bytes = capacity * ops.size;
  return static_cast<std::byte*>(::operator new(bytes, std::align_val_t(ops.align)));
}
}  // namespace

ChannelBase::ChannelBase(std::size_t capacity, const ElemOps& ops)
    : ops_(ops), cap_(capacity), buf_(allocate_ring(capacity, ops)) {}

ChannelBase::~ChannelBase() {
  // Ops still parked here are stranded (see the header): detach them so that
  // their unwinding at shutdown skips this channel. Under the lock, which
  // their park commits released.
  lock_.lock();
  for (WaitQueue* q : {&sendq_, &recvq_}) {
    while (ChanOp* op = q->pop()) op->chan = nullptr;
  }
  lock_.unlock();
  for (std::size_t i = 0, at = head_; i < count_; ++i, at = at + 1 == cap_ ? 0 : at + 1)
    ops_.destroy(slot(at));
  if (buf_) ::operator delete(buf_, std::align_val_t(ops_.align));
}

std::size_t ChannelBase::len() const noexcept {
  lock_.lock();
  std::size_t n = count_;
  lock_.unlock();
  return n;
}

void ChannelBase::close() {
  lock_.lock();
  if (closed_) {
    lock_.unlock();
    throw ChannelClosed("spindle::Channel: close of closed channel");
  }
  closed_ = true;
  // Complete every parked op: receivers get nothing, senders will throw.
  // Chain them through `next`, free once they are out of the queue.
  ChanOp* woken = nullptr;
  for (WaitQueue* q : {&recvq_, &sendq_}) {
    while (ChanOp* op = claim(*q)) {
      op->closed = true;
      op->next = woken;
      woken = op;
    }
  }
  lock_.unlock();
  while (woken) {
    ChanOp* next = woken->next;  // before wake(): the op may vanish after it
    wake(woken);
    woken = next;
  }
}

ChannelBase::Outcome ChannelBase::send_locked(void* src, ChanOp** woken) noexcept {
  if (closed_) return Outcome::closed;
  if (ChanOp* receiver = claim(recvq_)) {  // straight into its storage
    ops_.deliver(receiver->elem, src);
    *woken = receiver;
    return Outcome::done;
  }
  if (count_ == cap_) return Outcome::would_block;
  std::size_t tail = head_ + count_;
  ops_.put(slot(tail < cap_ ? tail : tail - cap_), src);
  ++count_;
  return Outcome::done;
}

ChannelBase::Outcome ChannelBase::recv_locked(void* dst, ChanOp** woken) noexcept {
  if (ChanOp* sender = claim(sendq_)) {
    if (cap_ == 0) {
      ops_.deliver(dst, sender->elem);
    } else {
      // A sender waits only on a full buffer: take the oldest value and put
      // the sender's in the slot it frees, which is now the tail.
      ops_.take(dst, slot(head_));
      ops_.put(slot(head_), sender->elem);
      head_ = head_ + 1 == cap_ ? 0 : head_ + 1;
    }
    *woken = sender;
    return Outcome::done;
  }
  if (count_ > 0) {
    ops_.take(dst, slot(head_));
    head_ = head_ + 1 == cap_ ? 0 : head_ + 1;
    --count_;
    return Outcome::done;
  }
  return closed_ ? Outcome::closed : Outcome::would_block;
}

// ---------------------------------------------------------------------------
// The select engine: one select_ops() call.

class SelectEngine {
 public:
  SelectEngine(ChanOp* ops, int n, std::uint16_t* order)
      : ops_(ops), n_(n), poll_(order), lockorder_(order + n) {
    shuffle_poll_order();
    sort_lock_order();
  }

  using Outcome = ChannelBase::Outcome;

  int run(std::int64_t deadline) {
    // A blocking channel operation is a scheduling point.
    if (deadline != kNoWait) preempt_point();
    lock_all();
    if (int i = complete_ready(); i >= 0) return i;
    return block_locked(deadline);
  }

  // With every channel locked and no op ready: gives up at once (unlocking
  // them), or parks until an op completes or `deadline` passes.
  int block_locked(std::int64_t deadline) {
    if (deadline == kNoWait || (deadline != kForever && deadline <= now_ns())) {
      unlock_all();
      return -1;
    }
    Parking parking;
    enqueue(parking);
    if (deadline == kForever) return wait(parking, nullptr);
    SelectTimer timer(parking, deadline);
    return wait(parking, &timer);
  }

  // After an op completed without waiting, its channels unlocked: wakes the
  // party it completed, and makes a send on a closed channel throw.
  static void finish(Outcome outcome, bool send, ChanOp* woken) {
    if (woken) wake(woken);
    if (outcome == Outcome::closed && send) throw_send_on_closed();
  }

 private:
  // Fisher-Yates, inside out (as Go's pollorder).
  void shuffle_poll_order() noexcept {
    if (n_ > 0) poll_[0] = 0;
    for (int i = 1; i < n_; ++i) {
      auto j = fast_randn(static_cast<std::uint32_t>(i + 1));
      poll_[i] = poll_[j];
      poll_[j] = static_cast<std::uint16_t>(i);
    }
  }

  // Channels in address order; nil ones (nullptr) first, skipped.
  void sort_lock_order() noexcept {
    for (int i = 0; i < n_; ++i) lockorder_[i] = static_cast<std::uint16_t>(i);
    std::sort(lockorder_, lockorder_ + n_, [this](std::uint16_t a, std::uint16_t b) {
      return std::less<ChannelBase*>{}(ops_[a].chan, ops_[b].chan);
    });
  }

  ChannelBase* chan_at(int k) const noexcept { return ops_[lockorder_[k]].chan; }

  void lock_all() noexcept {
    ChannelBase* held = nullptr;
    for (int k = 0; k < n_; ++k) {
      ChannelBase* c = chan_at(k);
      if (c == held) continue;
      c->lock_.lock();
      held = c;
    }
  }

  // Unlocks each channel only once past all of its ops, and reads nothing
  // after the last unlock: in the park commit, that is the moment the
  // select may complete and its frame go away (see the top of this file).
  void unlock_all() const noexcept {
    ChannelBase* held = nullptr;
    for (int k = 0; k < n_; ++k) {
      ChannelBase* c = chan_at(k);
      if (c == held) continue;
      if (held) held->lock_.unlock();
      held = c;
    }
    if (held) held->lock_.unlock();
  }

  // Pass 1: completes the first op in poll order that can complete now and
  // returns its index, with every channel unlocked; -1 if none can, with
  // every channel still locked.
  int complete_ready() {
    for (int k = 0; k < n_; ++k) {
      int i = poll_[k];
      ChanOp& op = ops_[i];
      if (!op.chan) continue;
      ChanOp* woken = nullptr;
      Outcome outcome = op.chan->try_locked(op.elem, op.send, &woken);
      if (outcome == Outcome::would_block) continue;
      unlock_all();
      finish(outcome, op.send, woken);
      return i;
    }
    return -1;
  }

  // Pass 2: link every op into its channel's queue (all channels locked).
  void enqueue(Parking& parking) noexcept {
    for (int i = 0; i < n_; ++i) {
      ChanOp& op = ops_[i];
      if (!op.chan) continue;
      op.parking = &parking;
      op.index = i;
      op.closed = false;
      (op.send ? op.chan->sendq_ : op.chan->recvq_).push(&op);
    }
  }

  // Parks (or blocks the thread) until claimed, then finishes: pass 3 and
  // the result.
  int wait(Parking& parking, SelectTimer* timer) {
    try {
      block(parking, timer);
    } catch (...) {
      // Unwind at shutdown: the timer heaps are cleared, so no fire() is
      // running or will run; just leave the queues.
      leave(parking.winner.load(std::memory_order_relaxed));
      throw;
    }
    int winner = parking.winner.load(std::memory_order_relaxed);
    if (timer && winner != kTimedOut) timer->disarm();
    leave(winner);
    if (winner == kTimedOut) return -1;
    if (ops_[winner].send && ops_[winner].closed) throw_send_on_closed();
    return winner;
  }

  void block(Parking& parking, SelectTimer* timer) {
    // A lone channel operation, or a select (one with a timeout included).
    WaitReason reason = n_ != 1 || timer ? WaitReason::select
                        : ops_[0].send   ? WaitReason::chan_send
                                         : WaitReason::chan_recv;
    if (parking.waiter.fiber) {
      parked_timer_ = timer;
      park(reason, commit_park, this);
      return;
    }
    if (timer) start_timer(timer);
    // Waiter::wait releases a lock once the thread is about to sleep; ours
    // are already released (a wake before the sleep is remembered), so it
    // gets one of its own.
    SpinLock gate;
    gate.lock();
    unlock_all();
    parking.waiter.wait(gate, reason);
  }

  // The park commit. Its state is read from the engine, never from a
  // closure: a closure would be a temporary of block(), dead as soon as the
  // fiber resumes, and the timer may resume it (on another thread) before
  // the unlocks. The engine lives until the select's pass 3 is done, which
  // waits for the commit's last unlock (see the top of this file).
  static bool commit_park(Fiber*, void* arg) {
    auto* self = static_cast<SelectEngine*>(arg);
    if (self->parked_timer_) start_timer(self->parked_timer_);
    self->unlock_all();
    return true;
  }

  // Pass 3: unlinks the ops that did not complete, in lock order (see the
  // top of this file). The winner was unlinked by whoever claimed it, so a
  // one-op select that completed takes no lock here.
  void leave(int winner) noexcept {
    for (int k = 0; k < n_; ++k) {
      int i = lockorder_[k];
      ChanOp& op = ops_[i];
      if (i == winner || !op.chan) continue;
      op.chan->lock_.lock();
      if (op.queued) (op.send ? op.chan->sendq_ : op.chan->recvq_).unlink(&op);
      op.chan->lock_.unlock();
    }
  }

  ChanOp* const ops_;
  const int n_;
  std::uint16_t* const poll_;
  std::uint16_t* const lockorder_;
  SelectTimer* parked_timer_ = nullptr;  // for commit_park
};

int select_ops(ChanOp* ops, int n, std::uint16_t* order, std::int64_t deadline) {
  return SelectEngine(ops, n, order).run(deadline);
}

// Pass 1 of a one-op select without the engine's set-up (poll order, lock
// order), which only a wait needs: the common case of a buffered channel
// with room, or a partner already parked, is one lock, one move, one unlock.
int ChannelBase::run_one(void* elem, bool send, std::int64_t deadline) {
  if (deadline != kNoWait) preempt_point();  // as SelectEngine::run
  lock_.lock();
  ChanOp* woken = nullptr;
  const Outcome outcome = try_locked(elem, send, &woken);
  if (outcome == Outcome::would_block) {
    ChanOp op;
    op.chan = this;
    op.elem = elem;
    op.send = send;
    std::uint16_t order[2];
    return SelectEngine(&op, 1, order).block_locked(deadline);
  }
  lock_.unlock();
  SelectEngine::finish(outcome, send, woken);
  return 0;
}

}  // namespace spindle::detail
