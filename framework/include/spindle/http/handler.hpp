// A handler answers one request (Go's http.Handler). It runs on the
// connection's fiber: blocking-style code is fine, it parks only that fiber.
// An exception escaping it becomes a 500 (or closes the connection if the
// response had started), is logged with the request line, and the server
// lives on.
#pragma once

#include <functional>

#include "spindle/http/request.hpp"
#include "spindle/http/response.hpp"

namespace spindle::http {

using Handler = std::function<void(Request&, ResponseWriter&)>;

}  // namespace spindle::http
