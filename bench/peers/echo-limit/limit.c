// echo-limit: the floor for apps/tcp-echo's costs. One thread, one epoll set
// (level-triggered), non-blocking sockets; each readable connection is read
// into its own fixed buffer and written straight back. Nothing is allocated
// per message and nothing is done that an echo does not need, so the CPU it
// spends per message is as close to "just the system calls" as an event loop
// gets. bench/echo_bench.py compares Spindle and Go against it.
//
//   echo-limit --port N
//
// Listens on 127.0.0.1 only: it is a benchmark peer, not a service.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
  kBufSize = 16 * 1024,  // the same per-connection buffer as the Go peer
  kMaxEvents = 256,
};

struct conn {
  int fd;
  size_t off, len;  // buf[off, len) is read but not yet written back
  char buf[kBufSize];
};

static void die(const char* what) {
  perror(what);
  exit(1);
}

// Idle-connection runs open 10,000 sockets; the soft limit is often 1,024.
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr*)&addr, sizeof addr) < 0) die("bind");
  // The kernel caps the backlog at net.core.somaxconn; ask for the most so that
  // 10,000 connects in a burst are not dropped and retried a second later.
  if (listen(fd, 65535) < 0) die("listen");
  return fd;
}

static void watch(int ep, int op, struct conn* c, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static void close_conn(struct conn* c) {
  close(c->fd);  // also removes it from the epoll set
  free(c);
}

static void accept_all(int ep, int listener) {
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) perror("accept4");
      return;  // on EMFILE and the like: level-triggered, so we will be back
    }
    int one = 1;  // an echo must not wait for more bytes before answering
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn* c = malloc(sizeof *c);  // per connection, never per message
    if (!c) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->off = c->len = 0;
    watch(ep, EPOLL_CTL_ADD, c, EPOLLIN);
  }
}

// Writes the pending tail. Returns true when all of it went out; false when the
// connection was closed or must wait for EPOLLOUT (the caller then stops).
static bool flush(int ep, struct conn* c) {
  while (c->off < c->len) {
    ssize_t n = write(c->fd, c->buf + c->off, c->len - c->off);
    if (n > 0) {
      c->off += (size_t)n;
    } else if (errno == EAGAIN) {
      watch(ep, EPOLL_CTL_MOD, c, EPOLLOUT);  // stop reading until the tail is out
      return false;
    } else if (errno != EINTR) {
      close_conn(c);
      return false;
    }
  }
  return true;
}

static void on_readable(int ep, struct conn* c) {
  for (;;) {
    ssize_t n = read(c->fd, c->buf, sizeof c->buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      close_conn(c);
      return;
    }
    if (n < 0) return;
    c->off = 0;
    c->len = (size_t)n;
    if (!flush(ep, c)) return;
    // A short read almost always emptied the socket; skip the read that would
    // only say EAGAIN. If bytes remain, level-triggered epoll reports them again.
    if ((size_t)n < sizeof c->buf) return;
  }
}

static void on_writable(int ep, struct conn* c) {
  if (flush(ep, c)) watch(ep, EPOLL_CTL_MOD, c, EPOLLIN);
}

static int parse_port(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "--port") == 0) {
    char* end;
    long port = strtol(argv[2], &end, 10);
    if (*end == '\0' && port > 0 && port < 65536) return (int)port;
  }
  fprintf(stderr, "usage: %s --port N\n", argv[0]);
  exit(2);
}

int main(int argc, char** argv) {
  int port = parse_port(argc, argv);
  signal(SIGPIPE, SIG_IGN);  // a peer that vanished is an EPIPE, not a crash
  raise_fd_limit();
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  int listener = listen_on(port);
  // The listener is told apart from connections by its NULL data.ptr.
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, listener, &lev) < 0) die("epoll_ctl");

  struct epoll_event events[kMaxEvents];
  for (;;) {
    int n = epoll_wait(ep, events, kMaxEvents, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      struct conn* c = events[i].data.ptr;
      if (!c) {
        accept_all(ep, listener);
      } else if (c->off < c->len) {
        on_writable(ep, c);  // only EPOLLOUT (or an error) is watched meanwhile
      } else {
        on_readable(ep, c);  // EPOLLIN, or HUP/ERR, which read() reports
      }
    }
  }
}
