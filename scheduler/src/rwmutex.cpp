// RWMutex: Go's sync.RWMutex algorithm (src/sync/rwmutex.go) over
// detail::Sema. A writer first excludes other writers (writer_), then makes
// readers_ negative so that new readers queue on reader_sem_, and waits on
// writer_sem_ for the readers it found to leave. unlock() wakes exactly the
// readers that queued meanwhile, then lets the next writer in.
#include "spindle/rwmutex.hpp"

#include <stdexcept>

namespace spindle {

void RWMutex::wait_for_writer() {
  reader_sem_.acquire(1, WaitReason::mutex);
}

bool RWMutex::try_lock_shared() noexcept {
  std::int32_t r = readers_.load(std::memory_order_relaxed);
  while (r >= 0) {
    // Acquire, as in lock_shared().
    if (readers_.compare_exchange_weak(r, r + 1, std::memory_order_acquire,
                                       std::memory_order_relaxed))
      return true;
  }
  return false;
}

void RWMutex::unlock_shared_slow(std::int32_t r) {
  if (r == -1 || r == -1 - kMaxReaders) {  // there was no reader to leave
    readers_.fetch_add(1, std::memory_order_relaxed);
    throw std::logic_error("spindle::RWMutex: unlock_shared of unlocked RWMutex");
  }
  // A writer is pending; the last reader it waits for wakes it. Acq_rel:
  // the writer's acquire on departing_ or writer_sem_ comes after our reads.
  if (departing_.fetch_sub(1, std::memory_order_acq_rel) == 1) writer_sem_.release(1);
}

void RWMutex::lock() {
  writer_.lock();
  // Announce the writer: readers arriving from now on wait. Acquire: see
  // the reads of the readers that already left (their release decrements).
  std::int32_t active = readers_.fetch_sub(kMaxReaders, std::memory_order_acquire);
  // Wait for the readers we found, unless they have all left by now (those
  // leaving since our subtraction took departing_ below zero). Acq_rel:
  // the last of them released their reads through departing_.
  if (active != 0 && departing_.fetch_add(active, std::memory_order_acq_rel) + active != 0)
    writer_sem_.acquire(1, WaitReason::mutex);
}

bool RWMutex::try_lock() noexcept {
  if (!writer_.try_lock()) return false;
  std::int32_t none = 0;
  // Acquire, as in lock().
  if (readers_.compare_exchange_strong(none, -kMaxReaders, std::memory_order_acquire,
                                       std::memory_order_relaxed))
    return true;
  writer_.unlock();
  return false;
}

void RWMutex::unlock() {
  // Release: the readers we let in see our critical section.
  std::int32_t waiting = readers_.fetch_add(kMaxReaders, std::memory_order_release) + kMaxReaders;
  if (waiting >= kMaxReaders) {  // readers_ was not negative: no writer held it
    readers_.fetch_sub(kMaxReaders, std::memory_order_relaxed);
    throw std::logic_error("spindle::RWMutex: unlock of unlocked RWMutex");
  }
  if (waiting > 0) reader_sem_.release(waiting);
  writer_.unlock();
}

}  // namespace spindle
