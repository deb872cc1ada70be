// Request's body and context: the connection does the work.
#include "server_conn.hpp"

namespace spindle::http {

net::Result<std::string_view> Request::body(std::size_t limit) {
  return conn_->body(limit);
}

net::Result<std::size_t> Request::read_body(void* buf, std::size_t len) {
  return conn_->read_body(buf, len);
}

net::Address Request::remote_address() const {
  return conn_->remote_address();
}

const Context& Request::context() const {
  return conn_->context();
}

}  // namespace spindle::http
