// Parks an OS thread (an idle M) until another thread unparks it. An
// unpark() that comes first is remembered, so a wake-up cannot be lost.
#pragma once

#include <condition_variable>
#include <mutex>

namespace spindle::detail {

class Parker {
 public:
  void park() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return notified_; });
    notified_ = false;
  }
  void unpark() {
    {
      std::lock_guard lock(mu_);
      notified_ = true;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;  // guarded by mu_
};

}  // namespace spindle::detail
