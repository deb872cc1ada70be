// ServeMux::serve: Router's verdict turned into a response, and the
// accessors a routed handler reads (Request::param/pattern).
//
// Choices where Go's ServeMux gives no answer or a different one:
//  - 404 is send_status(404), "404 Not Found" like every other status this
//    mux answers, rather than Go's "404 page not found".
//  - OPTIONS for a path that only other methods match answers 204 with
//    Allow; Go answers 405. The mux serves OPTIONS itself there, so OPTIONS
//    is listed in Allow, on 405s too (RFC 9110 §10.2.1: the methods the
//    resource supports).
//  - "OPTIONS *" answers 204 with every method some pattern names, plus
//    OPTIONS; a method-less pattern adds nothing, having no method to name.
//    Any other method with "*" is a 400, as in Go.
// A failed write means the client is gone, which the connection itself
// notices: the mux ignores the Status of what it writes.
#include <spindle/http/mux.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace spindle::http {
namespace {

using Kind = RouteMatch::Kind;

// "GET, HEAD, OPTIONS, POST": methods, sorted, with OPTIONS added.
std::string allow_with_options(std::vector<std::string_view> methods) {
  if (std::find(methods.begin(), methods.end(), "OPTIONS") == methods.end()) {
    methods.insert(std::lower_bound(methods.begin(), methods.end(), "OPTIONS"), "OPTIONS");
  }
  std::string out;
  for (std::string_view m : methods) out.append(out.empty() ? "" : ", ").append(m);
  return out;
}

void answer_options(ResponseWriter& w, std::vector<std::string_view> methods) {
  w.headers().set("Allow", allow_with_options(std::move(methods)));
  w.write_header(204);
}

// Points req at the match while the handler runs, then back at what it
// pointed to before (nothing, or an outer mux's match when muxes nest), so
// param() never reads a dead match.
class RouteScope {
 public:
  RouteScope(const void*& slot, const RouteMatch& m) : slot_(slot), saved_(slot) { slot_ = &m; }
  ~RouteScope() { slot_ = saved_; }
  RouteScope(const RouteScope&) = delete;
  RouteScope& operator=(const RouteScope&) = delete;

 private:
  const void*& slot_;
  const void* saved_;
};

const RouteMatch* route_of(const void* route) noexcept {
  return static_cast<const RouteMatch*>(route);
}

}  // namespace

void ServeMux::serve(Request& req, ResponseWriter& w) const {
  if (req.target() == "*") {
    if (req.method() == "OPTIONS") {
      answer_options(w, router_.methods());
    } else {
      w.send_status(400);
    }
    return;
  }
  // Lives on this stack while the handler runs; req.route_ points at it.
  Router<Handler>::Match m = router_.match(req.method(), req.host(), req.path());
  switch (m.kind()) {
    case Kind::found: {
      RouteScope scope(req.route_, m);
      (*m.handler)(req, w);
      return;
    }
    case Kind::method_not_allowed:
      if (req.method() == "OPTIONS") {
        answer_options(w, m.allowed());
        return;
      }
      w.headers().set("Allow", allow_with_options(m.allowed()));
      w.send_status(405);
      return;
    case Kind::redirect: {
      std::string location(m.location());
      if (!req.raw_query().empty()) location.append("?").append(req.raw_query());
      w.redirect(301, location);
      return;
    }
    case Kind::not_found:
    case Kind::bad_request:
      w.send_status(m.status());
      return;
  }
}

std::string_view Request::param(std::string_view name) const noexcept {
  return route_ ? route_of(route_)->param(name) : std::string_view();
}

std::string_view Request::pattern() const noexcept {
  return route_ ? route_of(route_)->pattern() : std::string_view();
}

}  // namespace spindle::http
