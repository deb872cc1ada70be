// Content types by file extension, for ResponseWriter::file().
#pragma once

#include <string_view>

namespace spindle::http::detail {

// The media type of path's extension (case-insensitive), text types with
// "; charset=utf-8"; "application/octet-stream" when unknown or absent.
std::string_view mime_type(std::string_view path) noexcept;

}  // namespace spindle::http::detail
