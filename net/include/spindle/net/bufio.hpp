// Buffered reading and writing over a Conn, sized for protocols like HTTP.
//
// BufReader keeps no buffer while the connection is idle: when a read finds
// nothing, fill() gives the (empty) buffer back before it parks, so ten
// thousand idle keep-alive connections hold no read buffers (blocks of the
// smallest size wait in a per-thread cache, block_cache.hpp, for the next
// wake-up). After a short read (the kernel had no more), the next fill()
// waits for readiness before reading, as an epoll loop would: one syscall
// fewer per message. The buffer starts at 4 KiB and doubles (up to 64 KiB)
// when a read fills it, so a stream of large messages is read in few
// syscalls. The caller parses straight from buffered() and says how much it
// used with consume(): no copies.
//
// BufWriter gathers small writes and sends them with one syscall on
// flush(); a write larger than its buffer goes out directly, together with
// what was buffered (one writev).
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "spindle/net/block_cache.hpp"
#include "spindle/net/conn.hpp"

namespace spindle::net {

class BufReader {
 public:
  static constexpr std::size_t kMinBuffer = block_cache::kBlockSize;
  static constexpr std::size_t kMaxBuffer = 64 * 1024;

  explicit BufReader(Conn& conn) : conn_(conn) {}

  // Bytes read and not yet consumed.
  std::string_view buffered() const noexcept { return {buf_.get() + begin_, end_ - begin_}; }

  // Reads once more from the connection, appending to buffered(). Returns
  // the number of new bytes: 0 means the peer closed. Errc::closed/timeout
  // and system errors as Conn::read_some.
  Result<std::size_t> fill();

  // Drops the first n buffered bytes; an emptied buffer is given back.
  void consume(std::size_t n) noexcept;

  std::size_t capacity() const noexcept { return cap_; }

 private:
  void make_room();
  void release() noexcept;

  Conn& conn_;
  std::unique_ptr<char[]> buf_;
  std::size_t cap_ = 0, begin_ = 0, end_ = 0;
  std::size_t next_cap_ = kMinBuffer;  // what the next allocation will be
};

class BufWriter {
 public:
  explicit BufWriter(Conn& conn, std::size_t capacity = 16 * 1024) : conn_(conn), cap_(capacity) {}

  // Buffers data, or sends it at once with the buffered bytes if it is
  // larger than the buffer's free space.
  Status write(std::string_view data);
  // Sends everything buffered.
  Status flush();
  std::size_t buffered() const noexcept { return len_; }

 private:
  Conn& conn_;
  std::unique_ptr<char[]> buf_;
  std::size_t cap_, len_ = 0;
};

}  // namespace spindle::net
