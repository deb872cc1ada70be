// The routing tree: host -> method -> path segments, as Go's routingNode.
//
// Matching walks the escaped path once, trying at each node the literal
// child, then the single wildcard, then the multi wildcard, backtracking on
// failure. Because conflicting patterns are rejected at registration, the
// first route found this way is the most specific one that matches.
#include <spindle/http/router.hpp>

#include <algorithm>
#include <map>
#include <stdexcept>

#include "path.hpp"
#include "pattern.hpp"

namespace spindle::http {
namespace {

using detail::Pattern;
using detail::Segment;

int compare_bytes(std::string_view a, std::string_view b) noexcept {
  return a.compare(b);
}

struct Route {
  Pattern pattern;
  std::size_t index;
};

struct PathNode {
  // Sorted by key, the unescaped literal, so a lookup compares the escaped
  // request segment without decoding it into a buffer.
  std::vector<std::pair<std::string, std::unique_ptr<PathNode>>> literals;
  std::unique_ptr<PathNode> wild;   // {name}
  std::unique_ptr<PathNode> multi;  // {name...} or trailing slash: a leaf
  const Route* route = nullptr;     // a pattern that ends here
  const Route* dollar = nullptr;    // a pattern that ends here with {$}

  const PathNode* find(std::string_view escaped) const noexcept {
    // A segment without escapes, as most are, compares as bytes: the same
    // order, and one scan for '%' per segment instead of a decode per step.
    int (*compare)(std::string_view, std::string_view) noexcept =
        escaped.find('%') == escaped.npos ? compare_bytes : detail::compare_unescaped;
    auto it = std::lower_bound(
        literals.begin(), literals.end(), escaped,
        [compare](const auto& lit, std::string_view seg) { return compare(seg, lit.first) > 0; });
    if (it == literals.end() || compare(escaped, it->first) != 0) return nullptr;
    return it->second.get();
  }

  PathNode& literal(const std::string& key) {
    auto it = std::lower_bound(literals.begin(), literals.end(), key,
                               [](const auto& lit, const std::string& k) { return lit.first < k; });
    if (it == literals.end() || it->first != key)
      it = literals.emplace(it, key, std::make_unique<PathNode>());
    return *it->second;
  }
};

struct MethodTable {
  std::map<std::string, PathNode, std::less<>> by_method;
  PathNode any;  // patterns without a method
};

// Raw (escaped) wildcard values, in pattern order, as matching goes.
struct Captures {
  std::array<std::string_view, RouteMatch::kMaxParams> values;
  std::size_t size = 0;
};

void insert(PathNode& root, const Route* route) {
  PathNode* node = &root;
  for (const Segment& s : route->pattern.segments) {
    switch (s.kind) {
      case Segment::Kind::literal:
        node = &node->literal(s.text);
        break;
      case Segment::Kind::wild:
        if (!node->wild) node->wild = std::make_unique<PathNode>();
        node = node->wild.get();
        break;
      case Segment::Kind::multi:
        if (!node->multi) node->multi = std::make_unique<PathNode>();
        node = node->multi.get();
        break;
      case Segment::Kind::dollar:
        node->dollar = route;
        return;
    }
  }
  node->route = route;
}

// rest is "" or starts with '/'; "/" alone is a trailing slash.
const Route* match_path(const PathNode& n, std::string_view rest, Captures& c) {
  if (rest.empty()) return n.route;
  if (rest == "/") {
    if (n.dollar) return n.dollar;
  } else {
    auto end = rest.find('/', 1);
    std::string_view seg = rest.substr(1, end == rest.npos ? rest.npos : end - 1);
    std::string_view next = end == rest.npos ? std::string_view() : rest.substr(end);
    if (const PathNode* lit = n.find(seg)) {
      if (const Route* r = match_path(*lit, next, c)) return r;
    }
    if (n.wild) {
      c.values[c.size++] = seg;
      if (const Route* r = match_path(*n.wild, next, c)) return r;
      --c.size;
    }
  }
  if (!n.multi || !n.multi->route) return nullptr;
  // A trailing slash in the pattern is an anonymous multi: nothing to capture.
  if (!n.multi->route->pattern.segments.back().text.empty()) c.values[c.size++] = rest.substr(1);
  return n.multi->route;
}

const Route* match_method(const MethodTable& t, std::string_view method, std::string_view path,
                          Captures& c) {
  if (auto it = t.by_method.find(method); it != t.by_method.end()) {
    if (const Route* r = match_path(it->second, path, c)) return r;
  }
  if (method == "HEAD") {
    if (auto it = t.by_method.find("GET"); it != t.by_method.end()) {
      if (const Route* r = match_path(it->second, path, c)) return r;
    }
  }
  return match_path(t.any, path, c);
}

// Whether route matches path without help from a trailing multi wildcard
// (Go's exactMatch): "/a/" matches "/a/" exactly but "/a/b" only as a subtree.
bool exact(const Route* route, std::string_view path) {
  if (!route) return false;
  if (!route->pattern.ends_in_multi()) return true;
  if (!path.ends_with('/')) return false;
  return route->pattern.segments.size() ==
         static_cast<std::size_t>(std::count(path.begin(), path.end(), '/'));
}

// Calls f(path + "/"), kept on the stack when short: the probe runs for every
// request that only a subtree pattern such as "/static/{file...}" matches.
template <class F>
auto with_slash(std::string_view path, F f) {
  std::array<char, 256> buf;
  if (path.size() < buf.size()) {
    std::copy(path.begin(), path.end(), buf.begin());
    buf[path.size()] = '/';
    return f(std::string_view(buf.data(), path.size() + 1));
  }
  std::string s(path);
  s += '/';
  return f(std::string_view(s));
}

// Sorted, without duplicates, HEAD added when GET is there: an Allow list.
std::vector<std::string_view> sorted_methods(std::vector<std::string_view> out) {
  if (std::find(out.begin(), out.end(), "GET") != out.end()) out.push_back("HEAD");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

struct RouteTable::Tree {
  std::vector<std::unique_ptr<Route>> routes;
  std::map<std::string, MethodTable, std::less<>> hosts;  // "" for host-less patterns

  // Whether a pattern names a host: "" sorts first, so the last key tells.
  bool host_patterns() const noexcept { return !hosts.empty() && !hosts.rbegin()->first.empty(); }

  const Route* find(std::string_view host, std::string_view method, std::string_view path,
                    Captures& c) const {
    if (!host.empty()) {
      if (auto it = hosts.find(host); it != hosts.end()) {
        if (const Route* r = match_method(it->second, method, path, c)) return r;
      }
    }
    auto it = hosts.find(std::string_view());
    return it == hosts.end() ? nullptr : match_method(it->second, method, path, c);
  }

  // Whether path is a request for "path/" that would match exactly, so that
  // it should be redirected there.
  bool wants_slash(std::string_view host, std::string_view method, std::string_view path) const {
    if (path.ends_with('/')) return false;
    return with_slash(path, [&](std::string_view p) {
      Captures ignored;
      return exact(find(host, method, p, ignored), p);
    });
  }

  void add_methods(const MethodTable& t, std::string_view path,
                   std::vector<std::string_view>& out) const {
    for (const auto& [method, node] : t.by_method) {
      if (matches(node, path)) out.push_back(method);
    }
  }

  // Whether path, or as the trailing-slash redirect would try, path + "/",
  // has a route under node.
  static bool matches(const PathNode& node, std::string_view path) {
    Captures ignored;
    if (match_path(node, path, ignored)) return true;
    if (path.ends_with('/')) return false;
    return with_slash(path, [&](std::string_view p) { return match_path(node, p, ignored); });
  }
};

RouteTable::RouteTable() : tree_(std::make_unique<Tree>()) {}
RouteTable::~RouteTable() = default;
RouteTable::RouteTable(RouteTable&&) noexcept = default;
RouteTable& RouteTable::operator=(RouteTable&&) noexcept = default;

std::size_t RouteTable::size() const noexcept {
  return tree_->routes.size();
}

void RouteTable::add(std::string_view pattern) {
  Pattern p = detail::parse_pattern(pattern);
  for (const auto& r : tree_->routes) detail::check_conflict(r->pattern, p);
  tree_->routes.reserve(tree_->routes.size() + 1);
  auto route = std::make_unique<Route>(Route{std::move(p), tree_->routes.size()});
  MethodTable& methods = tree_->hosts[route->pattern.host];
  const std::string& method = route->pattern.method;
  insert(method.empty() ? methods.any : methods.by_method[method], route.get());
  tree_->routes.push_back(std::move(route));
}

void RouteTable::match(std::string_view method, std::string_view host, std::string_view path,
                       RouteMatch& out) const {
  using Kind = RouteMatch::Kind;
  // Checked once here, so that matching can decode without checking.
  if (!detail::valid_escapes(path)) {
    out.kind_ = Kind::bad_request;
    return;
  }
  // Without host patterns every request takes the host-less table.
  host = tree_->host_patterns() ? detail::strip_port(host) : std::string_view();
  if (!detail::is_clean(path)) {
    out.kind_ = Kind::redirect;
    out.location_ = detail::cleaned(path);
    if (tree_->wants_slash(host, method, out.location_)) out.location_ += '/';
    return;
  }
  Captures c;
  const Route* r = tree_->find(host, method, path, c);
  if (!exact(r, path) && tree_->wants_slash(host, method, path)) {
    out.kind_ = Kind::redirect;
    out.location_.assign(path).push_back('/');
    return;
  }
  if (!r) {
    out.allowed_ = allowed(host, path);
    out.kind_ = out.allowed_.empty() ? Kind::not_found : Kind::method_not_allowed;
    return;
  }
  out.kind_ = Kind::found;
  out.route_ = r->index;
  out.pattern_ = r->pattern.str;
  out.nparams_ = c.size;
  for (std::size_t i = 0; i < c.size; ++i) {
    RouteMatch::Param& p = out.params_[i];
    p.name = r->pattern.names[i];
    p.raw = c.values[i];
    p.escaped = p.raw.find('%') != p.raw.npos;
    if (p.escaped) {
      p.decoded_at = out.decoded_.size();
      detail::unescape_append(out.decoded_, p.raw);
      p.decoded_size = out.decoded_.size() - p.decoded_at;
    }
  }
}

std::vector<std::string_view> RouteTable::allowed(std::string_view host,
                                                  std::string_view path) const {
  if (!detail::valid_escapes(path)) return {};
  std::string clean;
  if (!detail::is_clean(path)) path = clean = detail::cleaned(path);
  host = detail::strip_port(host);
  std::vector<std::string_view> out;
  for (std::string_view h : {host, std::string_view()}) {
    if (auto it = tree_->hosts.find(h); it != tree_->hosts.end())
      tree_->add_methods(it->second, path, out);
    if (h.empty()) break;  // the host-less table is done
  }
  return sorted_methods(std::move(out));
}

std::vector<std::string_view> RouteTable::methods() const {
  std::vector<std::string_view> out;
  for (const auto& [host, table] : tree_->hosts) {
    for (const auto& [method, node] : table.by_method) out.push_back(method);
  }
  return sorted_methods(std::move(out));
}

int RouteMatch::status() const noexcept {
  switch (kind_) {
    case Kind::found:
      return 200;
    case Kind::not_found:
      return 404;
    case Kind::method_not_allowed:
      return 405;
    case Kind::redirect:
      return 301;
    case Kind::bad_request:
      return 400;
  }
  return 500;
}

std::string_view RouteMatch::param(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < nparams_; ++i) {
    const Param& p = params_[i];
    if (p.name != name) continue;
    return p.escaped ? std::string_view(decoded_).substr(p.decoded_at, p.decoded_size) : p.raw;
  }
  return {};
}

std::string RouteMatch::allow_header() const {
  std::string out;
  for (std::string_view m : allowed_) out.append(out.empty() ? "" : ", ").append(m);
  return out;
}

std::string join_group_pattern(std::string_view prefix, std::string_view pattern) {
  std::string method;
  if (auto sp = pattern.find_first_of(" \t"); sp != pattern.npos) {
    method = std::string(pattern.substr(0, sp)) + ' ';
    pattern.remove_prefix(std::min(pattern.size(), pattern.find_first_not_of(" \t", sp)));
  }
  if (!pattern.starts_with('/'))
    throw std::invalid_argument("spindle::http: group pattern \"" + std::string(pattern) +
                                "\" must be \"[METHOD ]/path\", without a host");
  if (prefix.find('/') == prefix.npos || prefix.find_first_of(" \t") != prefix.npos)
    throw std::invalid_argument("spindle::http: group prefix \"" + std::string(prefix) +
                                "\" must be \"[HOST]/path\"");
  while (prefix.ends_with('/')) prefix.remove_suffix(1);
  return method.append(prefix).append(pattern);
}

}  // namespace spindle::http
