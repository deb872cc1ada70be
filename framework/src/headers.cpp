// Response headers and case-insensitive names.
//
// A response carries a handful of headers, so Headers is a flat vector
// searched linearly: cheaper than a map at that size, and it keeps the
// order the handler chose.
#include <spindle/http/request.hpp>
#include <spindle/http/response.hpp>

#include <algorithm>

#include "ascii.hpp"

namespace spindle::http {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (detail::ascii_lower(a[i]) != detail::ascii_lower(b[i])) return false;
  }
  return true;
}

void Headers::set(std::string_view name, std::string_view value) {
  auto same = [name](const auto& h) { return iequals(h.first, name); };
  auto first = std::find_if(list_.begin(), list_.end(), same);
  if (first == list_.end()) {
    list_.emplace_back(name, value);
    return;
  }
  // The first one keeps its place (and its spelling of the name).
  first->second.assign(value);
  list_.erase(std::remove_if(first + 1, list_.end(), same), list_.end());
}

void Headers::add(std::string_view name, std::string_view value) {
  list_.emplace_back(name, value);
}

void Headers::del(std::string_view name) {
  std::erase_if(list_, [name](const auto& h) { return iequals(h.first, name); });
}

std::optional<std::string_view> Headers::get(std::string_view name) const noexcept {
  for (const auto& [n, v] : list_) {
    if (iequals(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

}  // namespace spindle::http
