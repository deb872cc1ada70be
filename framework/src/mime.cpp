// A fixed table, the types Go's mime package builds in plus the common web
// ones (nginx's mime.types), rather than /etc/mime.types: a server's answers
// should not change with the machine it runs on.
#include "mime.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <utility>

#include "ascii.hpp"

namespace spindle::http::detail {
namespace {

// Sorted by extension (lower case) for binary search.
constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/x-icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "text/xml; charset=utf-8"},
    {"zip", "application/zip"},
};
static_assert(std::is_sorted(std::begin(kTypes), std::end(kTypes)));

constexpr std::string_view kDefault = "application/octet-stream";

}  // namespace

std::string_view mime_type(std::string_view path) noexcept {
  auto dot = path.rfind('.');
  auto slash = path.rfind('/');
  if (dot == path.npos || (slash != path.npos && dot < slash)) return kDefault;
  std::string_view ext = path.substr(dot + 1);
  // Lower-cased on the stack: no table entry is longer.
  std::array<char, 16> lower;
  if (ext.empty() || ext.size() > lower.size()) return kDefault;
  std::transform(ext.begin(), ext.end(), lower.begin(), ascii_lower);
  ext = std::string_view(lower.data(), ext.size());
  auto it = std::lower_bound(std::begin(kTypes), std::end(kTypes), ext,
                             [](const auto& t, std::string_view e) { return t.first < e; });
  return it != std::end(kTypes) && it->first == ext ? it->second : kDefault;
}

}  // namespace spindle::http::detail
