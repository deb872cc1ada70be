#include "read_buffer.hpp"

#include <algorithm>
#include <cstring>

#include "spindle/runtime.hpp"

namespace spindle::http::detail {

// Makes room after end_: compact down to the hold (or to 0), or move the
// unread bytes to a bigger block when a read filled this one. Under a hold
// the old block is kept in retired_ rather than freed.
void ReadBuffer::make_room() {
  std::size_t used = end_ - begin_;
  bool grow = !buf_ || cap_ < next_cap_ || hold_ + used >= cap_;
  if (!grow) {
    if (begin_ > hold_) std::memmove(buf_.get() + hold_, buf_.get() + begin_, used);
    begin_ = hold_;
    end_ = begin_ + used;
    return;
  }
  std::size_t cap = std::max(next_cap_, used + kMinBlock);
  auto fresh = net::block_cache::take(cap);
  if (used) std::memcpy(fresh.get(), buf_.get() + begin_, used);
  if (hold_) {
    retired_ = std::move(buf_);  // a second hold-move cannot happen: the fresh block has no hold
    hold_ = 0;
  } else {
    drop_block();
  }
  buf_ = std::move(fresh);
  cap_ = cap;
  begin_ = 0;
  end_ = used;
}

net::Result<std::size_t> ReadBuffer::read_once() {
  spindle::preempt_point();
  if (!buf_ || end_ == cap_) make_room();
  const std::size_t room = cap_ - end_;
  auto n = conn_.try_read(buf_.get() + end_, room);
  if (!n) return n;
  end_ += *n;
  // A read that filled half a block or more suggests more comes in large
  // pieces. (Filling the last few bytes after pipelined requests does not:
  // growing then made every later wake-up allocate and free a large block.)
  if (*n == room && room >= cap_ / 2) next_cap_ = std::min(cap_ * 2, max_);
  return n;
}

net::Result<std::size_t> ReadBuffer::try_fill() {
  return read_once();
}

// Waits first when the last read drained the socket (Conn::drained), which
// saves the read that would only say EAGAIN.
net::Result<std::size_t> ReadBuffer::fill() {
  for (bool wait = conn_.drained();; wait = true) {
    if (wait) {
      release_if_empty();
      if (net::Status ready = conn_.wait_readable(); !ready) return ready.error();
    }
    auto n = read_once();
    if (n || n.error() != std::errc::operation_would_block) return n;
  }
}

void ReadBuffer::consume(std::size_t n) noexcept {
  begin_ += std::min(n, end_ - begin_);
}

void ReadBuffer::release_hold() noexcept {
  hold_ = 0;
  retired_.reset();
}

void ReadBuffer::release_if_empty() noexcept {
  if (begin_ != end_ || hold_) return;
  drop_block();
  cap_ = begin_ = end_ = 0;
}

void ReadBuffer::drop_block() noexcept {
  net::block_cache::give(std::move(buf_), cap_);
}

}  // namespace spindle::http::detail
