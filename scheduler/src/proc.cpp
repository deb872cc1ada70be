// The scheduling loop: how an M finds a fiber to run, runs it, and what it
// does when there is none. The protocols are those of Go's proc.go; the
// names follow it where a reader may want to compare.
//
// Idle protocol (no lost wake-ups). A thread that readies work does
//     publish (queue put)  ->  seq_cst fence  ->  read npidle, nmspinning
// (wakep). A thread that goes idle does
//     release its P (npidle++, seq_cst)  ->  stop spinning (seq_cst)
//     ->  re-check the global queue and every P's queue.
// Whichever runs second sees the other: either the readier sees an idle P
// and no spinner and starts an M, or the idler sees the work and takes a P
// back. Timers follow the same shape with the poller (wake_poller):
//     add timer  ->  fence  ->  read poller_busy, poll_until
// against the idle M's
//     poller_busy=true  ->  read every P's timers  ->  block until the earliest
// and, when it finds nothing to wait for,
//     poller_busy=false  ->  fence  ->  read every P's timers again.
// A timer added while an M blocks (or is about to) interrupts it if it is
// earlier than the poll's deadline (0: still being computed); a timer added
// while nobody polls calls wakep(), whose spinner ends in the poller. The
// re-read closes the gap where the adder saw poller_busy (so only
// interrupted) but the M had already read the timers and was leaving: the
// interrupt is remembered by the poller, not by an M that does not poll.
#include <cassert>
#include <cstdio>
#include <cstdlib>

#include "evict.hpp"
#include "sched.hpp"

namespace spindle::detail {

namespace {
constexpr auto relaxed = std::memory_order_relaxed;
constexpr auto seq_cst = std::memory_order_seq_cst;

// A P looks at the global queue first once every this many slices, so a
// busy local queue cannot starve it (Go: 61, a prime, to avoid lockstep).
constexpr std::uint64_t kGlobalQueueTick = 61;
// At most this many fibers move from the global queue at once (Go: half of
// its 256-slot local queue).
constexpr std::uint32_t kMaxGlobalShare = 128;
constexpr int kStealPasses = 4;
// Longest an idle M blocks in the poller before it looks again: 20 ms, 50
// wake-ups a second for an idle process. Both pollers lose no wake-up
// (TimerPoller, net's AsioPoller); the cap is a backstop, so that a bug in
// that protocol would cost a delay, never a stranded M.
constexpr std::int64_t kPollBlockMax = 20'000'000;

// The StoreLoad barrier of the idle protocol. ThreadSanitizer does not
// model fences (GCC rejects them under -fsanitize=thread); a seq_cst
// read-modify-write is a full barrier on x86 and aarch64 and TSan sees it.
void full_fence() {
#ifdef SPINDLE_TSAN
  static std::atomic<int> barrier{0};
  barrier.fetch_add(0, seq_cst);
#else
  std::atomic_thread_fence(seq_cst);
#endif
}

std::uint32_t next_rand(P* pp) {
  std::uint32_t x = pp->rng;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return pp->rng = x;
}

}  // namespace

Runtime* rt = nullptr;

// ---------------------------------------------------------------------------
// Run queues and waking

void runqput(P* pp, G* g, bool next) {
  rt->globq.put(pp->runq.put(g, next));
}

// The slice is over: runnext goes to the ring ahead of the yielder.
static void demote_next(P* pp) {
  rt->globq.put(pp->runq.demote_next());
}

// Takes fibers from the global queue: returns one, moves the rest to pp
// (Go's globrunqget: a fair share, at most half a local queue).
static G* globrunqget(P* pp, std::uint32_t max) {
  std::uint32_t share = rt->globq.size() / rt->nprocs + 1;
  std::uint32_t limit = pp->runq.capacity() / 2;
  if (max && share > max) share = max;
  if (share > limit) share = limit;
  G* got[kMaxGlobalShare];
  std::uint32_t n = rt->globq.get({got, std::min(share, kMaxGlobalShare)});
  if (n == 0) return nullptr;
  // Into the ring, which has room: it is empty unless this is the fairness
  // check, which takes one.
  for (std::uint32_t i = 1; i < n; ++i) runqput(pp, got[i], false);
  return got[0];
}

void wakep() {
  full_fence();  // order the caller's publish before these loads
  if (rt->npidle.load(seq_cst) == 0 || rt->stopping.load(relaxed)) return;
  int expected = 0;
  if (rt->nmspinning.load(seq_cst) != 0 || !rt->nmspinning.compare_exchange_strong(expected, 1))
    return;
  startm(nullptr, true);
}

P* pidleget() {
  P* pp = rt->pidle;
  if (pp) {
    rt->pidle = pp->link;
    rt->npidle.fetch_sub(1, seq_cst);
  }
  return pp;
}

void pidleput(P* pp) {
  pp->status.store(PStatus::idle, relaxed);
  pp->link = rt->pidle;
  rt->pidle = pp;
  rt->npidle.fetch_add(1, seq_cst);
}

void acquirep(M* m, P* pp) {
  m->p = pp;
  pp->status.store(PStatus::running, relaxed);
}

static void mstart(M* m);

// Runs pp (or an idle P if pp is null) on an idle or new M.
void startm(P* pp, bool spinning) {
  std::unique_lock lock(rt->lock);
  if (!pp) pp = pidleget();
  if (!pp || rt->stopping.load(relaxed)) {
    if (pp) pidleput(pp);
    lock.unlock();
    if (spinning) rt->nmspinning.fetch_sub(1, seq_cst);
    return;
  }
  M* m = rt->midle;
  if (m) {
    rt->midle = m->link;
    rt->nmidle.fetch_sub(1, relaxed);
  } else {
    rt->allm.push_back(std::make_unique<M>(static_cast<int>(rt->allm.size())));
    m = rt->allm.back().get();
  }
  m->nextp = pp;
  m->next_spinning = spinning;
  if (m->thread.joinable() || m->id == 0) {
    lock.unlock();
    rt->thread_unparks.fetch_add(1, relaxed);
    m->parker.unpark();
  } else {
    m->thread = std::thread(mstart, m);
  }
}

// Parks m until startm() hands it a P, or the runtime stops.
static void stopm(M* m) {
  {
    std::lock_guard lock(rt->lock);
    if (rt->stopping.load(relaxed)) return;
    m->link = rt->midle;
    rt->midle = m;
    rt->nmidle.fetch_add(1, relaxed);
  }
  rt->thread_parks.fetch_add(1, relaxed);
  m->parker.park();
  if (P* pp = m->nextp) {
    m->nextp = nullptr;
    acquirep(m, pp);
    m->spinning = m->next_spinning;
  }
}

static void wake_poller(std::int64_t when);

// A P with no M: give it one if there is anything for it to do, else make
// it idle (Go's handoffp).
void handoffp(P* pp) {
  if (!pp->runq.empty() || !rt->globq.empty()) return startm(pp, false);
  int expected = 0;
  if (rt->nmspinning.load(seq_cst) + rt->npidle.load(seq_cst) == 0 &&
      rt->nmspinning.compare_exchange_strong(expected, 1))
    return startm(pp, true);
  {
    std::lock_guard lock(rt->lock);
    pidleput(pp);
  }
  // Its timers now belong to whoever polls (Go's handoffp -> wakeNetPoller).
  if (std::int64_t when = pp->timers.next(); when != kNever) wake_poller(when);
}

// ---------------------------------------------------------------------------
// Timers

static int run_timers(P* pp, std::int64_t& now) {
  if (pp->timers.next() == kNever) return 0;
  if (!now) now = nanotime();
  return pp->timers.run_expired(now);
}

static std::int64_t earliest_timer() {
  std::int64_t t = kNever;
  for (auto& pp : rt->ps) t = std::min(t, pp->timers.next());
  return t;
}

void add_timer(Timer* t) {
  M* m = this_m();
  P* pp = m && m->p ? m->p : rt->ps[0].get();
  // Once added, t may fire on another thread and its owner free it: read
  // what we need first.
  std::int64_t when = t->when;
  // The new earliest timer of pp: make sure somebody will wake for it.
  if (pp->timers.add(t)) wake_poller(when);
}

// A timer due at `when` was published: the M blocked in the poller wakes
// for it if it would sleep past it; with nobody polling, a spinning M is
// started, which fires it or ends in the poller (Go's wakeNetPoller).
static void wake_poller(std::int64_t when) {
  full_fence();  // order the timer's publication before these loads
  if (rt->poller_busy.load(seq_cst)) {
    std::int64_t until = rt->poll_until.load(seq_cst);
    if (until == 0 || when < until) poller()->interrupt();
  } else {
    wakep();
  }
}

// ---------------------------------------------------------------------------
// Finding work

static G* steal_work(P* pp, std::int64_t& now) {
  int n = rt->nprocs;
  for (int pass = 0; pass < kStealPasses; ++pass) {
    bool last = pass == kStealPasses - 1;
    std::uint32_t start = next_rand(pp);
    for (int k = 0; k < n; ++k) {
      P* victim = rt->ps[(start + k) % n].get();
      if (victim == pp) continue;
      if (last && run_timers(victim, now) > 0) {
        bool inherit;
        if (G* g = pp->runq.get(&inherit)) return g;
      }
      // Relaxed: only a hint for how eagerly to take the victim's runnext.
      bool running = last && victim->status.load(relaxed) == PStatus::running;
      if (G* g = pp->runq.steal_from(victim->runq, last, running)) {
        pp->steals.fetch_add(1, relaxed);
        return g;
      }
    }
  }
  return nullptr;
}

static void reset_spinning(M* m) {
  m->spinning = false;
  // The last spinner found work: there may be more, so start another.
  if (rt->nmspinning.fetch_sub(1, seq_cst) == 1) wakep();
}

G* netpoll(std::int64_t deadline) {
  ReadyList ready;
  M* m = this_m();  // none for sysmon
  if (m) m->poll_list = &ready;
  poller()->poll(deadline, ready);
  if (m) m->poll_list = nullptr;
  rt->last_poll.store(nanotime(), relaxed);
  return ready.take();
}

G* inject(P* pp, G* list) {
  if (!list) return nullptr;
  if (!pp) {
    rt->globq.put_chain(list);
    wakep();
    return nullptr;
  }
  // In readiness order: what does not fit in pp's queue goes to the global
  // queue behind it. Put one by one, an overflow sent the queue's oldest
  // half behind the newest (a poll that readied 1,000 connections served
  // the first ones last: the p99).
  G* first = list;
  if (G* rest = pp->runq.put_chain(first->schedlink)) rt->globq.put_chain(rest);
  first->schedlink = nullptr;
  wakep();
  return first;
}

void put_without_p(M* m, G* g) noexcept {
  if (ReadyList* list = m ? m->poll_list : nullptr) return list->append(g);
  OutsideCall call;  // a plain thread: run() must not end under it
  rt->globq.put(g);
  wakep();
}

// After giving up its P: is there work an idle M would miss? If so, take an
// idle P back and return true.
static bool recheck_after_idle(M* m, bool was_spinning) {
  bool work = !rt->globq.empty();
  for (int i = 0; !work && i < rt->nprocs; ++i) work = !rt->ps[i]->runq.empty();
  if (!work) return false;
  std::lock_guard lock(rt->lock);
  P* pp = pidleget();
  if (!pp) return false;  // every P is busy: their Ms will find the work
  acquirep(m, pp);
  if (was_spinning) {
    m->spinning = true;
    rt->nmspinning.fetch_add(1, seq_cst);
  }
  return true;
}

// Blocks in the poller if this M may (one at a time, and only if there is a
// timer or I/O to wait for). Returns true if it came back holding a P.
static bool poll_idle(M* m) {
  std::int64_t until;
  for (;;) {
    if (rt->poller_busy.exchange(true, seq_cst)) return false;
    full_fence();  // poller_busy=true before the timer reads (StoreLoad)
    until = earliest_timer();
    if (until != kNever || poller()->has_waiters()) break;
    rt->poller_busy.store(false, seq_cst);
    // A timer added after our read saw poller_busy and only interrupted the
    // poller nobody will block in: look again (see the protocol above).
    full_fence();
    if (earliest_timer() == kNever) return false;
  }
  until = std::min(until, nanotime() + kPollBlockMax);
  rt->poll_until.store(until, seq_cst);
  G* ready = netpoll(until);
  rt->poll_until.store(0, seq_cst);
  rt->poller_busy.store(false, seq_cst);

  P* pp;
  {
    std::lock_guard lock(rt->lock);
    pp = pidleget();
  }
  if (!pp) {
    inject(nullptr, ready);
    return false;
  }
  acquirep(m, pp);
  if (G* g = inject(pp, ready)) runqput(pp, g, true);
  return true;
}

// Returns a fiber for m to run, blocking m while there is none. nullptr
// once the runtime stops. m holds a P on return with a fiber.
static G* find_runnable(M* m, bool* inherit) {
  for (;;) {
    if (rt->stopping.load(relaxed)) return nullptr;
    P* pp = m->p;
    std::int64_t now = 0;
    run_timers(pp, now);
    *inherit = false;
    G* g = nullptr;
    if (pp->schedtick.load(relaxed) % kGlobalQueueTick == 0 && !rt->globq.empty())
      g = globrunqget(pp, 1);
    if (!g) g = pp->runq.get(inherit, pp->preempt.load(relaxed));
    if (!g) g = globrunqget(pp, 0);
    if (!g && poller()->has_waiters() && !rt->poller_busy.load(relaxed)) {
      g = inject(pp, netpoll(0));
      // The poll's callbacks (net's fiber-less waits) may have spawned
      // fibers onto pp's own queue: run them before stealing, which copies
      // into an empty queue only (runq.cpp).
      if (!g) g = pp->runq.get(inherit);
    }
    if (!g &&
        (m->spinning || 2 * rt->nmspinning.load(relaxed) < rt->nprocs - rt->npidle.load(relaxed))) {
      if (!m->spinning) {
        m->spinning = true;
        rt->nmspinning.fetch_add(1, seq_cst);
      }
      g = steal_work(pp, now);
    }
    if (g) return g;

    // Nothing anywhere. Fire any due timer of any P before sleeping.
    // Fibers they ready land in pp's queue.
    for (auto& other : rt->ps) run_timers(other.get(), now);
    if (!pp->runq.empty()) continue;

    {
      std::lock_guard lock(rt->lock);
      if (rt->stopping.load(relaxed)) return nullptr;
      if (!rt->globq.empty()) {
        if ((g = globrunqget(pp, 0))) return g;
      }
      m->p = nullptr;
      pidleput(pp);
    }
    bool was_spinning = m->spinning;
    if (was_spinning) {
      m->spinning = false;
      rt->nmspinning.fetch_sub(1, seq_cst);
    }
    if (recheck_after_idle(m, was_spinning)) continue;
    if (poll_idle(m)) continue;
    stopm(m);
    if (!m->p) return nullptr;
  }
}

// ---------------------------------------------------------------------------
// Switching

// Starts loading the hot lines of the next fibers in pp's ring while this
// one runs. In a spawn-heavy program they were written on another core, or
// long ago, and each line was a cache miss that stalled this M in turn;
// four ahead, since a fiber may run for less than a memory access takes.
// For the next one, also the top of its stack (512 bytes): the registers
// the switch restores and the frames it returns through. With 1,000 echo
// connections those were a miss per message (jump_fcontext went from 0.2%
// to 1.3% of the server's CPU). Its G came in when it was further ahead; a
// fiber not started yet has no context (nullptr: prefetch ignores it).
static void prefetch_queued(P* pp) {
  for (std::uint32_t ahead = 0; ahead < 4; ++ahead) {
    if (G* g = pp->runq.peek(ahead)) {
      __builtin_prefetch(g);
      __builtin_prefetch(reinterpret_cast<char*>(g) + 64);
    }
  }
  if (G* next = pp->runq.peek(0)) {
    const char* top = static_cast<const char*>(next->ctx.load(relaxed));
    for (int line = 0; line < 8; ++line) __builtin_prefetch(top + 64 * line);
  }
}

// Marks g as running on m (and a new time slice unless it inherits one).
static void begin_run(M* m, G* g, bool inherit) {
  P* pp = m->p;
  prefetch_queued(pp);
  if (!inherit) {
    pp->schedtick.store(pp->schedtick.load(relaxed) + 1, relaxed);
    pp->preempt.store(false, relaxed);
  }
  make_resident(g);
  if (!g->started) {
    // The stack and the first frame come from the M that runs the fiber
    // (stack_pool.hpp): its P's stacks are warm in its cache.
    if (!g->stack) bind_first_stack(pp, g);
    g->ctx.store(first_context(g), relaxed);
    g->started = true;
  }
  g->state.store(GState::running, relaxed);
  m->curg = g;
  pp->curg.store(g, std::memory_order_release);  // sysmon reads the G through it
}

// Every switch lands here, on the stack switched to, before anything else:
// it records where the context we left stopped and finishes what the fiber
// we left asked for (m->prev: nullptr when we left g0).
void land(M* m, bctx::fcontext_t from) {
  G* prev = m->prev;
  if (!prev) {
    m->g0ctx = from;
    return;
  }
  prev->ctx.store(from, relaxed);
  m->prev = nullptr;
  after_switch(m, prev);
}

void execute(M* m, G* g, bool inherit) {
  begin_run(m, g, inherit);
  sanitizer_before_switch(m->g0san, g->san, false);
  bctx::transfer_t t = bctx::jump_fcontext(g->ctx.load(relaxed), m);
  sanitizer_after_switch(m->g0san, nullptr);
  // Back on g0, from whichever fiber ran last on this M (m->prev).
  m->curg = nullptr;
  if (m->p) m->p->curg.store(nullptr, relaxed);
  land(m, t.fctx);
}

// The fiber to switch to directly, without a detour through g0, when that
// is as fair as the detour: nothing for find_runnable to do first (no
// timers pending, not the global queue's turn, not stopping).
static G* next_direct(M* m, bool* inherit) {
  P* pp = m->p;
  if (!pp || rt->cfg.migrate_on_yield || rt->stopping.load(relaxed)) return nullptr;
  if (pp->timers.next() != kNever) return nullptr;
  if (pp->schedtick.load(relaxed) % kGlobalQueueTick == 0 && !rt->globq.empty()) return nullptr;
  return pp->runq.get(inherit, pp->preempt.load(relaxed));
}

[[noreturn]] static void fatal_overflow(G* g);

// The annotation and the jump in one frame that ASan leaves alone: when g
// dies, start_switch_fiber frees its fake stack, which holds switch_out's
// frame under detect_stack_use_after_return, and instrumented code there
// would still check that frame's shadow (for `t`) before jumping.
SPINDLE_SWITCH_FRAME static bctx::transfer_t switch_from(G* g, const SanitizerStack& to, bool dies,
                                                         bctx::fcontext_t ctx, M* m) {
  sanitizer_before_switch(g->san, to, dies);
  return bctx::jump_fcontext(ctx, m);
}

void switch_out(M* m, G* g, bool dies, bool may_unwind) {
  if (!stack_intact(g->stack)) fatal_overflow(g);
  m->prev = g;
  bool inherit = false;
  bctx::transfer_t t;
  if (G* next = next_direct(m, &inherit)) {
    begin_run(m, next, inherit);
    t = switch_from(g, next->san, dies, next->ctx.load(relaxed), m);
  } else {
    t = switch_from(g, m->g0san, dies, m->g0ctx, m);
  }
  // Resumed, possibly by another M: t.data is that M.
  M* now = static_cast<M*>(t.data);
  sanitizer_after_switch(g->san, now->prev ? nullptr : &now->g0san);
  land(now, t.fctx);
  if (may_unwind && g->unwinding) throw Unwind{};
}

// Runs right after `g` switched away (on g0 or on the next fiber's stack):
// finishes what g asked for.
void after_switch(M* m, G* g) {
  Action action = m->action;
  m->action = Action::none;
  switch (action) {
    case Action::yield:
      g->state.store(GState::runnable, relaxed);
      if (rt->cfg.migrate_on_yield || !m->p) {
        rt->globq.put(g);
        wakep();
      } else {
        if (m->p->preempt.load(relaxed)) demote_next(m->p);
        runqput(m->p, g, false);
      }
      break;
    case Action::park: {
      std::uint64_t park_word = m->park_word;  // read before commit publishes g
      g->state.store(GState::waiting, relaxed);
      owner_add(m->p->parked, std::int64_t{1});
      if (m->commit && !m->commit(g, m->commit_arg)) {
        owner_add(m->p->parked, std::int64_t{-1});
        g->state.store(GState::runnable, relaxed);
        runqput(m->p, g, true);  // the word stays `parking`: the resumer takes it back
      } else if (park_word) {
        publish_evictable(g, park_word);
      }
      break;
    }
    case Action::exit:
      g->state.store(GState::dead, relaxed);
      owner_add(m->p->alive, std::int64_t{-1});
      unbind_stack(m->p, g);
      rt->gs.put(m->p, g);
      break;
    case Action::requeue:  // back from blocking() with no P to run on
      g->state.store(GState::runnable, relaxed);
      rt->globq.put(g);
      wakep();
      break;
    case Action::none:
      assert(false && "fiber switched out without an action");
  }
}

void schedule(M* m) {
  for (;;) {
    if (!m->p) {
      stopm(m);
      if (!m->p) return;
    }
    bool inherit = false;
    G* g = find_runnable(m, &inherit);
    if (!g) return;
    if (m->spinning) reset_spinning(m);
    execute(m, g, inherit);
  }
}

static void mstart(M* m) {
  set_this_m(m);
  m->g0san.tsan_fiber = sanitizer_thread_fiber();
  sanitizer_leave_signals();
  void* alt = enable_altstack();
  acquirep(m, m->nextp);
  m->nextp = nullptr;
  m->spinning = m->next_spinning;
  schedule(m);
  // Before the thread ends, so that what was sent to it is delivered.
  sanitizer_restore_signals(rt->caller_signals);
  disable_altstack(alt);
  set_this_m(nullptr);
}

void begin_shutdown() {
  rt->stopping.store(true, seq_cst);
  std::lock_guard lock(rt->lock);
  while (M* m = rt->midle) {
    rt->midle = m->link;
    m->parker.unpark();
  }
  poller()->interrupt();
}

[[noreturn]] static void fatal_overflow(G* g) {
  char name[32];
  g->copy_name(name);
  std::fprintf(stderr,
               "spindle: fatal: fiber #%llu '%s' overflowed its %zu-byte stack (unguarded stack: "
               "canary overwritten); raise Config::stack_size or SpawnOptions::stack_size\n",
               static_cast<unsigned long long>(g->id.load(relaxed)), name, g->stack.size);
  std::abort();
}

}  // namespace spindle::detail
