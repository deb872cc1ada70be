// The default poller: timers and interrupts only, until net/ installs
// Asio's reactor (spindle/poller.hpp).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "g.hpp"
#include "spindle/poller.hpp"

namespace spindle::detail {

class TimerPoller final : public Poller {
 public:
  void poll(std::int64_t deadline, ReadyList& ready) override;
  void interrupt() override;
  bool has_waiters() const override { return false; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool interrupted_ = false;  // guarded by mu_
};

}  // namespace spindle::detail
