// ResponseWriter: the handler's side of the response; the connection
// (conn_write.cpp) frames and sends it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "mime.hpp"
#include "server_conn.hpp"
#include "spindle/runtime.hpp"

namespace spindle::http {
namespace {

// nlohmann's serializer appending to a string named per call. Built per
// response, the serializer cost three allocations (its output adapter's
// shared_ptr, a 512-byte indent string) and a localeconv() each time; one
// per thread is reused instead. dump() has no scheduling point, so the
// thread's instance is never used by two fibers at once. (The serializer
// reads the locale's decimal point once, at the thread's first JSON
// response: like the rest of the server it assumes the C locale.)
class AppendTo final : public nlohmann::detail::output_adapter_protocol<char> {
 public:
  std::string* out = nullptr;
  void write_character(char c) override { out->push_back(c); }
  void write_characters(const char* s, std::size_t n) override { out->append(s, n); }
};

[[gnu::noinline]] void dump_json(const nlohmann::json& value, std::string& out) {
  struct Writer {
    std::shared_ptr<AppendTo> target = std::make_shared<AppendTo>();
    nlohmann::detail::serializer<nlohmann::json> serializer{target, ' '};
  };
  static thread_local Writer w;
  w.target->out = &out;
  w.serializer.dump(value, false, false, 0);
}

}  // namespace

void ResponseWriter::write_header(int status) {
  if (status_ == 0 && !conn_->started()) status_ = status;
}

net::Status ResponseWriter::write(std::string_view data) {
  return conn_->write(data);
}

net::Status ResponseWriter::flush() {
  return conn_->flush();
}

bool ResponseWriter::started() const noexcept {
  return conn_->started();
}

void ResponseWriter::text(int status, std::string_view body, std::string_view content_type) {
  write_header(status);
  conn_->set_default_type(content_type);
  (void)write(body);
}

// Serialized straight into the connection's body buffer: no string per
// response.
void ResponseWriter::json(int status, const nlohmann::json& value) {
  write_header(status);
  conn_->set_default_type("application/json");
  if (started()) return (void)write(value.dump());
  std::string& out = conn_->body_buffer();
  std::size_t before = out.size();
  dump_json(value, out);
  (void)conn_->body_appended(before);
}

void ResponseWriter::send_status(int status) {
  write_header(status);
  conn_->set_default_type("text/plain; charset=utf-8");
  char line[64];
  std::string_view reason = reason_phrase(status);
  int n = std::snprintf(line, sizeof line, "%d %.*s\n", status, static_cast<int>(reason.size()),
                        reason.data());
  (void)write({line, static_cast<std::size_t>(n)});
}

void ResponseWriter::error(int status, std::string_view message) {
  headers_.del("Content-Length");
  headers_.set("Content-Type", "text/plain; charset=utf-8");
  headers_.set("X-Content-Type-Options", "nosniff");
  write_header(status);
  if (write(message)) (void)write("\n");
}

void ResponseWriter::redirect(int status, std::string_view location) {
  headers_.set("Location", location);
  send_status(status);
}

// Read through spindle::blocking (file I/O may block its thread), in
// pieces that go out as they are read.
void ResponseWriter::file(const std::string& path) {
  int fd = spindle::blocking([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); });
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) ::close(fd);
    return send_status(404);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (!headers_.get("Content-Type")) headers_.set("Content-Type", detail::mime_type(path));
  headers_.set("Content-Length", std::to_string(st.st_size));
  write_header(200);
  char buf[16 * 1024];
  for (off_t left = st.st_size; left > 0;) {
    ssize_t n = spindle::blocking([&] { return ::read(fd, buf, sizeof buf); });
    if (n <= 0) break;  // the file shrank: the connection closes (short body)
    if (!write({buf, static_cast<std::size_t>(n)})) return;
    left -= n;
  }
}

}  // namespace spindle::http
