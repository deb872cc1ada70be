// Stack eviction: the resumer's side (reclaim_stack) and sysmon's clock
// hand (StackSweep). The state machine is in evict.hpp.
//
// Finding candidates. The sweep walks the all-G list (Gs are never freed,
// so a saved position stays valid) a bounded number of Gs per round rather
// than keeping per-P lists of parked fibers: a list would cost every
// evictable park and wake a link and an unlink (and a lock, since the
// waker runs anywhere), where the sweep costs the park nothing. It needs
// no timestamp on the park either: a G seen parked with the same word
// (the same park) at two visits at least stack_evict_after apart has been
// parked that long.
#include <thread>

#include "evict.hpp"
#include "sched.hpp"

namespace spindle::detail {

namespace {
constexpr auto relaxed = std::memory_order_relaxed;
// One sweep round every 10 ms, visiting at most 1,024 Gs (one cache line
// each: ~100,000 Gs/s, a full pass of a million fibers in ~10 s) and
// evicting at most 256 stacks (a copy and a madvise each, a few us: the
// round stays near a millisecond, well inside sysmon's watch of time
// slices). A new pass starts at most every stack_evict_after / 2, so a
// G's consecutive visits are about that far apart and it is evicted
// between stack_evict_after and ~1.5x that after it parked.
constexpr std::int64_t kRoundPeriod = 10'000'000;  // ns
constexpr int kVisitsPerRound = 1024;
constexpr int kEvictionsPerRound = 256;

// Claims g's stack (parked -> evicting) and evicts it. sysmon only.
bool evict(G* g, std::uint64_t parked) {
  std::uint64_t gen = parked & ~kStackStateMask;
  if (!g->stack_word.compare_exchange_strong(parked, gen | kEvicting, std::memory_order_acquire,
                                             relaxed))
    return false;  // a resumer took it back
  bool done = stack_evict(
      g->stack, static_cast<const char*>(g->ctx.load(std::memory_order_relaxed)), g->evicted);
  g->stack_word.store(gen | (done ? kEvicted : kParked), std::memory_order_release);
  if (done) rt->stacks_evicted.fetch_add(1, relaxed);
  return done;
}

bool visit(G* g, std::int64_t now, std::int64_t after) {
  std::uint64_t word = g->stack_word.load(relaxed);
  std::uint64_t state = word & kStackStateMask;
  if (state != kParking && state != kParked) return false;
  if (word != g->sweep_seen) {  // a new park since the last visit
    g->sweep_seen = word;
    g->sweep_seen_when = now;
    return false;
  }
  return state == kParked && now - g->sweep_seen_when >= after && evict(g, word);
}
}  // namespace

void reclaim_stack(G* g) noexcept {
  for (int spins = 0;;) {
    // Acquire: pairs with the evictor's release of `evicted` (G::evicted).
    std::uint64_t word = g->stack_word.load(std::memory_order_acquire);
    std::uint64_t active = word & ~kStackStateMask;
    switch (word & kStackStateMask) {
      case kActive:
        return;
      case kParking:
      case kParked:
        if (g->stack_word.compare_exchange_weak(word, active, std::memory_order_acquire, relaxed))
          return;
        break;
      case kEvicting:  // a copy and a madvise: microseconds, unless sysmon is descheduled
        if (++spins > 64) std::this_thread::yield();
        break;
      case kEvicted:
        stack_restore(g->stack, g->evicted);
        g->stack_word.store(active, relaxed);  // nobody else writes from `evicted`
        rt->stacks_restored.fetch_add(1, relaxed);
        return;
    }
  }
}

void StackSweep::run(std::int64_t now) noexcept {
  std::int64_t after =
      std::chrono::duration_cast<std::chrono::nanoseconds>(rt->cfg.stack_evict_after).count();
  if (after <= 0 || now < next_round_) return;
  next_round_ = now + kRoundPeriod;
  if (!hand_) {
    if (now - pass_start_ < after / 2) return;
    pass_start_ = now;
    hand_ = rt->gs.all();
  }
  int evicted = 0;
  for (int i = 0; hand_ && i < kVisitsPerRound && evicted < kEvictionsPerRound; ++i) {
    evicted += visit(hand_, now, after);
    hand_ = hand_->allg_next;
  }
}

}  // namespace spindle::detail
