// ASCII helpers for protocol text, where case folding is never locale's.
#pragma once

namespace spindle::http::detail {

constexpr char ascii_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace spindle::http::detail
