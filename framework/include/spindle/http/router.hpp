// HTTP request router with Go 1.22 net/http.ServeMux pattern semantics.
//
// A pattern is "[METHOD ][HOST]/[PATH]":
//   "GET /items/{id}"     GET (and HEAD) of /items/<one segment>
//   "POST /items"         exactly /items, POST only
//   "/static/{path...}"   any method, /static/ and everything below it
//   "/docs/"              the whole /docs/ subtree; "/docs/{$}" only /docs/ itself
//   "example.com/"        every path, but only for Host example.com
// A method-less pattern matches every method; "GET" also matches HEAD.
// "{name}" matches one whole segment, "{name...}" (last only) the rest of
// the path, possibly empty. Wildcard values are matched against the escaped
// path and then percent-decoded: "/a%2Fb" is one segment, value "a/b".
//
// When several patterns match, the most specific wins: P1 beats P2 if P1
// matches a strict subset of P2's requests; a pattern with a host beats one
// without. Registering a pattern that shares requests with another one
// without either being more specific (or a duplicate) throws
// std::invalid_argument naming both, so the winner never depends on order.
//
// Like ServeMux, match() answers 301 to an unclean path ("/a/../b", "//x")
// and "/dir" -> "/dir/" when only the subtree "/dir/" matches; 405 with the
// Allow list when the path matches for other methods only; 400 when the
// path's percent-encoding is invalid. Redirect locations hold the path only:
// the server appends the query string.
//
// Register every route before serving; match() is then safe to call from
// many threads. A Match refers to the router and to the path it was given.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spindle::http {

// The outcome of routing one request; which accessors mean something
// depends on kind().
class RouteMatch {
 public:
  enum class Kind { found, not_found, method_not_allowed, redirect, bad_request };
  // A pattern may have at most this many wildcards, so matching needs no heap.
  static constexpr std::size_t kMaxParams = 8;

  Kind kind() const noexcept { return kind_; }
  int status() const noexcept;  // 200, 404, 405, 301 or 400

  // found: the pattern as registered, and the decoded value of a wildcard
  // ("" if the pattern has no such wildcard).
  std::string_view pattern() const noexcept { return pattern_; }
  std::string_view param(std::string_view name) const noexcept;

  // redirect: where to (a path).
  std::string_view location() const noexcept { return location_; }

  // method_not_allowed: the methods that would match, sorted, HEAD included
  // when GET is; allow_header() joins them as "GET, HEAD, POST".
  const std::vector<std::string_view>& allowed() const noexcept { return allowed_; }
  std::string allow_header() const;

 private:
  friend class RouteTable;
  template <class Handler>
  friend class Router;
  // Plain data: a match per request builds no strings unless a value has escapes.
  struct Param {
    std::string_view name, raw;
    bool escaped;                          // raw holds a %XX escape
    std::size_t decoded_at, decoded_size;  // then its value is in decoded_
  };

  Kind kind_ = Kind::not_found;
  std::size_t route_ = 0;
  std::string_view pattern_;
  std::array<Param, kMaxParams> params_{};
  std::size_t nparams_ = 0;
  std::string decoded_;  // the escaped wildcards' values, decoded, end to end
  std::string location_;
  std::vector<std::string_view> allowed_;
};

// The pattern tree without handlers: routes are numbered in registration
// order. Router below adds the handlers.
class RouteTable {
 public:
  RouteTable();
  ~RouteTable();
  RouteTable(RouteTable&&) noexcept;
  RouteTable& operator=(RouteTable&&) noexcept;

  // Registers a pattern as route number size(); throws std::invalid_argument
  // on bad syntax, a duplicate or a conflict.
  void add(std::string_view pattern);
  std::size_t size() const noexcept;

  // Routes a request into out, which must be default-constructed. host may
  // carry a port; path is the escaped path without the query.
  void match(std::string_view method, std::string_view host, std::string_view path,
             RouteMatch& out) const;

  // The methods that patterns naming a method allow for host and path, as in
  // a 405's Allow header: what a server answers to OPTIONS when no
  // method-less pattern matches.
  std::vector<std::string_view> allowed(std::string_view host, std::string_view path) const;
  // Every method a pattern names, sorted, HEAD included when GET is: what a
  // server lists for "OPTIONS *".
  std::vector<std::string_view> methods() const;

 private:
  struct Tree;
  std::unique_ptr<Tree> tree_;
};

// "[METHOD ]" + prefix + path of pattern: group("/api").handle("GET /x")
// registers "GET /api/x". prefix is "[HOST]/path"; pattern must not have a host.
std::string join_group_pattern(std::string_view prefix, std::string_view pattern);

// Maps patterns to handlers. A Group refers to its Router: keep the Router
// where it is while groups are in use.
template <class Handler>
class Router {
 public:
  struct Match : RouteMatch {
    const Handler* handler = nullptr;  // set when kind() == found
  };

  class Group {
   public:
    void handle(std::string_view pattern, Handler h) {
      router_->handle(join_group_pattern(prefix_, pattern), std::move(h));
    }
    Group group(std::string_view prefix) const {
      return Group(*router_, join_group_pattern(prefix_, prefix));
    }

   private:
    friend class Router;
    Group(Router& r, std::string prefix) : router_(&r), prefix_(std::move(prefix)) {}
    Router* router_;
    std::string prefix_;
  };

  void handle(std::string_view pattern, Handler h) {
    handlers_.push_back(std::move(h));
    try {
      table_.add(pattern);
    } catch (...) {
      handlers_.pop_back();  // route numbers must stay handler indices
      throw;
    }
  }
  Group group(std::string_view prefix) { return Group(*this, join_group_pattern(prefix, "/")); }

  Match match(std::string_view method, std::string_view host, std::string_view path) const {
    Match m;
    table_.match(method, host, path, m);
    if (m.kind() == RouteMatch::Kind::found) m.handler = &handlers_[m.route_];
    return m;
  }
  std::vector<std::string_view> allowed(std::string_view host, std::string_view path) const {
    return table_.allowed(host, path);
  }
  std::vector<std::string_view> methods() const { return table_.methods(); }

 private:
  RouteTable table_;
  std::vector<Handler> handlers_;
};

}  // namespace spindle::http
