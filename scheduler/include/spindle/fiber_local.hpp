// Fiber-local storage.
//
// `thread_local` is per *thread*, and a fiber may resume on another thread
// after any scheduling point (park, yield, I/O, a mutex): a thread_local read
// before and after such a point may name two different objects, and the
// compiler may even keep the first thread's address in a register across the
// switch. Use FiberLocal<T> for state that belongs to a fiber; keep
// thread_local for per-thread caches that are never held across a
// scheduling point.
//
//   static spindle::FiberLocal<RequestId> request_id;
//   request_id.get() = 42;         // default-constructed on first use
//
// The value lives until the fiber ends. Outside a fiber get() throws
// std::logic_error.
#pragma once

#include <cstddef>
#include <memory>

namespace spindle {

namespace detail {
std::size_t fls_new_key() noexcept;
// Slot `key` of the running fiber; nullptr if unset.
void* fls_get(std::size_t key);
void fls_set(std::size_t key, void* value, void (*destroy)(void*));
}  // namespace detail

template <class T>
class FiberLocal {
 public:
  FiberLocal() : key_(detail::fls_new_key()) {}
  FiberLocal(const FiberLocal&) = delete;
  FiberLocal& operator=(const FiberLocal&) = delete;

  T& get() {
    if (void* p = detail::fls_get(key_)) return *static_cast<T*>(p);
    auto value = std::make_unique<T>();
    T* raw = value.get();
    detail::fls_set(key_, raw, [](void* p) { delete static_cast<T*>(p); });
    value.release();
    return *raw;
  }

 private:
  std::size_t key_;
};

}  // namespace spindle
