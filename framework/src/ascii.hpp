// ASCII helpers for protocol text, where case folding and character
// classes are never the locale's.
#pragma once

#include <array>

namespace spindle::http::detail {

constexpr char ascii_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

namespace ascii_table {
inline constexpr auto kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : {'!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~'})
    t[static_cast<unsigned char>(c)] = true;
  return t;
}();
}  // namespace ascii_table

// RFC 9110 §5.6.2 tchar: the characters of a token (a field name, a method,
// a chunk extension's name).
constexpr bool is_tchar(char c) noexcept {
  return ascii_table::kTchar[static_cast<unsigned char>(c)];
}

// RFC 9110 §5.5 field-vchar (VCHAR or obs-text), the bytes of a field value
// besides SP and HTAB.
constexpr bool is_field_vchar(char c) noexcept {
  auto u = static_cast<unsigned char>(c);
  return (u > 0x20 && u < 0x7f) || u >= 0x80;
}

constexpr bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace spindle::http::detail
