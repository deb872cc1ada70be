// Escaped-path helpers shared by pattern parsing and matching.
#pragma once

#include <string>
#include <string_view>

namespace spindle::http::detail {

// Whether every '%' starts a %XX escape.
bool valid_escapes(std::string_view s) noexcept;
// Decodes %XX escapes; s must satisfy valid_escapes.
std::string unescape(std::string_view s);
void unescape_append(std::string& out, std::string_view s);  // the same, onto out
// Compares unescape(escaped) with plain without building the decoded string,
// in the order of std::string's operator<.
int compare_unescaped(std::string_view escaped, std::string_view plain) noexcept;

// Go's cleanPath: rooted, no empty, "." or ".." segments, trailing slash
// kept. is_clean(p) is cleaned(p) == p without allocating.
bool is_clean(std::string_view path) noexcept;
std::string cleaned(std::string_view path);

// "host:port" or "[v6]:port" -> host; anything else unchanged.
std::string_view strip_port(std::string_view host) noexcept;

}  // namespace spindle::http::detail
