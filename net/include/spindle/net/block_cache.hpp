// A per-thread cache of read-buffer blocks of the smallest size, shared by
// net::BufReader and the HTTP server's read buffer.
//
// An idle keep-alive connection holds no read buffer (so 10,000 of them
// hold no buffers): it gives its block back before it parks and takes one
// when its next bytes come. For a client that pauses between requests or
// pipelined bursts that is a malloc/free pair per wake-up, of a size
// glibc's tcache does not cover (a few hundred instructions). Blocks given
// back on a thread wait here, a few at most, for the next take on that
// thread.
//
// Fibers migrate between threads: take() and give_block() look the thread's
// cache up and are done with it with no scheduling point in between, and
// they are out of line, so no caller keeps a thread-local address across
// a park.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

namespace spindle::net::block_cache {

inline constexpr std::size_t kBlockSize = 4 * 1024;  // bytes: a request head fits

// A block of `size` bytes (uninitialized): a cached one if size is
// kBlockSize and the thread has one, else a fresh allocation.
std::unique_ptr<char[]> take(std::size_t size);
void give_block(std::unique_ptr<char[]> block, std::size_t size) noexcept;  // give(), block set
// Gives back a block that take(size) returned: kept if it is of kBlockSize
// bytes and the cache has room, else freed. A null block (readers give
// back whatever they hold, often nothing) costs no call.
inline void give(std::unique_ptr<char[]> block, std::size_t size) noexcept {
  if (block) give_block(std::move(block), size);
}

}  // namespace spindle::net::block_cache
