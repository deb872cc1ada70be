// The local run queue under real concurrency: one owner putting and
// getting, thieves stealing; every fiber must come out exactly once.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "runq.hpp"

using spindle::detail::G;
using spindle::detail::LocalQueue;

namespace {

// Runs owner + thieves over `items` fake fibers; returns times each was seen.
std::vector<int> churn(std::uint32_t slots, int items, int thieves) {
  std::vector<G> gs(items);
  std::vector<std::atomic<int>> seen(items);
  LocalQueue owner_q(slots);
  std::vector<std::unique_ptr<LocalQueue>> thief_qs;
  for (int i = 0; i < thieves; ++i) thief_qs.push_back(std::make_unique<LocalQueue>(slots));
  std::atomic<bool> done{false};
  auto mark = [&](G* g) { seen[g - gs.data()].fetch_add(1, std::memory_order_relaxed); };

  std::vector<std::thread> threads;
  for (int t = 0; t < thieves; ++t) {
    threads.emplace_back([&, t] {
      LocalQueue& mine = *thief_qs[t];
      bool inherit;
      while (!done.load(std::memory_order_acquire) || !owner_q.empty()) {
        if (G* g = mine.steal_from(owner_q, t % 2 == 0)) mark(g);
        while (G* g = mine.get(&inherit)) mark(g);
      }
    });
  }
  std::vector<G*> overflow;
  bool inherit;
  for (int i = 0; i < items; ++i) {
    for (G* g : owner_q.put(&gs[i], i % 3 == 0)) overflow.push_back(g);
    if (i % 5 == 0)
      if (G* g = owner_q.get(&inherit)) mark(g);
  }
  while (G* g = owner_q.get(&inherit)) mark(g);
  done.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  for (G* g : overflow) mark(g);
  std::vector<int> out;
  for (auto& s : seen) out.push_back(s.load());
  return out;
}

}  // namespace

TEST_CASE("local queue: every fiber comes out exactly once under stealing") {
  for (std::uint32_t slots : {4u, 256u}) {
    CAPTURE(slots);
    std::vector<int> seen = churn(slots, 200'000, 2);
    int wrong = 0;
    for (int s : seen) wrong += s != 1;
    CHECK(wrong == 0);
  }
}

TEST_CASE("local queue: runnext goes first and is stealable on request") {
  std::vector<G> gs(3);
  LocalQueue q(4), thief(4);
  CHECK(q.put(&gs[0], false).empty());
  CHECK(q.put(&gs[1], true).empty());
  CHECK(q.size() == 2);
  bool inherit = false;
  CHECK(q.get(&inherit) == &gs[1]);
  CHECK(inherit);
  CHECK(q.get(&inherit) == &gs[0]);
  CHECK_FALSE(inherit);
  CHECK(q.put(&gs[2], true).empty());
  CHECK(thief.steal_from(q, false) == nullptr);
  CHECK(thief.steal_from(q, true) == &gs[2]);
  CHECK(q.empty());
}

TEST_CASE("local queue: a full queue hands half plus one to the global queue") {
  std::vector<G> gs(5);
  LocalQueue q(4);
  for (int i = 0; i < 4; ++i) CHECK(q.put(&gs[i], false).empty());
  std::span<G* const> spill = q.put(&gs[4], false);
  REQUIRE(spill.size() == 3);
  CHECK(spill[0] == &gs[0]);
  CHECK(spill[1] == &gs[1]);
  CHECK(spill[2] == &gs[4]);
  CHECK(q.size() == 2);
}

TEST_CASE("local queue: a chain goes in as far as it fits, in order, and the rest comes back") {
  std::vector<G> gs(7);
  LocalQueue q(4);
  CHECK(q.put(&gs[0], false).empty());
  for (int i = 1; i < 6; ++i) gs[i].schedlink = &gs[i + 1];
  G* rest = q.put_chain(&gs[1]);
  // gs[0] keeps its turn; 1..3 fill the ring; 4..6 come back linked.
  REQUIRE(rest == &gs[4]);
  CHECK(rest->schedlink == &gs[5]);
  CHECK(rest->schedlink->schedlink == &gs[6]);
  bool inherit = false;
  for (int i = 0; i < 4; ++i) CHECK(q.get(&inherit) == &gs[i]);
  CHECK(q.empty());
}
