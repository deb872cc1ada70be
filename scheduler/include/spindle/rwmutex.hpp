// RWMutex, as Go's sync.RWMutex: a reader/writer lock held by any number
// of readers or by one writer. Waiting parks the fiber (a plain thread
// blocks). Works with std::unique_lock (lock/unlock) and std::shared_lock
// (lock_shared/unlock_shared).
//
//  - Writer preference: once a writer calls lock(), new readers wait until
//    it has had its turn, so a stream of readers cannot starve a writer. A
//    reader must therefore not take the lock shared again while it holds
//    it (recursive read locking): a writer in between deadlocks both.
//  - Writers queue on a spindle::Mutex, with its fairness (starvation
//    mode). When a writer unlocks, the readers that queued behind it all
//    get in before the next writer.
//  - unlock() when not write-locked, or unlock_shared() when not
//    read-locked, throws std::logic_error (Go: a fatal error).
//  - Not owned by a fiber: one fiber may lock it and another unlock it.
#pragma once

#include <atomic>
#include <cstdint>

#include "spindle/mutex.hpp"
#include "spindle/wait_list.hpp"

namespace spindle {

class RWMutex {
 public:
  RWMutex() = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  void lock();
  bool try_lock() noexcept;
  void unlock();

  void lock_shared() {
    // Acquire: the readers see the last writer's critical section.
    if (readers_.fetch_add(1, std::memory_order_acquire) + 1 < 0) wait_for_writer();
  }
  bool try_lock_shared() noexcept;
  void unlock_shared() {
    // Release: the next writer's critical section comes after our reads.
    std::int32_t r = readers_.fetch_sub(1, std::memory_order_release) - 1;
    if (r < 0) unlock_shared_slow(r);
  }

 private:
  // Subtracted from readers_ by a writer: the count goes negative, which
  // new readers take as "wait", yet still counts them.
  static constexpr std::int32_t kMaxReaders = 1 << 30;

  void wait_for_writer();
  void unlock_shared_slow(std::int32_t r);

  Mutex writer_;  // held by the writer that is pending or holds the lock
  // Readers holding or waiting for the lock, minus kMaxReaders while a
  // writer is pending or holds it (Go's readerCount).
  std::atomic<std::int32_t> readers_{0};
  // Readers a pending writer still waits for (Go's readerWait); the one
  // that brings it to zero wakes the writer.
  std::atomic<std::int32_t> departing_{0};
  detail::Sema writer_sem_;  // the pending writer sleeps here
  detail::Sema reader_sem_;  // readers that came after a writer sleep here
};

}  // namespace spindle
