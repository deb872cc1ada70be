// Context: cancellation reaching a fiber parked in select, deadlines,
// propagation down the tree and never up, values, on_done callbacks, plain
// threads, and cancels racing with each other and with handles going away.
#include <doctest/doctest.h>
#include <spindle/channel.hpp>
#include <spindle/context.hpp>
#include <spindle/runtime.hpp>
#include <spindle/stats.hpp>
#include <spindle/waitgroup.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "../support/sync.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using spindle::Context;
using spindle::ContextError;
using spindle::testing::await_parked;
using spindle::testing::kScale;
using spindle::testing::procs;

namespace {

bool is_done(const Context& ctx) {
  std::optional<spindle::Empty> v;
  return ctx.done().try_recv(v);  // completes only once done() is closed
}

const spindle::ContextKey<std::string> kUser{"user"};
const spindle::ContextKey<int> kAttempt{"attempt"};

}  // namespace

TEST_CASE("context: the background is never done") {
  Context bg = Context::background();
  CHECK_FALSE(is_done(bg));
  CHECK_FALSE(bg.err());
  CHECK_FALSE(bg.deadline());
  CHECK(bg.value(kUser) == nullptr);
  CHECK_FALSE(is_done(Context()));
}

TEST_CASE("context: cancel wakes a fiber parked in select on done()") {
  spindle::run(procs(2), [] {
    auto [ctx, cancel] = spindle::with_cancel(Context::background());
    spindle::Channel<int> work;
    int chosen = -1;
    std::error_code seen;
    spindle::WaitGroup wg;
    wg.add(1);
    spindle::go([&, ctx = ctx] {
      chosen = spindle::select(spindle::on_recv(work),
                               spindle::on_recv(ctx.done(), [&] { seen = ctx.err(); }));
      wg.done();
    });
    await_parked("select", 1);
    CHECK_FALSE(ctx.err());
    cancel();
    wg.wait();
    CHECK(chosen == 1);
    CHECK(seen == ContextError::canceled);
    CHECK(seen == std::errc::operation_canceled);
    CHECK(seen.message() == "context canceled");
    cancel();  // idempotent
    CHECK(ctx.err() == ContextError::canceled);
  });
}

TEST_CASE("context: a deadline passes: deadline_exceeded, not early") {
  spindle::run(procs(2), [] {
    auto start = Clock::now();
    auto [ctx, cancel] = spindle::with_timeout(Context::background(), 30ms);
    REQUIRE(ctx.deadline());
    CHECK(*ctx.deadline() >= start + 30ms);
    CHECK(ctx.done().recv() == std::nullopt);  // parks until the deadline
    CHECK(Clock::now() - start >= 30ms);
    CHECK(ctx.err() == ContextError::deadline_exceeded);
    CHECK(ctx.err() == std::errc::timed_out);
    cancel();  // after the fact: changes nothing
    CHECK(ctx.err() == ContextError::deadline_exceeded);

    // Already past: done at once.
    auto [late, cancel_late] = spindle::with_deadline(Context::background(), Clock::now() - 1s);
    CHECK(is_done(late));
    CHECK(late.err() == ContextError::deadline_exceeded);

    // A child asking for a later deadline gets its parent's, and is done
    // through it.
    auto [parent, cancel_parent] = spindle::with_timeout(Context::background(), 20ms);
    auto [child, cancel_child] = spindle::with_timeout(parent, 1h);
    CHECK(child.deadline() == parent.deadline());
    child.done().recv();
    CHECK(child.err() == ContextError::deadline_exceeded);
    cancel_child();
    cancel_parent();
  });
}

TEST_CASE("context: cancel stops the deadline timer") {
  spindle::run(procs(2), [] {
    auto [ctx, cancel] = spindle::with_timeout(Context::background(), 1h);
    CHECK(spindle::stats().timers == 1);
    cancel();
    CHECK(spindle::stats().timers == 0);
    CHECK(ctx.err() == ContextError::canceled);
  });
}

TEST_CASE("context: cancellation propagates down the tree, never up") {
  auto [root, cancel_root] = spindle::with_cancel(Context::background());
  auto [a, cancel_a] = spindle::with_cancel(root);
  auto [b, cancel_b] = spindle::with_cancel(root);
  Context a_value = spindle::with_value(a, kAttempt, 1);
  auto [a_grandchild, cancel_a_grandchild] = spindle::with_cancel(a_value);

  cancel_b();
  CHECK(b.err() == ContextError::canceled);
  CHECK_FALSE(root.err());
  CHECK_FALSE(a.err());
  CHECK_FALSE(is_done(a_grandchild));

  cancel_root();
  for (const Context* c : {&root, &a, &a_value, &a_grandchild}) {
    CHECK(is_done(*c));
    CHECK(c->err() == ContextError::canceled);
  }

  // Born of a done parent: done at once, with the parent's reason.
  auto [late, cancel_late] = spindle::with_cancel(a_value);
  CHECK(late.err() == ContextError::canceled);

  // The parent's reason is the one that propagates.
  auto [timed, cancel_timed] = spindle::with_deadline(Context::background(), Clock::now() - 1s);
  auto [under, cancel_under] = spindle::with_cancel(timed);
  CHECK(under.err() == ContextError::deadline_exceeded);
}

TEST_CASE("context: children unlink from their parent when canceled or dropped") {
  // Under ASan, a parent still holding a link to a freed child would be
  // caught when it is canceled below.
  auto [parent, cancel_parent] = spindle::with_cancel(Context::background());
  for (int i = 0; i < 1000; ++i) {
    auto [child, cancel_child] = spindle::with_cancel(parent);
    if (i % 2) cancel_child();  // the others are just dropped
  }
  std::atomic<int> ran{0};
  {
    auto [kept, cancel_kept] = spindle::with_cancel(parent);
    auto reg = kept.on_done([&] { ran.fetch_add(1); });
    cancel_parent();
    CHECK(ran == 1);
    CHECK(kept.err() == ContextError::canceled);
  }
}

TEST_CASE("context: values are found by walking up; the nearest wins") {
  Context c1 = spindle::with_value(Context::background(), kUser, "alice");
  auto [c2, cancel] = spindle::with_cancel(c1);
  Context c3 = spindle::with_value(c2, kAttempt, 2);
  Context c4 = spindle::with_value(c3, kUser, "bob");
  REQUIRE(c3.value(kUser));
  CHECK(*c3.value(kUser) == "alice");
  CHECK(*c3.value(kAttempt) == 2);
  CHECK(*c4.value(kUser) == "bob");
  CHECK(c2.value(kAttempt) == nullptr);
  cancel();
  CHECK(c4.err() == ContextError::canceled);  // value nodes are done with their parent
  CHECK(*c4.value(kUser) == "bob");           // values outlive cancellation
}

TEST_CASE("context: on_done runs once, or at once, or never once removed") {
  auto [ctx, cancel] = spindle::with_cancel(Context::background());
  std::atomic<int> first{0}, removed{0};
  auto reg = ctx.on_done([&] { first.fetch_add(1); });
  auto reg_removed = ctx.on_done([&] { removed.fetch_add(1); });
  CHECK(reg_removed.remove());  // before the cancel: it will never run
  CHECK_FALSE(reg_removed.remove());
  cancel();
  cancel();
  CHECK(first == 1);
  CHECK(removed == 0);
  CHECK_FALSE(reg.remove());  // it ran

  int late = 0;
  auto reg_late = ctx.on_done([&] { ++late; });  // done already: runs here and now
  CHECK(late == 1);

  int never = 0;
  auto reg_bg = Context::background().on_done([&] { ++never; });
  CHECK_FALSE(reg_bg.remove());
  CHECK(never == 0);
}

TEST_CASE("context: remove() waits for a callback running on another thread") {
  auto [ctx, cancel] = spindle::with_cancel(Context::background());
  std::atomic<bool> started{false}, finished{false};
  auto reg = ctx.on_done([&] {
    started = true;
    // Long enough that remove() below is called while we still run; the
    // check after it fails if remove() does not wait.
    std::this_thread::sleep_for(50ms);
    finished = true;
  });
  std::thread canceller([&, cancel = cancel] { cancel(); });
  while (!started) std::this_thread::yield();
  CHECK_FALSE(reg.remove());
  CHECK(finished);
  canceller.join();
}

TEST_CASE("context: plain threads and fibers wait on each other's cancels") {
  spindle::run(procs(2), [] {
    auto [ctx, cancel] = spindle::with_cancel(Context::background());
    std::optional<spindle::Empty> got{spindle::Empty{}};
    std::thread waiter([&, ctx = ctx] { got = ctx.done().recv(); });  // blocks the thread
    spindle::go([cancel = cancel] { cancel(); });
    spindle::blocking([&] { waiter.join(); });
    CHECK_FALSE(got);

    auto [ctx2, cancel2] = spindle::with_cancel(Context::background());
    spindle::WaitGroup wg;
    wg.add(2);
    for (int i = 0; i < 2; ++i)
      spindle::go([&, ctx2 = ctx2] {
        ctx2.done().recv();
        wg.done();
      });
    std::thread canceller([cancel2 = cancel2] { cancel2(); });
    wg.wait();
    CHECK(ctx2.err() == ContextError::canceled);
    canceller.join();
  });
}

TEST_CASE("context: cancels race with each other and with handles going away") {
  spindle::run(procs(2), [] {
    const int rounds = 2000 / static_cast<int>(kScale) + 20;
    // Completion signals, not a WaitGroup per round: WaitGroup::add() may
    // still touch the group after wait() returned, and rounds reuse its address.
    spindle::Channel<spindle::Empty> finished(3);
    for (int round = 0; round < rounds; ++round) {
      auto [root, cancel_root] = spindle::with_cancel(Context::background());
      std::vector<spindle::CancelableContext> kids;
      for (int i = 0; i < 4; ++i) kids.push_back(spindle::with_cancel(root));
      auto [timed, cancel_timed] =
          spindle::with_timeout(kids[0].ctx, std::chrono::microseconds(round % 50));
      spindle::go([&, c = timed] {
        c.done().recv();
        finished.send({});
      });
      spindle::go([&, cancel = kids[1].cancel] {
        cancel();
        finished.send({});
      });
      std::thread t([&, cancel = cancel_root] {
        cancel();
        finished.send({});
      });
      kids[2] = {};  // dropped while its parent may be canceling it
      for (int i = 0; i < 3; ++i) finished.recv();
      spindle::blocking([&] { t.join(); });
      for (auto& k : kids) k.cancel();  // kids[2]'s is a no-op now
      CHECK(timed.err());
      CHECK(root.err() == ContextError::canceled);
      cancel_timed();
    }
  });
}
