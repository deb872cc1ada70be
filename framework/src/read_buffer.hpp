// A connection's read buffer: bytes are parsed in place and the request's
// views point into it.
//
// Like net::BufReader it holds no memory while the connection is idle (a
// read that finds nothing gives an empty buffer back before it parks) and
// grows by doubling when a read fills half a block or more. Unlike
// BufReader it can hold the bytes before the cursor in place: while a
// handler runs, its request's method, target and headers are views into
// this buffer, so reading more of the body must not move them. Room is
// then made by moving only the unread bytes, or by moving them to a fresh
// block while the old one stays alive until release_hold(). Blocks of the
// smallest size come from and go back to block_cache (a per-thread cache:
// see spindle/net/block_cache.hpp).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include "spindle/net/block_cache.hpp"
#include "spindle/net/bufio.hpp"
#include "spindle/net/conn.hpp"

namespace spindle::http::detail {

class ReadBuffer {
 public:
  static constexpr std::size_t kMinBlock = net::block_cache::kBlockSize;

  explicit ReadBuffer(net::Conn& conn, std::size_t max_block) : conn_(conn), max_(max_block) {}
  ~ReadBuffer() { drop_block(); }
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;

  // Unread bytes.
  std::string_view data() const noexcept { return {buf_.get() + begin_, end_ - begin_}; }
  std::span<char> unread() noexcept { return {buf_.get() + begin_, end_ - begin_}; }
  bool empty() const noexcept { return begin_ == end_; }

  // Reads once (parking if nothing is there), appending to data(); 0 at EOF.
  net::Result<std::size_t> fill();
  // One read that never parks; operation_would_block if nothing is there.
  net::Result<std::size_t> try_fill();
  // Drops the first n unread bytes.
  void consume(std::size_t n) noexcept;

  // Keeps every byte before data() where it is until release_hold().
  void hold() noexcept { hold_ = begin_; }
  void release_hold() noexcept;
  // Gives the memory back if nothing is unread or held.
  void release_if_empty() noexcept;

 private:
  void make_room();
  void drop_block() noexcept;  // frees buf_ (to block_cache if it came from there)
  net::Result<std::size_t> read_once();

  net::Conn& conn_;
  std::size_t max_;
  std::unique_ptr<char[]> buf_;
  std::unique_ptr<char[]> retired_;  // the block a hold kept alive
  std::size_t cap_ = 0, begin_ = 0, end_ = 0;
  std::size_t hold_ = 0;  // bytes [0, hold_) of buf_ stay put; 0: no hold
  std::size_t next_cap_ = kMinBlock;
};

}  // namespace spindle::http::detail
