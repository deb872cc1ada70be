// The request-target's four forms (RFC 9112 §3.2) and Host's syntax.
#pragma once

#include <optional>
#include <string_view>

namespace spindle::http::detail {

struct Target {
  std::string_view path;       // "/a/b" ("" for authority- and asterisk-form: "*" is the path)
  std::string_view query;      // after '?', "" if none
  std::string_view authority;  // absolute- and authority-form only
};

// Splits target; nullopt if its form is invalid or does not fit the method
// ("*" is for OPTIONS only, authority-form for CONNECT only; absolute-form
// must be http or https without userinfo).
std::optional<Target> split_target(std::string_view target, std::string_view method) noexcept;

// Host's value is a uri-host with an optional port (RFC 9110 §7.2): the
// characters of reg-name, IPv6 literals and ports. Empty is valid.
bool valid_host(std::string_view host) noexcept;

}  // namespace spindle::http::detail
