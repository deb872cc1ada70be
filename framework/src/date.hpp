// The Date header's value, formatted at most once per second per thread.
#pragma once

#include <string_view>

namespace spindle::http::detail {

// Now as an IMF-fixdate (RFC 9110 §5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
//
// One coarse clock read per call, no lock, no allocation: each thread keeps
// the text of the current second and reformats it when the second changes.
// The view points into the calling thread's cache, so copy it before the
// calling fiber's next scheduling point (a park, yield or I/O wait): after
// one the fiber may run on another thread, and the thread it left may
// rewrite the cache for the next second. Appending it to a response buffer
// right away, as the server does, is safe.
std::string_view date_now() noexcept;

}  // namespace spindle::http::detail
