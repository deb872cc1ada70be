// Stack eviction of fibers parked in network waits: readiness, close,
// context cancellation and deadlines race the sweep that evicts the
// waiting fiber's stack (scheduler/README.md, "Stack eviction"). Each wake
// must arrive exactly once, with its outcome, and find the stack intact.
#include <doctest/doctest.h>
#include <spindle/context.hpp>
#include <spindle/net/conn.hpp>
#include <spindle/net/error.hpp>
#include <spindle/runtime.hpp>
#include <spindle/stats.hpp>
#include <spindle/waitgroup.hpp>

#include <chrono>
#include <memory>
#include <random>
#include <vector>

#include "../support/conn_pair.hpp"

namespace {

using namespace std::chrono_literals;
using spindle::net::Errc;

enum class Wake { data, close, cancel, deadline };

// Everything the reader shares lives here, on the heap: the reader is
// spawned evictable, so nothing may point into its stack.
struct Round {
  spindle::testing::ConnPair pair;
  spindle::CancelableContext ctx = spindle::with_cancel(spindle::Context::background());
  Wake wake = Wake::data;
  std::chrono::microseconds delay{0};
  bool ok = false;  // written by the reader before done()
};

bool outcome_matches(const Round& r, const spindle::net::Result<std::size_t>& n, char got) {
  switch (r.wake) {
    case Wake::data:
      return n.ok() && *n == 1 && got == 'x';
    case Wake::close:
      return !n.ok() && n.error() == Errc::closed;
    case Wake::cancel:
      return !n.ok() && n.error() == Errc::canceled;
    case Wake::deadline:
      return !n.ok() && n.error() == Errc::timeout;
  }
  return false;
}

void reader(Round& r) {
  unsigned char data[1024];  // known bytes across the wait
  for (std::size_t k = 0; k < sizeof data; ++k) data[k] = static_cast<unsigned char>(k * 13 + 5);
  if (r.wake == Wake::deadline)
    r.pair.server.set_read_deadline(spindle::net::Clock::now() + r.delay);
  char got = 0;
  auto n = r.pair.server.read_some(&got, 1, r.ctx.ctx);
  bool intact = true;
  for (std::size_t k = 0; k < sizeof data; ++k)
    intact = intact && data[k] == static_cast<unsigned char>(k * 13 + 5);
  r.ok = intact && outcome_matches(r, n, got);
}

void waker(Round& r) {
  if (r.wake == Wake::deadline) return;
  spindle::sleep_for(r.delay);
  switch (r.wake) {
    case Wake::data:
      REQUIRE(r.pair.client.write_all("x", 1).ok());
      break;
    case Wake::close:
      r.pair.server.close();
      break;
    case Wake::cancel:
      r.ctx.cancel();
      break;
    case Wake::deadline:
      break;
  }
}

}  // namespace

TEST_CASE("net waits racing stack eviction on 2 procs: one wake each, stacks intact") {
  constexpr int kBatches = 80, kPerBatch = 32;
  int failed = 0;
  spindle::Stats seen;
  spindle::Config cfg;
  cfg.procs = 2;
  cfg.stack_evict_after = 1ms;
  spindle::run(cfg, [&] {
    std::mt19937 rng(7);
    for (int b = 0; b < kBatches; ++b) {
      std::vector<std::unique_ptr<Round>> rounds;
      spindle::WaitGroup done;
      done.add(2 * kPerBatch);
      for (int i = 0; i < kPerBatch; ++i) {
        auto r = std::make_unique<Round>();
        r->pair = spindle::testing::connected_pair();
        r->wake = static_cast<Wake>(rng() % 4);
        // Half wake before a sweep can evict (sweeps run every 10 ms), half
        // after it may have, or while it does.
        r->delay = std::chrono::microseconds(rng() % 2 ? rng() % 2000 : 10'000 + rng() % 25'000);
        Round* p = r.get();
        rounds.push_back(std::move(r));
        spindle::go(spindle::SpawnOptions{.evictable_stack = true}, [p, &done] {
          reader(*p);
          done.done();
        });
        spindle::go([p, &done] {
          waker(*p);
          done.done();
        });
      }
      done.wait();
      for (auto& r : rounds) failed += !r->ok;
    }
    seen = spindle::stats();
  });
  CHECK(failed == 0);
  CHECK(seen.stacks_evicted > 0);
  CHECK(seen.stacks_restored == seen.stacks_evicted);
}
