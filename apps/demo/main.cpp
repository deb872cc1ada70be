// The smallest real Spindle program until the HTTP server exists: a
// pipeline of fibers on every core, with a schedtrace line each second.
//   spindle-demo [fibers] [rounds]
#include <spdlog/spdlog.h>
#include <spindle/runtime.hpp>
#include <spindle/stats.hpp>
#include <spindle/waitgroup.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>

int main(int argc, char** argv) {
  long fibers = argc > 1 ? std::atol(argv[1]) : 100'000;
  long rounds = argc > 2 ? std::atol(argv[2]) : 5;
  spindle::run({}, [&] {
    for (long r = 1; r <= rounds; ++r) {
      auto start = std::chrono::steady_clock::now();
      spindle::WaitGroup wg;
      std::atomic<long> sum{0};
      wg.add(fibers);
      for (long i = 0; i < fibers; ++i)
        spindle::go([&, i] {
          spindle::sleep_for(std::chrono::milliseconds(i % 100));
          sum.fetch_add(i, std::memory_order_relaxed);
          wg.done();
        });
      wg.wait();
      auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
      spdlog::info("round {}: {} fibers slept and summed to {} in {:.1f} ms", r, fibers, sum.load(),
                   ms.count());
      spdlog::info("{}", spindle::schedtrace_line());
    }
  });
}
