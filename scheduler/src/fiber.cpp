// Fiber lifecycle: allocation and reuse of Gs with their stacks, spawning,
// the entry trampoline and exit.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <limits>
#include <new>
#include <stdexcept>

#include "fls.hpp"
#include "log.hpp"
#include "sched.hpp"

namespace spindle {

void Fiber::set_name(std::string_view n) noexcept {
  // Unnamed after unnamed writes nothing: a spawn should not dirty the
  // name's line (g.hpp).
  if (n.empty() && name[0].load(std::memory_order_relaxed) == '\0') return;
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
constexpr std::size_t kChunk = 256;             // Gs allocated at once
constexpr int kLocalFree = 64;                  // dead Gs a P keeps
constexpr std::size_t kBatch = kLocalFree / 2;  // Gs moved to or from the global list at once
constexpr std::uint64_t kIdBatch = 16;          // ids a P takes at once

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

// A new chunk of Gs, made outside the lock (value-initializing 256 Gs
// faults in ~20 pages; under the lock it kept the other Ps waiting to free
// theirs), linked into batches of kBatch. Returns the first batch and
// queues the others.
G* GAllocator::make_chunk(int* n) {
  auto chunk = std::make_unique<G[]>(kChunk);
  for (std::size_t i = 0; i < kChunk; ++i) {
    G* g = &chunk[i];
    g->allg_next = i + 1 < kChunk ? g + 1 : nullptr;
    g->schedlink = (i + 1) % kBatch != 0 ? g + 1 : nullptr;
  }
  G* first = &chunk[0];
  G* last = &chunk[kChunk - 1];
  std::lock_guard lock(mu_);
  for (std::size_t i = kChunk; i > kBatch;) {
    i -= kBatch;
    chunk[i].batch_len = kBatch;
    chunk[i].next_batch = free_;
    free_ = &chunk[i];
  }
  last->allg_next = allg_.load(relaxed);
  allg_.store(first, std::memory_order_release);  // publishes the links to dumps
  chunks_.push_back(std::move(chunk));
  *n = kBatch;
  return first;
}

// A batch of dead Gs linked by schedlink (null-terminated), new ones when
// the free list is empty.
G* GAllocator::get_batch(int* n) {
  {
    std::lock_guard lock(mu_);
    if (G* first = free_) {
      free_ = first->next_batch;
      *n = first->batch_len;
      return first;
    }
  }
  return make_chunk(n);
}

void GAllocator::put_global(G* first, G* last, int n) {
  last->schedlink = nullptr;
  first->batch_len = n;
  std::lock_guard lock(mu_);
  first->next_batch = free_;
  free_ = first;
}

G* GAllocator::get(P* pp) {
  G* g = nullptr;
  if (pp) {
    if (!pp->gfree) pp->gfree = get_batch(&pp->ngfree);
    g = pp->gfree;
    pp->gfree = g->schedlink;
    --pp->ngfree;
  } else {
    int n = 0;
    g = get_batch(&n);
    if (n > 1) put_global(g->schedlink, last_of(g), n - 1);
  }
  g->schedlink = nullptr;
#ifdef SPINDLE_TSAN
  // On first use: a chunk's 256 at once kept a spawner busy past its time
  // slice, and the preemption that followed reordered tests' fibers.
  if (!g->san.tsan_fiber) g->san.tsan_fiber = sanitizer_new_fiber();
#endif
  return g;
}

void GAllocator::put(P* pp, G* g) {
  g->state.store(GState::free, relaxed);
  g->id.store(0, relaxed);
  if (!pp) return put_global(g, g, 1);
  g->schedlink = pp->gfree;
  pp->gfree = g;
  if (++pp->ngfree < kLocalFree) return;
  // Move half to the global list so other Ps can reuse them.
  G* first = pp->gfree;
  G* last = first;
  for (std::size_t i = 1; i < kBatch; ++i) last = last->schedlink;
  pp->gfree = last->schedlink;
  pp->ngfree -= kBatch;
  put_global(first, last, kBatch);
}

// ---------------------------------------------------------------------------
// Stacks

void bind_stack(P* pp, G* g) {
  g->stack = rt->stacks.get(pp ? &pp->stacks : nullptr, g->stack_size);
#ifdef SPINDLE_ASAN
  g->san.bottom = g->stack.lo;
  g->san.size = g->stack.size;
#endif
  sanitizer_stack_reset(g->stack.lo, g->stack.size);
}

void bind_first_stack(P* pp, G* g) noexcept {
  try {
    bind_stack(pp, g);
  } catch (const std::bad_alloc&) {
    runtime_log().critical("fiber #{}: no memory for its {}-byte stack (mmap failed)",
                           g->id.load(relaxed), g->stack_size);
    runtime_log().flush();
    std::_Exit(2);  // Go's "out of memory": fatal
  }
}

void unbind_stack(P* pp, G* g) noexcept {
  rt->stacks.put(pp ? &pp->stacks : nullptr, g->stack);
  g->stack = {};
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

bctx::fcontext_t first_context(G* g) noexcept {
  char* sp = g->fn == g->inline_fn.data() ? g->stack.hi() : static_cast<char*>(g->fn);
  return bctx::make_fcontext(sp, static_cast<std::size_t>(sp - g->stack.lo), fiber_entry);
}

Spawn prepare_spawn(const SpawnOptions& opts, std::size_t size, std::size_t align) {
  if (!rt) throw std::logic_error("spindle::go called outside spindle::run");
  std::size_t stack = opts.stack_size ? round_stack_size(opts.stack_size) : rt->stack_size;
  if (size > stack / 4) throw std::length_error("spindle::go: callable too large for the stack");
  if (stack > std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("spindle::go: stack_size over 4 GiB");
  M* m = this_m();
  P* pp = m ? m->p : nullptr;
  G* g = rt->gs.get(pp);
  g->stack_size = static_cast<std::uint32_t>(stack);
  void* at = g->inline_fn.data();
  if (size > g->inline_fn.size() || align > G::kInlineAlign) {
    try {
      bind_stack(pp, g);
    } catch (...) {
      rt->gs.put(pp, g);
      throw;
    }
    auto top = reinterpret_cast<std::uintptr_t>(g->stack.hi());
    at = reinterpret_cast<void*>((top - size) & ~(std::uintptr_t{align} - 1) & ~std::uintptr_t{15});
  }
  g->id.store(next_fiber_id(pp), relaxed);
  g->set_name(opts.name);
  g->started = false;
  g->unwinding = false;
  g->evictable_stack = opts.evictable_stack;
  g->fn = at;
  return {g, at};
}

void abandon_spawn(void* gp) noexcept {
  M* m = this_m();
  P* pp = m ? m->p : nullptr;
  G* g = static_cast<G*>(gp);
  unbind_stack(pp, g);
  rt->gs.put(pp, g);
}

void launch(void* gp, void (*invoke)(void*), void (*destroy)(void*)) noexcept {
  G* g = static_cast<G*>(gp);
  g->invoke = invoke;
  g->destroy = destroy;
  g->state.store(GState::runnable, relaxed);
  M* m = this_m();
  if (P* pp = m ? m->p : nullptr) {
    owner_add(pp->spawned, std::uint64_t{1});
    owner_add(pp->alive, std::int64_t{1});
    // Go's newproc: the spawner's runnext, so the new fiber runs next,
    // near its parent's data. A poll's callbacks (net's fiber-less waits)
    // spawn one fiber per ready connection: those queue in edge order, or
    // each would jump ahead of the ones spawned before it.
    runqput(pp, g, !m->poll_list);
    wakep();
    return;
  }
  rt->spawned_outside.fetch_add(1, relaxed);
  rt->alive_outside.fetch_add(1, relaxed);
  put_without_p(m, g);
}

}  // namespace detail
}  // namespace spindle
