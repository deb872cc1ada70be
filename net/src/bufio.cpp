#include "spindle/net/bufio.hpp"

#include <algorithm>
#include <cstring>

#include "spindle/net/block_cache.hpp"
#include "spindle/runtime.hpp"

namespace spindle::net {

// Compacts, or moves to a bigger buffer when the last read filled this one.
void BufReader::make_room() {
  std::size_t used = end_ - begin_;
  if (!buf_ || cap_ < next_cap_ || used == cap_) {
    std::size_t cap = std::max(next_cap_, used == cap_ ? std::min(cap_ * 2, kMaxBuffer) : 0);
    cap = std::max(cap, used + 1);
    auto bigger = block_cache::take(cap);
    if (used) std::memcpy(bigger.get(), buf_.get() + begin_, used);
    block_cache::give(std::move(buf_), cap_);
    buf_ = std::move(bigger);
    cap_ = cap;
  } else if (begin_ > 0) {
    std::memmove(buf_.get(), buf_.get() + begin_, used);
  }
  begin_ = 0;
  end_ = used;
}

// Reads first (one syscall when data is there), unless the last read left
// the socket drained: then waits first, which saves the read that would
// only say EAGAIN. While waiting, a buffer that holds nothing goes back.
Result<std::size_t> BufReader::fill() {
  for (;;) {
    spindle::preempt_point();
    if (conn_.drained()) {
      if (begin_ == end_) release();
      if (Status ready = conn_.wait_readable(); !ready) return ready.error();
    }
    bool idle = !buf_;
    if (!buf_ || end_ == cap_) make_room();
    std::size_t space = cap_ - end_;
    auto n = conn_.try_read(buf_.get() + end_, space);
    if (n) {
      end_ += *n;
      // A read that filled the buffer suggests more comes in large pieces.
      if (*n == space) next_cap_ = std::min(cap_ * 2, kMaxBuffer);
      return *n;
    }
    if (n.error() != std::errc::operation_would_block) return n.error();
    if (idle) release();
    if (Status ready = conn_.wait_readable(); !ready) return ready.error();
  }
}

void BufReader::release() noexcept {
  block_cache::give(std::move(buf_), cap_);
  cap_ = begin_ = end_ = 0;
}

void BufReader::consume(std::size_t n) noexcept {
  begin_ += std::min(n, end_ - begin_);
  if (begin_ == end_) release();  // keeps the learned size for the next message
}

Status BufWriter::write(std::string_view data) {
  if (len_ + data.size() <= cap_) {
    if (!buf_) buf_ = std::make_unique_for_overwrite<char[]>(cap_);
    std::memcpy(buf_.get() + len_, data.data(), data.size());
    len_ += data.size();
    return ok();
  }
  iovec iov[2] = {{buf_.get(), len_}, {const_cast<char*>(data.data()), data.size()}};
  Status s = len_ ? conn_.write_all(iov, 2) : conn_.write_all(data.data(), data.size());
  len_ = 0;
  return s;
}

Status BufWriter::flush() {
  if (len_ == 0) return ok();
  Status s = conn_.write_all(buf_.get(), len_);
  len_ = 0;
  return s;
}

}  // namespace spindle::net
