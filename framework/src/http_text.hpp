// The parsing behind Request::cookie() and Request::query(), on plain
// inputs so that it can be tested without a connection.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <spindle/http/request.hpp>

namespace spindle::http::detail {

// The value of cookie `name` in the Cookie headers among headers, as sent.
std::optional<std::string_view> find_cookie(std::span<const Header> headers,
                                            std::string_view name) noexcept;
// The first value of `key` in a raw query string, decoded.
std::optional<std::string> find_query(std::string_view raw_query, std::string_view key);

}  // namespace spindle::http::detail
