// ServeMux: Go 1.22's http.ServeMux on top of Router (router.hpp has the
// pattern syntax and precedence rules).
//
//   http::ServeMux mux;
//   mux.handle("GET /items/{id}", [](auto& req, auto& w) {
//     w.text(200, req.param("id"));
//   });
//   auto api = mux.group("/api");
//   api.handle("POST /items", create_item);
//   http::Server srv(mux);
//
// Serving: the matched handler, with req.param()/pattern() set; HEAD runs a
// GET handler (the body is dropped); OPTIONS with no matching OPTIONS route
// answers 204 with Allow ("OPTIONS *" too, listing every method registered);
// 404 when nothing matches, 405 with Allow when only other methods do, 301 to
// the cleaned path (query kept), 400 on bad percent-encoding.
#pragma once

#include <string>
#include <string_view>

#include "spindle/http/handler.hpp"
#include "spindle/http/router.hpp"

namespace spindle::http {

class ServeMux {
 public:
  using Group = Router<Handler>::Group;

  // Throws std::invalid_argument on a bad or conflicting pattern.
  void handle(std::string_view pattern, Handler h) { router_.handle(pattern, std::move(h)); }
  Group group(std::string_view prefix) { return router_.group(prefix); }

  void serve(Request& req, ResponseWriter& w) const;
  // A Handler that serves through this mux (which must outlive it).
  operator Handler() const {
    return [this](Request& req, ResponseWriter& w) { serve(req, w); };
  }

 private:
  Router<Handler> router_;
};

}  // namespace spindle::http
