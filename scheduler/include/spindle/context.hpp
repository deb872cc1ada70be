// Context, as Go's context.Context: a cancellation signal, a deadline and
// request-scoped values, handed down a call tree and across fibers.
//
//   auto [ctx, cancel] = spindle::with_timeout(parent, 100ms);
//   spindle::go([ctx] { serve(ctx); });
//   spindle::select(spindle::on_recv(replies, [&](auto r) { ... }),
//                   spindle::on_recv(ctx.done(), [&] { fail(ctx.err()); }));
//   cancel();  // always, once the work is done (Go's `defer cancel()`)
//
// Contexts form a tree: with_cancel, with_deadline, with_timeout and
// with_value derive a child from a parent. A context is done when it is
// canceled, its deadline passes, or its parent is done; being done
// propagates to every descendant, never upwards. A Context is a cheap shared
// handle (one std::shared_ptr): copy it freely and use it from any fiber or
// plain thread. Deadlines need a running runtime (they are runtime timers).
//
// Resources: a derived context is linked into its parent until it is done
// or its last handle goes away, and a deadline keeps its context alive until
// it fires. Calling cancel releases both at once, as in Go. A deadline that
// has neither fired nor been canceled when spindle::run returns is leaked
// (its timer never fires).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include "spindle/channel.hpp"

namespace spindle {

// Why a context is done (Go's context.Canceled, context.DeadlineExceeded).
// As std::error_code they also compare equal to std::errc::operation_canceled
// and std::errc::timed_out respectively.
enum class ContextError { canceled = 1, deadline_exceeded = 2 };
const std::error_category& context_category() noexcept;
inline std::error_code make_error_code(ContextError e) noexcept {
  return {static_cast<int>(e), context_category()};
}

}  // namespace spindle

template <>
struct std::is_error_code_enum<spindle::ContextError> : std::true_type {};

namespace spindle {

class Context;
struct CancelableContext;
template <class F>
class DoneCallback;

namespace detail {
class ContextNode;

// A callback that a context runs once when it is done: each on_done()
// registration, and the link from a context to each cancelable child.
struct DoneHook {
  void (*run)(DoneHook*) noexcept = nullptr;
  // Guarded by the lock of the context the hook is registered with.
  DoneHook* prev = nullptr;
  DoneHook* next = nullptr;
  bool queued = false;
};

// Registers h with ctx; runs it at once, on the caller, if ctx is done.
void add_done_hook(ContextNode& ctx, DoneHook* h);
// See DoneCallback::remove().
bool remove_done_hook(ContextNode& ctx, DoneHook* h) noexcept;

// The friend through which the free functions below reach the handles' nodes.
struct ContextAccess {
  static const std::shared_ptr<ContextNode>& node(const Context& ctx) noexcept;
  static CancelableContext cancelable(const std::shared_ptr<ContextNode>& node) noexcept;
  static Context with_value(const Context& parent, const void* key,
                            std::shared_ptr<const void> value);
};
}  // namespace detail

// The key of a context value, identified by its address, typed by what it
// maps to. Define one per value, at namespace scope:
//   inline const spindle::ContextKey<std::string> kRequestId{"request-id"};
template <class V>
class ContextKey {
 public:
  constexpr explicit ContextKey(const char* name) noexcept : name_(name) {}
  ContextKey(const ContextKey&) = delete;
  ContextKey& operator=(const ContextKey&) = delete;
  const char* name() const noexcept { return name_; }

 private:
  const char* name_;  // for humans only: lookups compare addresses
};

class Context {
 public:
  // The background context: never done, no deadline, no values (the root of
  // every tree; Go's context.Background()).
  Context();
  static Context background() { return Context(); }

  // A channel that is closed when this context is done, and never receives
  // a value: receive from it (recv() returns std::nullopt once done) or
  // select on it with on_recv. Never closed for the background. Receive
  // only: closing it is a programming error (the process ends when the
  // context is then canceled).
  Channel<Empty>& done() const noexcept;

  // Empty while not done; then ContextError::canceled or
  // ContextError::deadline_exceeded, for good. Once done() is closed, err()
  // is set, and the other way round.
  std::error_code err() const noexcept;

  // The earliest deadline of this context and its ancestors, if any.
  std::optional<std::chrono::steady_clock::time_point> deadline() const noexcept;

  // The value stored under `key` by the nearest with_value on the way to the
  // root, or nullptr. Valid while any context derived from that one lives.
  template <class V>
  const V* value(const ContextKey<V>& key) const noexcept {
    return static_cast<const V*>(find_value(&key));
  }

  // Runs fn() once, when this context becomes done: the hook for waits that
  // are not channels (the netpoller fails a parked socket read with err()).
  // fn runs on whichever fiber or thread cancels the context (a timer thread
  // for deadlines), or at once on the caller if the context is done already;
  // it must not block or throw, and should do little: wake someone.
  // The returned registration removes fn when destroyed; see DoneCallback.
  template <class F>
  [[nodiscard]] DoneCallback<std::decay_t<F>> on_done(F&& fn) const {
    return DoneCallback<std::decay_t<F>>(*this, std::forward<F>(fn));
  }

 private:
  friend struct detail::ContextAccess;
  explicit Context(std::shared_ptr<detail::ContextNode> node) noexcept : node_(std::move(node)) {}
  const void* find_value(const void* key) const noexcept;

  std::shared_ptr<detail::ContextNode> node_;
};

// A registration made by Context::on_done (or this constructor). Linked into
// the context by address, so neither copyable nor movable; it keeps the
// context alive.
template <class F>
class DoneCallback {
 public:
  DoneCallback(const Context& ctx, F fn)
      : node_(detail::ContextAccess::node(ctx)), hook_(std::move(fn)) {
    detail::add_done_hook(*node_, &hook_);
  }
  ~DoneCallback() { remove(); }
  DoneCallback(const DoneCallback&) = delete;
  DoneCallback& operator=(const DoneCallback&) = delete;

  // Unregisters fn. Returns true if that stopped fn from ever running;
  // false if fn ran, or is running on another thread, or was removed
  // already. Either way, once remove() returns fn is not running and will
  // not run: it waits for a running fn to return (so never call it from
  // inside fn).
  bool remove() noexcept { return detail::remove_done_hook(*node_, &hook_); }

 private:
  struct Hook : detail::DoneHook {
    explicit Hook(F f) : fn(std::move(f)) {
      run = [](detail::DoneHook* h) noexcept { static_cast<Hook*>(h)->fn(); };
    }
    F fn;
  };

  std::shared_ptr<detail::ContextNode> node_;
  Hook hook_;
};

// Go's CancelFunc: makes its context done with ContextError::canceled (if it
// is not done yet), then every context derived from it; wakes everything
// waiting on done(); runs the on_done callbacks; unlinks the context from its
// parent and stops its deadline timer. Idempotent; callable from any fiber or
// thread, concurrently. A default-constructed one does nothing.
class CancelFunc {
 public:
  CancelFunc() = default;
  void operator()() const;

 private:
  friend struct detail::ContextAccess;
  explicit CancelFunc(std::shared_ptr<detail::ContextNode> node) noexcept
      : node_(std::move(node)) {}
  std::shared_ptr<detail::ContextNode> node_;
};

// auto [ctx, cancel] = with_cancel(parent);
struct CancelableContext {
  Context ctx;
  CancelFunc cancel;
};

// A child done when cancel is called or the parent is done.
CancelableContext with_cancel(const Context& parent);

// As with_cancel, and also done (deadline_exceeded) at `deadline`, or at the
// parent's deadline if that comes first.
CancelableContext with_deadline(const Context& parent,
                                std::chrono::steady_clock::time_point deadline);

template <class Rep, class Period>
CancelableContext with_timeout(const Context& parent, std::chrono::duration<Rep, Period> timeout) {
  return with_deadline(parent, std::chrono::steady_clock::now() +
                                   std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
}

// A child carrying key -> V(args...), done when the parent is.
template <class V, class... Args>
Context with_value(const Context& parent, const ContextKey<V>& key, Args&&... args) {
  return detail::ContextAccess::with_value(parent, &key,
                                           std::make_shared<const V>(std::forward<Args>(args)...));
}

}  // namespace spindle
