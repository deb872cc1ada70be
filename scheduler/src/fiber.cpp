// Fiber lifecycle: allocation and reuse of Gs with their stacks, spawning,
// the entry trampoline and exit.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <stdexcept>

#include "fls.hpp"
#include "log.hpp"
#include "sched.hpp"

namespace spindle {

void Fiber::set_name(std::string_view n) noexcept {
  std::size_t len = std::min(n.size(), name.size() - 1);
  for (std::size_t i = 0; i < len; ++i) name[i].store(n[i], std::memory_order_relaxed);
  name[len].store('\0', std::memory_order_relaxed);
}

void Fiber::copy_name(char (&out)[32]) const noexcept {
  for (std::size_t i = 0; i < name.size(); ++i) out[i] = name[i].load(std::memory_order_relaxed);
  out[31] = '\0';
}

namespace detail {

namespace {
constexpr auto relaxed = std::memory_order_relaxed;
constexpr std::size_t kChunk = 256;      // Gs allocated at once
constexpr int kLocalFree = 64;           // dead Gs a P keeps
constexpr int kGlobalFreeStacks = 4096;  // dead Gs whose stacks the runtime keeps
// Idle stacks beyond those are unmapped after a period unused, at most a
// slice per sysmon round (~1 ms of munmap) so sysmon keeps its pace.
constexpr std::int64_t kStackReleasePeriod = 1'000'000'000;  // ns
constexpr int kReleaseSliceBatches = 8;
constexpr std::uint64_t kIdBatch = 16;  // ids a P takes at once

std::uint64_t next_fiber_id(P* pp) {
  if (!pp) return rt->ids.fetch_add(1, relaxed);
  if (pp->next_id == pp->end_id) {
    pp->next_id = rt->ids.fetch_add(kIdBatch, relaxed);
    pp->end_id = pp->next_id + kIdBatch;
  }
  return pp->next_id++;
}
}  // namespace

const char* to_string(GState s) noexcept {
  switch (s) {
    case GState::free:
      return "free";
    case GState::runnable:
      return "runnable";
    case GState::running:
      return "running";
    case GState::waiting:
      return "waiting";
    case GState::blocking:
      return "blocking";
    case GState::dead:
      return "dead";
  }
  return "?";
}

// ---------------------------------------------------------------------------
// GAllocator

GAllocator::~GAllocator() {
  for (G* g = all(); g; g = g->allg_next) sanitizer_free_fiber(g->san.tsan_fiber);
}

G* GAllocator::make() {
  if (chunks_.empty() || chunk_used_ == kChunk) {
    chunks_.push_back(std::make_unique<G[]>(kChunk));
    chunk_used_ = 0;
  }
  G* g = &chunks_.back()[chunk_used_++];
  g->san.tsan_fiber = sanitizer_new_fiber();
  g->allg_next = allg_.load(relaxed);
  allg_.store(g, std::memory_order_release);  // publishes g's links to dumps
  return g;
}

// A batch of dead Gs linked by schedlink (null-terminated), or a new G
// (*n = 1) when the free lists are empty.
G* GAllocator::get_batch(int* n) {
  std::lock_guard lock(mu_);
  G* first = nullptr;
  if (!stacked_.empty()) {
    first = stacked_.front();
    stacked_.pop_front();
    nstacked_ -= first->batch_len;
    low_water_ = std::min(low_water_, nstacked_);
  } else if (bare_) {
    first = bare_;
    bare_ = first->next_batch;
  } else {
    *n = 1;
    return make();
  }
  *n = first->batch_len;
  return first;
}

void GAllocator::put_global(G* first, G* last, int n) {
  last->schedlink = nullptr;
  first->batch_len = n;
  std::lock_guard lock(mu_);
  stacked_.push_front(first);
  nstacked_ += n;
}

// The oldest batch if it is still one of the idle ones, or nullptr.
G* GAllocator::take_idle_batch() {
  std::lock_guard lock(mu_);
  to_release_ = std::min(to_release_, nstacked_ - kGlobalFreeStacks);
  if (to_release_ <= 0 || stacked_.empty()) return nullptr;
  G* cold = stacked_.back();
  stacked_.pop_back();
  nstacked_ -= cold->batch_len;
  low_water_ = std::min(low_water_, nstacked_);
  to_release_ -= cold->batch_len;
  return cold;
}

void GAllocator::release_idle_stacks(std::int64_t now) {
  if (now >= next_release_) {
    std::lock_guard lock(mu_);
    // The oldest low_water_ Gs were not handed out all period.
    to_release_ = low_water_ - kGlobalFreeStacks;
    low_water_ = nstacked_;
    next_release_ = now + kStackReleasePeriod;
  }
  for (int i = 0; i < kReleaseSliceBatches; ++i) {
    G* cold = take_idle_batch();
    if (!cold) return;
    for (G* g = cold; g; g = g->schedlink) stack_release(g->stack);  // we own them now
    std::lock_guard lock(mu_);
    cold->next_batch = bare_;
    bare_ = cold;
  }
}

G* GAllocator::get(P* pp, std::size_t stack_size) {
  if (pp && !pp->gfree) pp->gfree = get_batch(&pp->ngfree);
  G* g = nullptr;
  if (pp) {
    g = pp->gfree;
    pp->gfree = g->schedlink;
    --pp->ngfree;
  } else {
    int n = 0;
    g = get_batch(&n);
    if (n > 1) put_global(g->schedlink, last_of(g), n - 1);
  }
  g->schedlink = nullptr;
  if (g->stack && g->stack.size != stack_size) stack_release(g->stack);
  if (!g->stack) {
    try {
      g->stack = stack_allocate(stack_size);
      g->san.bottom = g->stack.lo;
      g->san.size = g->stack.size;
    } catch (...) {
      put_global(g, g, 1);
      throw;
    }
  }
  sanitizer_stack_reset(g->stack.lo, g->stack.size);
  return g;
}

void GAllocator::put(P* pp, G* g) {
  stack_trim(g->stack);
  g->state.store(GState::free, relaxed);
  g->id.store(0, relaxed);
  if (!pp) return put_global(g, g, 1);
  g->schedlink = pp->gfree;
  pp->gfree = g;
  if (++pp->ngfree < kLocalFree) return;
  // Move half to the global list so other Ps can reuse them.
  G* first = pp->gfree;
  G* last = first;
  for (int i = 1; i < kLocalFree / 2; ++i) last = last->schedlink;
  pp->gfree = last->schedlink;
  pp->ngfree -= kLocalFree / 2;
  put_global(first, last, kLocalFree / 2);
}

void GAllocator::release_stacks() {
  for (G* g = all(); g; g = g->allg_next) stack_release(g->stack);
}

// ---------------------------------------------------------------------------
// Spawning

// Out of line and cold: inlined, its string and formatting state made
// fiber_entry's frame 520 bytes, on every fiber's stack for its whole life
// (and in every evicted stack's copy).
[[noreturn, gnu::noinline, gnu::cold]] static void die_uncaught(G* g) {
  char name[32];
  g->copy_name(name);
  std::string what = "unknown exception";
  try {
    throw;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  runtime_log().critical("fiber #{} '{}' ended by an uncaught exception: {}", g->id.load(relaxed),
                         name, what);
  runtime_log().flush();
  std::_Exit(2);  // like a Go panic: the process ends, exit status 2
}

static void fiber_entry(bctx::transfer_t t) {
  M* m = static_cast<M*>(t.data);
  G* g = m->curg;
  sanitizer_after_switch(g->san, m->prev ? nullptr : &m->g0san);
  land(m, t.fctx);
  try {
    if (!g->unwinding) g->invoke(g->fn);
  } catch (const Unwind&) {
  } catch (...) {
    die_uncaught(g);
  }
  g->destroy(g->fn);
  fls_destroy(g);
  m = this_m();
  m->action = Action::exit;
  switch_out(m, g, true);
  __builtin_unreachable();
}

Spawn prepare_spawn(const SpawnOptions& opts, std::size_t size, std::size_t align) {
  if (!rt) throw std::logic_error("spindle::go called outside spindle::run");
  std::size_t stack = opts.stack_size ? round_stack_size(opts.stack_size) : rt->stack_size;
  if (size > stack / 4) throw std::length_error("spindle::go: callable too large for the stack");
  M* m = this_m();
  P* pp = m ? m->p : nullptr;
  G* g = rt->gs.get(pp, stack);
  g->id.store(next_fiber_id(pp), relaxed);
  g->set_name(opts.name);
  g->started = false;
  g->unwinding = false;
  g->evictable_stack = opts.evictable_stack;
  auto top = reinterpret_cast<std::uintptr_t>(g->stack.hi());
  auto at = (top - size) & ~(std::uintptr_t{align} - 1) & ~std::uintptr_t{15};
  g->fn = reinterpret_cast<void*>(at);
  return {g, g->fn};
}

void abandon_spawn(void* gp) noexcept {
  M* m = this_m();
  rt->gs.put(m ? m->p : nullptr, static_cast<G*>(gp));
}

void launch(void* gp, void (*invoke)(void*), void (*destroy)(void*)) noexcept {
  G* g = static_cast<G*>(gp);
  g->invoke = invoke;
  g->destroy = destroy;
  char* sp = static_cast<char*>(g->fn);
  g->ctx = bctx::make_fcontext(sp, static_cast<std::size_t>(sp - g->stack.lo), fiber_entry);
  g->state.store(GState::runnable, relaxed);
  M* m = this_m();
  if (P* pp = m ? m->p : nullptr) {
    owner_add(pp->spawned, std::uint64_t{1});
    owner_add(pp->alive, std::int64_t{1});
    runqput(pp, g, true);
    wakep();
    return;
  }
  OutsideCall call;
  rt->spawned_outside.fetch_add(1, relaxed);
  rt->alive_outside.fetch_add(1, relaxed);
  rt->globq.put(g);
  wakep();
}

}  // namespace detail
}  // namespace spindle
