// Context: the tree of nodes behind spindle/context.hpp.
//
// Two kinds of node, as Go's cancelCtx/timerCtx and valueCtx:
//   - CancelNode: can be done. Owns the done() channel, the error, and the
//     list of DoneHooks to run when done. The background is a CancelNode
//     that nobody can cancel.
//   - a plain ContextNode: a with_value link; it is done when the nearest
//     CancelNode above it is (its `canceler`).
// A cancelable child is linked into its parent's canceler as one more
// DoneHook (ParentLink), so propagation, registration and removal are the
// on_done() machinery itself. Going done runs in this order, as in Go:
// set the error and close done() under the node's lock (so err() and done()
// agree), run the hooks one by one outside it (children cancel in turn),
// unlink from the parent, stop the deadline timer.
//
// Lifetimes. Handles own their node; a node owns its parent. A hook is owned
// by whoever registered it, so removal must wait while the canceller runs it
// (running_). A child node whose last handle goes away while its parent runs
// its ParentLink is mid-destruction: the link sees weak_from_this() expire
// and does nothing, and the destructor's removal waits for it. An armed
// deadline timer holds a reference to its node (armed_) so that the node
// outlives the timer's fire(); whoever disarms the timer drops it: fire()
// itself, or the cancel() whose stop_timer() succeeded.
#include "spindle/context.hpp"

#include <limits>
#include <string>
#include <thread>

#include "spindle/timer.hpp"
#include "spindle/waiter.hpp"

namespace spindle {
namespace detail {

namespace {
constexpr std::int64_t kNoDeadline = std::numeric_limits<std::int64_t>::max();
}

class CancelNode;

class ContextNode {
 public:
  ContextNode(std::shared_ptr<ContextNode> parent, CancelNode* canceler, std::int64_t deadline)
      : parent(std::move(parent)), canceler(canceler), deadline(deadline) {}
  virtual ~ContextNode() = default;
  ContextNode(const ContextNode&) = delete;
  ContextNode& operator=(const ContextNode&) = delete;

  const std::shared_ptr<ContextNode> parent;  // nullptr: the background
  // This node if it can be done by itself, else the nearest ancestor that
  // can (the background at worst); kept alive by `parent`.
  CancelNode* const canceler;
  const std::int64_t deadline;  // now_ns() units; kNoDeadline: none

  // with_value nodes only.
  const void* key = nullptr;
  std::shared_ptr<const void> value;
};

class CancelNode final : public ContextNode, public std::enable_shared_from_this<CancelNode> {
 public:
  // The background: never done.
  CancelNode() : ContextNode(nullptr, this, kNoDeadline), cancelable_(false) {}

  CancelNode(std::shared_ptr<ContextNode> parent, std::int64_t deadline)
      : ContextNode(std::move(parent), this, deadline), cancelable_(true) {}

  ~CancelNode() override {
    // Canceled nodes are unlinked already (or were unlinked by the parent,
    // possibly from inside the very link whose run is destroying us).
    if (err_ == ContextError{}) unlink_from_parent();
  }

  // Once owned by a shared_ptr: joins the parent's hooks. If the parent is
  // done already, that cancels this node at once.
  void link_to_parent() {
    CancelNode* up = parent->canceler;
    if (!up->cancelable_) return;
    link_.child = this;
    link_.run = &ParentLink::parent_done;
    linked_ = true;
    up->add(&link_);
  }

  // Arms the deadline timer unless the node is done already.
  void arm_deadline() {
    lock_.lock();
    if (err_ == ContextError{}) {
      armed_ = shared_from_this();
      timer_.node = this;
      timer_.when = deadline;
      timer_.fire = &DeadlineTimer::expired;
      // Under lock_, so that a cancel() either finds the timer armed (and
      // stops it) or came first (and we don't arm).
      start_timer(&timer_);
    }
    lock_.unlock();
  }

  // The caller holds a reference: the node may lose its last other one here.
  // noexcept: close() throws only if a user closed done(), which the header
  // forbids; that ends the process here rather than leaving lock_ held.
  void cancel(ContextError why, bool from_parent) noexcept {
    lock_.lock();
    if (err_ != ContextError{}) return lock_.unlock();
    err_ = why;
    done.close();  // under lock_: err() is set exactly when done() is closed
    lock_.unlock();
    run_hooks();
    if (!from_parent) unlink_from_parent();
    if (stop_timer(&timer_)) take_armed();  // never fires now: drop its reference
  }

  void add(DoneHook* h) {
    if (!cancelable_) return;  // the background is never done
    lock_.lock();
    if (err_ == ContextError{}) {
      hooks_.push(h);
      return lock_.unlock();
    }
    lock_.unlock();
    h->run(h);
  }

  bool remove(DoneHook* h) noexcept {
    if (!cancelable_) return false;  // add() never queued it: no lock to share
    lock_.lock();
    bool removed = h->queued;
    if (removed) hooks_.unlink(h);
    while (running_ == h) {  // cancel() is running it on another thread
      lock_.unlock();
      std::this_thread::yield();
      lock_.lock();
    }
    lock_.unlock();
    return removed;
  }

  std::error_code err() noexcept {
    // The background is never done, and every context derived without a
    // cancel shares it: answer without touching its lock.
    if (!cancelable_) return {};
    lock_.lock();
    ContextError e = err_;
    lock_.unlock();
    return e == ContextError{} ? std::error_code() : make_error_code(e);
  }

  Channel<Empty> done;

 private:
  struct ParentLink : DoneHook {
    CancelNode* child = nullptr;
    static void parent_done(DoneHook* h) noexcept {
      CancelNode* child = static_cast<ParentLink*>(h)->child;
      // Expired: the child is being destroyed and waits for us to return.
      if (auto self = child->weak_from_this().lock()) {
        std::error_code why = self->parent->canceler->err();
        self->cancel(static_cast<ContextError>(why.value()), /*from_parent=*/true);
      }
    }
  };

  struct DeadlineTimer : Timer {
    CancelNode* node = nullptr;
    static void expired(Timer* t) {
      // The reference arm_deadline() left for us; dropping it may free the
      // node and this timer with it, which fire() is allowed to do.
      std::shared_ptr<CancelNode> self = static_cast<DeadlineTimer*>(t)->node->take_armed();
      self->cancel(ContextError::deadline_exceeded, /*from_parent=*/false);
    }
  };

  void run_hooks() {
    lock_.lock();
    while (DoneHook* h = hooks_.pop()) {
      running_ = h;
      lock_.unlock();
      h->run(h);  // h may be gone after this: only its address is compared below
      lock_.lock();
      running_ = nullptr;
    }
    lock_.unlock();
  }

  void unlink_from_parent() noexcept {
    if (linked_) parent->canceler->remove(&link_);
  }

  std::shared_ptr<CancelNode> take_armed() noexcept {
    lock_.lock();
    std::shared_ptr<CancelNode> self = std::move(armed_);
    lock_.unlock();
    return self;
  }

  const bool cancelable_;  // false: the background
  bool linked_ = false;    // link_ was added to the parent; set once, before sharing
  ParentLink link_;        // this node in its parent canceler's hooks
  DeadlineTimer timer_;

  // Held for a few pointer writes, a channel close and a timer start; a
  // SpinLock, as in every sync type (waiter.hpp).
  SpinLock lock_;
  ContextError err_{};                 // guarded by lock_; {}: not done
  IntrusiveQueue<DoneHook> hooks_;     // guarded by lock_
  DoneHook* running_ = nullptr;        // guarded by lock_: the hook run_hooks() is running
  std::shared_ptr<CancelNode> armed_;  // guarded by lock_: set while timer_ is armed
};

void add_done_hook(ContextNode& ctx, DoneHook* h) {
  ctx.canceler->add(h);
}

bool remove_done_hook(ContextNode& ctx, DoneHook* h) noexcept {
  return ctx.canceler->remove(h);
}

const std::shared_ptr<ContextNode>& ContextAccess::node(const Context& ctx) noexcept {
  return ctx.node_;
}

CancelableContext ContextAccess::cancelable(const std::shared_ptr<ContextNode>& node) noexcept {
  return {Context(node), CancelFunc(node)};
}

Context ContextAccess::with_value(const Context& parent, const void* key,
                                  std::shared_ptr<const void> value) {
  const auto& up = parent.node_;
  auto node = std::make_shared<ContextNode>(up, up->canceler, up->deadline);
  node->key = key;
  node->value = std::move(value);
  return Context(std::move(node));
}

namespace {
std::shared_ptr<CancelNode> new_cancel_node(const Context& parent, std::int64_t deadline) {
  auto node = std::make_shared<CancelNode>(ContextAccess::node(parent), deadline);
  node->link_to_parent();
  return node;
}

class ContextCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "spindle.context"; }
  std::string message(int ev) const override {
    switch (static_cast<ContextError>(ev)) {
      case ContextError::canceled:
        return "context canceled";
      case ContextError::deadline_exceeded:
        return "context deadline exceeded";
    }
    return "unknown context error";
  }
  std::error_condition default_error_condition(int ev) const noexcept override {
    switch (static_cast<ContextError>(ev)) {
      case ContextError::canceled:
        return std::errc::operation_canceled;
      case ContextError::deadline_exceeded:
        return std::errc::timed_out;
    }
    return {ev, *this};
  }
};
}  // namespace

}  // namespace detail

using detail::CancelNode;
using detail::ContextAccess;

const std::error_category& context_category() noexcept {
  static const detail::ContextCategory category;
  return category;
}

Context::Context() {
  // Never destroyed: contexts in other statics may outlive any order.
  static const auto* background =
      new std::shared_ptr<detail::ContextNode>(std::make_shared<CancelNode>());
  node_ = *background;
}

Channel<Empty>& Context::done() const noexcept {
  return node_->canceler->done;
}

std::error_code Context::err() const noexcept {
  return node_->canceler->err();
}

std::optional<std::chrono::steady_clock::time_point> Context::deadline() const noexcept {
  if (node_->deadline == detail::kNoDeadline) return std::nullopt;
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(node_->deadline)));
}

const void* Context::find_value(const void* key) const noexcept {
  for (const detail::ContextNode* n = node_.get(); n; n = n->parent.get()) {
    if (n->key == key) return n->value.get();
  }
  return nullptr;
}

void CancelFunc::operator()() const {
  if (node_) static_cast<CancelNode*>(node_.get())->cancel(ContextError::canceled, false);
}

CancelableContext with_cancel(const Context& parent) {
  return ContextAccess::cancelable(
      detail::new_cancel_node(parent, ContextAccess::node(parent)->deadline));
}

CancelableContext with_deadline(const Context& parent,
                                std::chrono::steady_clock::time_point deadline) {
  std::int64_t when = to_ns(deadline);
  // The parent's deadline comes first: it will cancel this one in time.
  if (ContextAccess::node(parent)->deadline <= when) return with_cancel(parent);
  auto node = detail::new_cancel_node(parent, when);
  if (when <= now_ns())
    node->cancel(ContextError::deadline_exceeded, /*from_parent=*/false);
  else
    node->arm_deadline();
  return ContextAccess::cancelable(node);
}

}  // namespace spindle
