// The error model, for net/ and everything built on it:
//  - Failures that a correct program must expect (a peer resets, a read
//    times out, DNS has no answer) are values: Result<T> holds a T or a
//    std::error_code. System errors keep their errno (std::system_category);
//    Spindle's own conditions are net::Errc below.
//  - Programmer errors (using a closed Listener from two fibers at once,
//    I/O outside spindle::run) throw std::logic_error.
// Compare with std::errc or net::Errc: `if (r.error() == net::Errc::timeout)`.
#pragma once

#include <cassert>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace spindle::net {

enum class Errc {
  timeout = 1,  // a deadline passed (the connection stays usable)
  closed,       // the connection or listener was closed (by this process)
  canceled,     // the operation's Context was cancelled
  eof,          // read_full: the peer closed before the buffer was full
};

const std::error_category& category() noexcept;
inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), category()};
}

// T or an error code, like std::expected<T, std::error_code> (C++23).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(std::error_code ec) : v_(ec) { assert(ec); }
  Result(Errc e) : v_(make_error_code(e)) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  std::error_code error() const noexcept { return ok() ? std::error_code{} : std::get<1>(v_); }

 private:
  std::variant<T, std::error_code> v_;
};

// For operations that return nothing.
struct Ok {};
using Status = Result<Ok>;
inline Status ok() {
  return Ok{};
}

}  // namespace spindle::net

template <>
struct std::is_error_code_enum<spindle::net::Errc> : std::true_type {};
