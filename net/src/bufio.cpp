#include "spindle/net/bufio.hpp"

#include <algorithm>
#include <cstring>

namespace spindle::net {

// Compacts, or moves to a bigger buffer when the last read filled this one.
void BufReader::make_room() {
  std::size_t used = end_ - begin_;
  if (!buf_ || cap_ < next_cap_ || used == cap_) {
    std::size_t cap = std::max(next_cap_, used == cap_ ? std::min(cap_ * 2, kMaxBuffer) : 0);
    cap = std::max(cap, used + 1);
    auto bigger = std::make_unique<char[]>(cap);
    if (used) std::memcpy(bigger.get(), buf_.get() + begin_, used);
    buf_ = std::move(bigger);
    cap_ = cap;
  } else if (begin_ > 0) {
    std::memmove(buf_.get(), buf_.get() + begin_, used);
  }
  begin_ = 0;
  end_ = used;
}

Result<std::size_t> BufReader::fill() {
  if (!buf_) {
    // Idle: wait for data without holding a buffer.
    auto ready = conn_.wait_readable();
    if (!ready) return ready.error();
  }
  if (!buf_ || end_ == cap_) make_room();
  auto n = conn_.read_some(buf_.get() + end_, cap_ - end_);
  if (!n) return n.error();
  end_ += *n;
  // A read that filled the buffer suggests more is coming in large pieces.
  if (end_ == cap_) next_cap_ = std::min(cap_ * 2, kMaxBuffer);
  return *n;
}

void BufReader::consume(std::size_t n) noexcept {
  begin_ += std::min(n, end_ - begin_);
  if (begin_ == end_) {
    // Give the buffer back; keep the learned size for the next message.
    buf_.reset();
    cap_ = begin_ = end_ = 0;
  }
}

Status BufWriter::write(std::string_view data) {
  if (len_ + data.size() <= cap_) {
    if (!buf_) buf_ = std::make_unique<char[]>(cap_);
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
