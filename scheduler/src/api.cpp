// The public entry points: run, park/ready, yield, sleep, blocking, ids.
#include <cassert>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "evict.hpp"
#include "sched.hpp"

namespace spindle {
namespace detail {

namespace {
constexpr auto relaxed = std::memory_order_relaxed;
thread_local M* tls_m = nullptr;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  return *end == '\0' && n >= 0 && n < 1 << 20 ? static_cast<int>(n) : fallback;
}

Config resolve(Config cfg) {
  if (cfg.procs <= 0) cfg.procs = env_int("SPINDLE_PROCS", 0);
  if (cfg.procs <= 0)
    cfg.procs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (cfg.schedtrace_ms < 0) cfg.schedtrace_ms = env_int("SPINDLE_SCHEDTRACE", 0);
  if (cfg.stack_evict_after.count() < 0)
    cfg.stack_evict_after = std::chrono::milliseconds(env_int("SPINDLE_STACK_EVICT_MS", 1000));
  std::uint32_t slots = cfg.local_queue_slots;
  if (slots < 2 || (slots & (slots - 1)) != 0)
    throw std::invalid_argument("spindle::Config::local_queue_slots must be a power of two >= 2");
  return cfg;
}

// Starts a new time slice on pp for the running fiber.
void new_slice(P* pp) {
  pp->schedtick.store(pp->schedtick.load(relaxed) + 1, relaxed);
  pp->preempt.store(false, relaxed);
}
}  // namespace

// The asm barrier makes the compiler treat each call as having side
// effects, so it can never reuse a value read before a fiber switch.
M* this_m() noexcept {
  M* m = tls_m;
  asm volatile("" : "+r"(m));
  return m;
}
void set_this_m(M* m) noexcept {
  tls_m = m;
}

Runtime::Runtime(const Config& c)
    : cfg(resolve(c)),
      nprocs(cfg.procs),
      stack_size(round_stack_size(cfg.stack_size)),
      timer_poller(std::make_unique<TimerPoller>()),
      stacks(stack_size),
      start_time(nanotime()) {
  for (int i = 0; i < nprocs; ++i) ps.push_back(std::make_unique<P>(i, cfg.local_queue_slots));
  poller.store(timer_poller.get(), std::memory_order_release);
}

Poller& install_poller(std::unique_ptr<Poller> (*make)()) {
  if (!rt) throw std::logic_error("spindle: I/O used outside spindle::run");
  std::lock_guard lock(rt->lock);
  if (!rt->io_poller) {
    rt->io_poller = make();
    Poller* old = rt->poller.exchange(rt->io_poller.get(), std::memory_order_acq_rel);
    old->interrupt();  // an M blocked in it comes back and polls the new one
  }
  return *rt->io_poller;
}

void ReadyList::push(Fiber* f) noexcept {
  GState expected = GState::waiting;
  [[maybe_unused]] bool was_waiting =
      f->state.compare_exchange_strong(expected, GState::runnable, std::memory_order_acq_rel);
  assert(was_waiting && "a poller readied a fiber that is not parked");
  rt->parked_outside.fetch_sub(1, relaxed);
  append(f);
}

void ReadyList::append(Fiber* f) noexcept {
  f->schedlink = nullptr;
  if (tail_)
    tail_->schedlink = f;
  else
    head_ = f;
  tail_ = f;
}

void TimerPoller::poll(std::int64_t deadline, ReadyList&) {
  std::unique_lock lock(mu_);
  auto interrupted = [&] { return interrupted_; };
  if (deadline == kNever)
    cv_.wait(lock, interrupted);
  else if (deadline != 0)
    cv_.wait_until(lock, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline)),
                   interrupted);
  interrupted_ = false;
}

void TimerPoller::interrupt() {
  {
    std::lock_guard lock(mu_);
    interrupted_ = true;
  }
  cv_.notify_one();
}

// Shutdown, step 3 (README): every fiber still alive is resumed once with
// `unwinding` set, so it throws Unwind from its scheduling point and its
// destructors run. A fiber that parks again while unwinding is abandoned.
static void unwind_all(M* m0) {
  for (auto& pp : rt->ps) pp->timers.clear();
  if (!m0->p) acquirep(m0, rt->ps[0].get());
  for (bool again = true; again;) {
    again = false;
    for (G* g = rt->gs.all(); g; g = g->allg_next) {
      GState s = g->state.load(relaxed);
      if (s == GState::free || s == GState::dead || g->unwinding) continue;
      g->unwinding = true;
      again = true;
      execute(m0, g, true);
    }
  }
}

}  // namespace detail

using namespace detail;

void run(const Config& cfg, std::function<void()> main_fn) {
  if (rt) throw std::logic_error("spindle::run: a runtime is already running");
  stack_configure();
  Runtime runtime(cfg);
  rt = &runtime;
  install_fault_handler();

  runtime.allm.push_back(std::make_unique<M>(0));
  M* m0 = runtime.allm[0].get();
  set_this_m(m0);
  m0->g0san.tsan_fiber = sanitizer_thread_fiber();
  void* alt = enable_altstack();
  {
    std::lock_guard lock(runtime.lock);
    for (int i = runtime.nprocs - 1; i > 0; --i) pidleput(runtime.ps[i].get());
  }
  acquirep(m0, runtime.ps[0].get());

  std::thread sysmon(sysmon_main);  // with the caller's signal mask
  runtime.caller_signals = sanitizer_leave_signals();
  go(SpawnOptions{"main"}, [&main_fn] {
    main_fn();
    begin_shutdown();
  });
  schedule(m0);

  // Shutdown, steps 1-2: no M takes new work; wait for every thread (an M
  // inside a blocking() call finishes it first), and for plain threads
  // still inside go() or ready() (OutsideCall).
  sysmon.join();
  std::vector<M*> ms;
  {
    std::lock_guard lock(runtime.lock);
    for (auto& m : runtime.allm) ms.push_back(m.get());
  }
  for (M* m : ms)
    if (m->thread.joinable()) m->thread.join();
  while (runtime.outside_calls.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  unwind_all(m0);
  runtime.io_poller.reset();  // completes what unwinding cancelled, before stacks go
  // Fibers that never ended keep theirs; the others are pooled.
  for (G* g = runtime.gs.all(); g; g = g->allg_next) stack_release(g->stack);
  for (auto& pp : runtime.ps) runtime.stacks.release(pp->stacks);
  runtime.stacks.release_pool();
  remove_fault_handler();
  disable_altstack(alt);
  sanitizer_restore_signals(runtime.caller_signals);
  set_this_m(nullptr);
  rt = nullptr;
}

Fiber* current_fiber() noexcept {
  M* m = this_m();
  return m ? m->curg : nullptr;
}

void park(WaitReason reason, Commit commit, void* arg, ParkStack stack) {
  M* m = this_m();
  if (!m || !m->curg) throw std::logic_error("spindle::park called outside a fiber");
  G* g = m->curg;
  g->reason.store(reason, relaxed);
  m->action = Action::park;
  m->commit = commit;
  m->commit_arg = arg;
  m->park_word = stack == ParkStack::evictable && g->evictable_stack ? begin_evictable_park(g) : 0;
  switch_out(m, g, false);
  g->reason.store(WaitReason::none, relaxed);
}

void ready(Fiber* f) noexcept {
  detail::ready(f, true);
}

namespace detail {
void ready(G* f, bool next) noexcept {
  GState expected = GState::waiting;
  [[maybe_unused]] bool was_waiting =
      f->state.compare_exchange_strong(expected, GState::runnable, std::memory_order_acq_rel);
  assert(was_waiting && "ready() of a fiber that is not parked");
  M* m = this_m();
  if (P* pp = m ? m->p : nullptr) {
    owner_add(pp->parked, std::int64_t{-1});
    runqput(pp, f, next);
    wakep();
    return;
  }
  rt->parked_outside.fetch_sub(1, relaxed);
  put_without_p(m, f);
}
}  // namespace detail

void yield() {
  M* m = this_m();
  if (!m || !m->curg) return std::this_thread::yield();
  m->action = Action::yield;
  switch_out(m, m->curg, false);
}

void preempt_point() {
  M* m = this_m();
  if (m && m->p && m->p->preempt.load(relaxed)) yield();
}

void start_timer(Timer* t) {
  detail::add_timer(t);
}

namespace {
struct SleepTimer : Timer {
  Fiber* fiber;
};
}  // namespace

void sleep_until(std::chrono::steady_clock::time_point deadline) {
  if (!current_fiber()) return std::this_thread::sleep_until(deadline);
  SleepTimer t;
  t.when =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  if (t.when <= nanotime()) return preempt_point();
  t.fiber = current_fiber();
  t.fire = [](Timer* timer) { detail::ready(static_cast<SleepTimer*>(timer)->fiber, false); };
  // The timer is added only once this fiber's context is saved: it may fire
  // on another thread at once.
  park(WaitReason::sleep, [&t](Fiber*) {
    add_timer(&t);
    return true;
  });
}

namespace detail {

void enter_blocking() noexcept {
  M* m = this_m();
  if (!m || !m->curg) return;
  if (!m->p) {  // nested blocking(): the outer call already gave the P up
    ++m->blocking_nest;
    return;
  }
  P* pp = m->p;
  m->curg->state.store(GState::blocking, relaxed);
  pp->blocktick.store(pp->blocktick.load(relaxed) + 1, relaxed);
  pp->curg.store(nullptr, relaxed);
  m->blockp = pp;
  m->p = nullptr;
  // Release: sysmon or the next owner sees the P's state as we left it.
  pp->status.store(PStatus::blocking, std::memory_order_release);
}

void exit_blocking() noexcept {
  M* m = this_m();
  if (!m || !m->curg) return;
  if (m->blocking_nest > 0) {
    --m->blocking_nest;
    return;
  }
  G* g = m->curg;
  P* pp = m->blockp;
  m->blockp = nullptr;
  PStatus expected = PStatus::blocking;
  if (pp->status.compare_exchange_strong(expected, PStatus::running, std::memory_order_acq_rel)) {
    m->p = pp;  // fast path: sysmon did not retake it
  } else {
    std::lock_guard lock(rt->lock);
    if (P* idle = pidleget()) acquirep(m, idle);
  }
  if (P* now = m->p) {
    new_slice(now);
    g->state.store(GState::running, relaxed);
    now->curg.store(g, std::memory_order_release);  // as in execute()
    return;
  }
  // Every P is taken: queue this fiber globally and let this M stop.
  m->action = Action::requeue;
  switch_out(m, g, false,
             /*may_unwind=*/false);  // noexcept: unwinding waits for the next scheduling point
}

}  // namespace detail

namespace this_fiber {
std::uint64_t id() noexcept {
  Fiber* f = current_fiber();
  return f ? f->id.load(relaxed) : 0;
}
std::string name() {
  Fiber* f = current_fiber();
  if (!f) return {};
  char buf[32];
  f->copy_name(buf);
  return buf;
}
}  // namespace this_fiber

const char* to_string(WaitReason r) noexcept {
  switch (r) {
    case WaitReason::none:
      return "";
    case WaitReason::sleep:
      return "sleep";
    case WaitReason::chan_send:
      return "chan send";
    case WaitReason::chan_recv:
      return "chan receive";
    case WaitReason::select:
      return "select";
    case WaitReason::mutex:
      return "mutex";
    case WaitReason::condvar:
      return "condvar";
    case WaitReason::waitgroup:
      return "waitgroup";
    case WaitReason::semaphore:
      return "semaphore";
    case WaitReason::io_read:
      return "IO read";
    case WaitReason::io_write:
      return "IO write";
    case WaitReason::io_accept:
      return "IO accept";
    case WaitReason::context:
      return "context";
    case WaitReason::other:
      return "other";
  }
  return "?";
}

}  // namespace spindle
