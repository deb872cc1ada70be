// Helpers for net tests: a server fiber on a free port, plain-thread
// clients on blocking sockets (a real peer outside the runtime).
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>

namespace spindle::testing {

// A blocking client socket connected to 127.0.0.1:port, or -1.
inline int blocking_connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Raises the soft descriptor limit to n (or the hard limit); returns it.
inline rlim_t raise_fd_limit(rlim_t n) {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = std::min(n, r.rlim_max);
  setrlimit(RLIMIT_NOFILE, &r);
  return r.rlim_cur;
}

}  // namespace spindle::testing
