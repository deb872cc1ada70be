#include "spindle/net/block_cache.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SPINDLE_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define SPINDLE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define SPINDLE_POISON(p, n) ((void)(p), (void)(n))
#define SPINDLE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace spindle::net::block_cache {
namespace {

// Per thread: 64 KiB at most, enough for the connections one thread wakes
// in a burst to skip malloc.
constexpr int kCachedBlocks = 16;

// One per thread, touched only by take() and give() on that thread.
struct Cache {
  char* blocks[kCachedBlocks];
  int count = 0;
  ~Cache() {
    while (count > 0) {
      char* b = blocks[--count];
      SPINDLE_UNPOISON(b, kBlockSize);
      delete[] b;
    }
  }
};

thread_local Cache t_cache;

}  // namespace

[[gnu::noinline]] std::unique_ptr<char[]> take(std::size_t size) {
  Cache& c = t_cache;
  if (size != kBlockSize || c.count == 0) return std::make_unique_for_overwrite<char[]>(size);
  char* b = c.blocks[--c.count];
  SPINDLE_UNPOISON(b, kBlockSize);  // a cached block is poisoned: a stale view into it traps
  return std::unique_ptr<char[]>(b);
}

[[gnu::noinline]] void give_block(std::unique_ptr<char[]> block, std::size_t size) noexcept {
  Cache& c = t_cache;
  if (size != kBlockSize || c.count == kCachedBlocks) return;  // the unique_ptr frees it
  char* b = block.release();
  SPINDLE_POISON(b, kBlockSize);
  c.blocks[c.count++] = b;
}

}  // namespace spindle::net::block_cache
