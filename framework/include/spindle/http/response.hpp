// ResponseWriter, in the shape of Go's http.ResponseWriter.
//
//   w.headers().set("Content-Type", "text/plain");
//   w.write_header(201);          // optional: the first write() sends 200
//   w.write("created");
//
// Headers may change until the response starts: at the first write() that
// does not fit the buffer, flush(), or the handler's return. A handler that
// writes its whole body before returning gets a Content-Length; one that
// flushes or overflows the buffer first gets chunked encoding from an
// HTTP/1.1 client (HTTP/1.0: the body ends at close). Responses to HEAD, 1xx,
// 204 and 304 never carry a body (writes are dropped, lengths kept).
// The server adds Date, Content-Length or Transfer-Encoding, and
// "Connection: close" when the connection will close.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spindle/net/error.hpp"

namespace spindle::http {

namespace detail {
class ServerConn;
}

// Response headers: an ordered list of name/value pairs.
class Headers {
 public:
  // Replaces every value of name (case-insensitive) with value.
  void set(std::string_view name, std::string_view value);
  void add(std::string_view name, std::string_view value);  // one more value
  void del(std::string_view name);
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  const std::vector<std::pair<std::string, std::string>>& all() const noexcept { return list_; }
  void clear() noexcept { list_.clear(); }

 private:
  std::vector<std::pair<std::string, std::string>> list_;
};

class ResponseWriter {
 public:
  Headers& headers() noexcept { return headers_; }
  // Sets the status; the first call wins, as in Go. Ignored once the
  // response has started.
  void write_header(int status);
  // Appends to the body. Fails with a connection error (the client went
  // away, or ServerConfig::write_timeout passed): the handler may stop.
  net::Status write(std::string_view data);
  // Sends headers and what is buffered now (streaming).
  net::Status flush();
  bool started() const noexcept;  // the status line has been sent
  int status() const noexcept { return status_ ? status_ : 200; }

  // Conveniences: each sets Content-Type (unless already set) and writes
  // the whole body. They return nothing, as the handler has nothing left to
  // do when the client is gone: the server closes the connection after the
  // handler returns. (A handler that streams checks write()'s result.)
  void text(int status, std::string_view body,
            std::string_view content_type = "text/plain; charset=utf-8");
  void json(int status, const nlohmann::json& value);  // application/json
  // The status with its reason phrase as a plain-text body ("404 Not Found").
  void send_status(int status);
  // Go's http.Error: a plain-text message, nosniff.
  void error(int status, std::string_view message);
  // Location: location; status 301, 302, 303, 307 or 308.
  void redirect(int status, std::string_view location);
  // The file's contents, Content-Type from its extension; 404 if it cannot
  // be opened. Read through spindle::blocking, so it never holds a P.
  void file(const std::string& path);

 private:
  friend class detail::ServerConn;
  explicit ResponseWriter(detail::ServerConn& conn) : conn_(&conn) {}

  detail::ServerConn* conn_;
  Headers headers_;
  int status_ = 0;
};

// "OK" for 200, "Not Found" for 404; "" for an unknown code.
std::string_view reason_phrase(int status) noexcept;

}  // namespace spindle::http
