// A TCP echo server in Go's archetypical shape: a listener fiber accepts,
// and every connection gets a fiber that reads and writes back.
//   tcp-echo [--port 7000] [--procs N] [--host 127.0.0.1]
#include <spindle/net/bufio.hpp>
#include <spindle/net/conn.hpp>
#include <spindle/runtime.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "../common/flags.hpp"

namespace {

spindle::apps::ServeFlags parse(int argc, char** argv) {
  spindle::apps::ServeFlags o{.port = 7000};
  spindle::apps::parse_flags(
      argc, argv, "usage: tcp-echo [--host H] [--port N] [--procs N]\n",
      [&](std::string_view name, const char* value) { return o.set(name, value); });
  return o;
}

// Echoes straight from the read buffer, which BufReader gives back whenever
// it is drained: an idle connection holds no buffer.
void serve(spindle::net::Conn conn) {
  spindle::net::BufReader in(conn);
  for (;;) {
    auto n = in.fill();
    if (!n || *n == 0) return;
    std::string_view data = in.buffered();
    if (!conn.write_all(data.data(), data.size())) return;
    in.consume(data.size());
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto opt = parse(argc, argv);
  spindle::Config cfg;
  cfg.procs = opt.procs;
  spindle::run(cfg, [&] {
    auto ln = spindle::net::Listener::listen(opt.host, static_cast<std::uint16_t>(opt.port));
    if (!ln) {
      std::fprintf(stderr, "tcp-echo: listen: %s\n", ln.error().message().c_str());
      std::exit(1);
    }
    std::fprintf(stderr, "tcp-echo: listening on %s\n", ln->address().to_string().c_str());
    for (;;) {
      auto conn = ln->accept();
      if (!conn) {
        std::fprintf(stderr, "tcp-echo: accept: %s\n", conn.error().message().c_str());
        return;
      }
      // Nothing outside the fiber points into its stack (the Conn is its
      // own), so an idle connection's stack may be evicted.
      spindle::go(spindle::SpawnOptions{.name = "echo-conn", .evictable_stack = true},
                  [c = std::move(*conn)]() mutable { serve(std::move(c)); });
    }
  });
}
