// P, M and the runtime's shared state. The rules for who may touch what are
// in scheduler/README.md; each field below names its guard.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "g.hpp"
#include "globalq.hpp"
#include "parker.hpp"
#include "poller.hpp"
#include "runq.hpp"
#include "spindle/park.hpp"
#include "spindle/runtime.hpp"
#include "stack_pool.hpp"
#include "timers.hpp"

namespace spindle::detail {

enum class PStatus : std::uint8_t { idle, running, blocking };

// A logical processor: the right to run fibers, and the per-processor state
// that makes that cheap (queue, timers, free fibers).
struct P {
  P(int id, std::uint32_t slots) : id(id), runq(slots), rng(0x9e3779b9u * (id + 1)) {}

  const int id;
  // idle: on the idle list, owned by nobody (sched lock guards the list).
  // running: owned by exactly one M. blocking: its M is in blocking(); the
  // first of that M (on return) or sysmon (retake) to CAS it away wins.
  std::atomic<PStatus> status{PStatus::idle};
  LocalQueue runq;
  TimerHeap timers;

  // Owner-written, read by sysmon and stats (relaxed: observations only).
  // The counters below change with owner_add(): the owner is the only
  // writer, so a plain load and store, no locked instruction per spawn,
  // park or exit. (Calls from threads without a P count in Runtime.)
  std::atomic<std::uint64_t> schedtick{0};  // +1 per new time slice
  std::atomic<std::uint64_t> blocktick{0};  // +1 per blocking() call
  std::atomic<G*> curg{nullptr};            // for stall reports (release/acquire)
  std::atomic<std::uint64_t> steals{0};
  std::atomic<std::int64_t> parked{0};  // parks minus readies done on this P
  std::atomic<std::int64_t> alive{0};   // spawns minus exits done on this P
  // Per P, not one runtime-wide counter: that shared line cost a spawn
  // ~90% of its time once two Ps spawned and exited fibers at once.
  std::atomic<std::uint64_t> spawned{0};
  // Set by sysmon when the slice is overrun; cleared by the owner at the
  // next slice. Relaxed: a late read only delays the yield a little.
  std::atomic<bool> preempt{false};

  // Owner only.
  G* gfree = nullptr;  // dead fibers, for reuse
  int ngfree = 0;
  StackCache stacks;
  std::uint64_t next_id = 0, end_id = 0;  // a batch of fiber ids
  std::uint32_t rng;

  P* link = nullptr;  // idle list; guarded by Runtime::lock

  // sysmon only.
  std::uint64_t seen_tick = ~0ull, seen_blocktick = ~0ull;  // never a real tick
  std::int64_t seen_when = 0, seen_block_when = 0;
  bool stall_reported = false;
};

enum class Action : std::uint8_t { none, yield, park, exit, requeue };

// An OS thread. Its own stack ("g0", as in Go) runs the scheduler loop.
// A fiber that stops switches to g0, or straight to the next fiber of its
// P's queue when nothing else needs the scheduler's attention.
struct M {
  explicit M(int id) : id(id) {}

  const int id;
  P* p = nullptr;         // the P it runs; written only by this M
  P* blockp = nullptr;    // its P while in blocking(); this M only
  int blocking_nest = 0;  // blocking() inside blocking(); this M only
  bool spinning = false;
  // Inside netpoll(): the poll's ReadyList. Fibers the poll's callbacks
  // spawn queue behind each other in the order of their edges, not through
  // runnext; on an M without a P (the idle poller) they, and fibers the
  // callbacks ready, join the list, so they come back with the P this M
  // takes next instead of waking a second M to run them while this one
  // goes to sleep (a P-hand-off per poll, with futex wake-ups, when every
  // request of an HTTP keep-alive connection spawned its fiber there).
  // This M only.
  ReadyList* poll_list = nullptr;
  G* curg = nullptr;  // this M only
  // The fiber this M just switched away from, whose action is pending
  // until the switch lands (nullptr: the switch left g0). This M only.
  G* prev = nullptr;
  bctx::fcontext_t g0ctx = nullptr;
  SanitizerStack g0san;

  // What g0 does with the fiber that just switched to it (see proc.cpp).
  Action action = Action::none;
  Commit commit = nullptr;
  void* commit_arg = nullptr;
  // Action::park: the fiber's parking stack word (evict.hpp), 0 for a
  // pinned park. Written by park() for every park.
  std::uint64_t park_word = 0;

  // Handed over by startm() before unpark; the Parker's mutex orders it.
  P* nextp = nullptr;
  bool next_spinning = false;
  Parker parker;
  M* link = nullptr;  // idle list; guarded by Runtime::lock

  std::thread thread;  // empty for M0, the thread that called run()
};

// Fibers are allocated in chunks and never freed while the runtime runs, so
// sysmon and dumps may read any G at any time (Go's allgs).
class GAllocator {
 public:
  ~GAllocator();
  G* get(P* pp);          // a dead G, without a stack; pp may be null
  void put(P* pp, G* g);  // g is dead and has given back its stack
  G* all() const { return allg_.load(std::memory_order_acquire); }

 private:
  G* get_batch(int* n);
  void put_global(G* first, G* last, int n);
  G* make_chunk(int* n);

  // Batches move whole, so a P refills its cache with one short critical
  // section and touches no other P's dead Gs under the lock; newest first,
  // whose lines are the warmest. Gs are never freed while the runtime runs.
  std::mutex mu_;
  G* free_ = nullptr;                         // linked by next_batch; guarded by mu_
  std::vector<std::unique_ptr<G[]>> chunks_;  // guarded by mu_
  std::atomic<G*> allg_{nullptr};             // released after links are set
};

struct Runtime {
  explicit Runtime(const Config& cfg);

  Config cfg;
  int nprocs;
  std::size_t stack_size;
  // The signal mask of run()'s caller, which sysmon inherits and an M
  // returns to as it ends (TSan builds: sanitizers.hpp). Written before any
  // M starts.
  sigset_t caller_signals{};
  std::vector<std::unique_ptr<P>> ps;

  // "sched.lock": guards the idle P and idle M lists and allm.
  std::mutex lock;
  P* pidle = nullptr;
  M* midle = nullptr;
  std::vector<std::unique_ptr<M>> allm;
  // Written under lock, read without it (seq_cst: the idle protocol).
  std::atomic<int> npidle{0};
  std::atomic<int> nmidle{0};
  std::atomic<int> nmspinning{0};

  GlobalQueue globq;
  // The poller in use: the TimerPoller below until net/ installs its own
  // (install_poller, under lock). Read with acquire anywhere.
  std::atomic<Poller*> poller;
  std::unique_ptr<Poller> timer_poller;
  std::unique_ptr<Poller> io_poller;        // guarded by lock
  std::atomic<bool> poller_busy{false};     // an M is blocked in poller->poll
  std::atomic<std::int64_t> poll_until{0};  // its deadline; 0 while computing
  std::atomic<std::int64_t> last_poll{0};   // nanotime() of the last poll, any kind

  GAllocator gs;
  StackPool stacks;
  std::atomic<std::uint64_t> ids{1};
  std::atomic<std::int64_t> parked_outside{0};  // readies with no P
  std::atomic<std::int64_t> alive_outside{0};   // spawns with no P
  std::atomic<std::uint64_t> spawned_outside{0};
  // Calls from threads without a P (go(), ready()) still inside the
  // runtime: run() waits for them before it destroys the Ms whose parkers
  // they may be signalling (see OutsideCall).
  std::atomic<int> outside_calls{0};
  std::atomic<std::uint64_t> thread_parks{0}, thread_unparks{0};
  std::atomic<std::uint64_t> preempt_requests{0}, handoffs{0};
  // Counters (relaxed): written by sysmon and by Ms that restore a stack.
  std::atomic<std::uint64_t> stacks_evicted{0}, stacks_restored{0};

  std::atomic<bool> stopping{false};
  std::int64_t start_time;
};

// Adds to one of a P's owner-only counters (see P).
template <class T>
inline void owner_add(std::atomic<T>& counter, T delta) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}

// The running runtime; set by run() before any thread starts, cleared after
// all have stopped.
extern Runtime* rt;

// The M of the calling thread. Out of line on purpose: a fiber that resumed
// on another thread must re-read it (see fiber_local.hpp and LESSONS.md).
M* this_m() noexcept;
void set_this_m(M* m) noexcept;

// proc.cpp
void schedule(M* m);
void runqput(P* pp, G* g, bool next);
// Polls without blocking and queues what became ready (anyone may call it).
G* netpoll(std::int64_t deadline);
inline Poller* poller() {
  return rt->poller.load(std::memory_order_acquire);
}
// Queues a schedlink chain of readied fibers: one returned to run now if pp
// is given, the rest on pp (or all on the global queue without pp).
G* inject(P* pp, G* list);
// Queues a runnable fiber from a thread without a P (go() and ready()):
// on the idle poller, onto its poll's list (M::poll_list); elsewhere onto
// the global queue, waking an M for it.
void put_without_p(M* m, G* g) noexcept;
// ready() with a choice: next=false queues at the tail (FIFO), for wake-ups
// that are not hand-offs, such as timers firing in deadline order.
void ready(G* g, bool next) noexcept;
void wakep();
// Brackets a call from a thread with no P that queues work and wakes an M.
// The work may run, finish and let main_fn return before the call is done
// signalling that M's parker; run() waits until no such call is in flight
// before it destroys the Ms. seq_cst increment: it happens before the work
// is published, so before anything the work causes; release decrement:
// the call's last touch of an M happens before run()'s acquire load.
struct OutsideCall {
  OutsideCall() noexcept { rt->outside_calls.fetch_add(1, std::memory_order_seq_cst); }
  ~OutsideCall() { rt->outside_calls.fetch_sub(1, std::memory_order_release); }
  OutsideCall(const OutsideCall&) = delete;
  OutsideCall& operator=(const OutsideCall&) = delete;
};
void startm(P* pp, bool spinning);
void handoffp(P* pp);
void begin_shutdown();
// From a fiber to its M's scheduler stack; returns when the fiber resumes
// (throwing Unwind there if the runtime is shutting down and may_unwind).
void switch_out(M* m, G* g, bool dies, bool may_unwind = true);
void after_switch(M* m, G* g);
void land(M* m, bctx::fcontext_t from);
void execute(M* m, G* g, bool inherit);
void add_timer(Timer* t);
// fiber.cpp. A fiber's stack: bind_stack throws std::bad_alloc;
// bind_first_stack, for a fiber about to run, ends the process instead.
void bind_stack(P* pp, G* g);
void bind_first_stack(P* pp, G* g) noexcept;
void unbind_stack(P* pp, G* g) noexcept;
// The context a spawned fiber starts from, at its first run.
bctx::fcontext_t first_context(G* g) noexcept;
void acquirep(M* m, P* pp);
P* pidleget();         // caller holds rt->lock
void pidleput(P* pp);  // caller holds rt->lock

// fault.cpp
void install_fault_handler();
void remove_fault_handler();
void* enable_altstack();
void disable_altstack(void* stack);

// sysmon.cpp
void sysmon_main();

}  // namespace spindle::detail
