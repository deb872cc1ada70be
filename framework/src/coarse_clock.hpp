// The clock the server's timeouts start from.
#pragma once

#include <time.h>

#include <chrono>

#include "spindle/net/conn.hpp"

namespace spindle::http::detail {

// Now, for a deadline: CLOCK_MONOTONIC_COARSE (the kernel's monotonic time
// as of its last tick, the same timeline as steady_clock but behind it by
// up to a tick, 1-4 ms) plus one tick, so a timeout never ends early and
// ends at most a tick late. A request sets three deadlines (idle, header,
// write), and a full clock read (the TSC) cost ~2% of a small request's
// CPU on these VMs; the coarse one is a load from the vDSO page. nginx
// likewise times everything from a clock cached once per event-loop turn.
inline net::Deadline coarse_now() noexcept {
  static const std::chrono::nanoseconds tick = [] {
    timespec res;
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    return std::chrono::seconds(res.tv_sec) + std::chrono::nanoseconds(res.tv_nsec);
  }();
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return net::Deadline(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec) +
                       tick);
}

}  // namespace spindle::http::detail
