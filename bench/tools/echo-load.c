// echo-load: the load generator for TCP echo servers (apps/tcp-echo and its
// peers in bench/peers). One thread, one epoll set, so that it costs the same
// whichever server it drives and never competes with it for a second CPU.
//
//   echo-load --port N [--conns 64] [--depth 1] [--size 64] [--seconds 5]
//             [--warmup 1] [--cpu N] [--no-verify]
//   echo-load --port N --idle 10000 [--hold 3] [--cpu N]
//   echo-load --port N --http PATH [--conns 64] [--depth 16] ... (as load mode)
//
// Load mode opens --conns connections to 127.0.0.1:N and keeps --depth
// messages of --size bytes in flight on each (depth 1: request/response;
// more: pipelined). A message counts once all of its bytes are back; its
// latency runs from when it was handed out to then. After --warmup seconds,
// --seconds are measured; then no new messages go out and every connection
// must get all its bytes back within 5 s. Prints one line:
//
//   RESULT msgs_per_s=<float> p50_us=<float> p99_us=<float> errors=<int>
//
// errors counts connections that could not connect, were closed, returned a
// byte that was not sent (checked unless --no-verify), more bytes than were
// sent, or fewer by the end.
//
// HTTP mode is load mode with "GET PATH HTTP/1.1" requests for messages:
// it sends one first, on its own connection, and takes the length of the
// answer (a 200 with Content-Length) as every answer's; a message is then
// complete once that many bytes are back. Kept in flight --depth deep, the
// requests are pipelined, and a request's latency is its own, from when it
// was handed out to the end of its response (wrk's, pipelined, is broken).
//
// Idle mode opens --idle connections, prints "READY conns=<n> errors=<n>" once
// they are all open, holds them --hold seconds or until SIGUSR1 arrives,
// checks the server still has them open, prints "RESULT idle_conns=<n>
// errors=<n>" and closes them all.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
  // Every byte sent is pattern[stream offset % kPeriod]. A prime period keeps
  // a lost or repeated message (64 B, 16 KiB...) from lining up with it.
  kPeriod = 251,
  kIoMax = 64 * 1024,  // most bytes one read() or write() moves
  kMaxEvents = 512,
  // Latency histogram: below 2^kSubBits ns, one bucket per ns; above, each
  // power of two is cut into 2^kSubBits buckets, so a bucket is < 0.8% wide.
  kSubBits = 7,
  kSub = 1 << kSubBits,
  kBuckets = kSub * 40,  // up to 2^46 ns, far beyond any run
  kMaxReasons = 5,       // error messages printed before going quiet
};

struct options {
  int port, conns, depth, size, cpu, idle;
  double seconds, warmup, hold;
  bool verify;
  const char* http;  // the path to GET in HTTP mode; NULL: echo
};

struct conn {
  int fd;                   // -1 once failed: no longer driven
  bool want_out;            // EPOLLOUT is watched: a write came up short
  uint64_t issued;          // messages handed out; their bytes may not all be written yet
  uint64_t completed;       // messages whose bytes have all come back
  uint64_t sent, received;  // bytes
  uint64_t* sent_at;        // [depth]: when message k was handed out is at k % depth, ns
};

struct histogram {
  uint64_t count[kBuckets];
  uint64_t total;
};

enum phase { kWarmup, kMeasure, kDrain };

struct load {
  struct options opt;
  int ep;
  struct conn* conns;
  enum phase phase;
  uint64_t outstanding;  // messages in flight over all live connections
  uint64_t measured;     // messages completed while measuring
  long errors;
  struct histogram hist;
  uint64_t reply_size;  // bytes that answer one message: --size, or the probed HTTP response
};

static const uint64_t kDrainNs = 5000000000u;  // how long the echoes may take to finish

static uint8_t pattern[kPeriod + kIoMax];
static size_t period = kPeriod;  // HTTP mode: the request's length, the request repeated
static uint8_t rbuf[kIoMax];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char* what) {
  perror(what);
  exit(1);
}

// --- Latency histogram --------------------------------------------------------

static int bucket_of(uint64_t ns) {
  if (ns < kSub) return (int)ns;
  int e = 63 - __builtin_clzll(ns) - kSubBits;
  int b = kSub + e * kSub + (int)((ns >> e) - kSub);
  return b < kBuckets ? b : kBuckets - 1;
}

static double bucket_middle_ns(int b) {
  if (b < kSub) return b;
  int e = b / kSub - 1;
  uint64_t low = (uint64_t)(b % kSub + kSub) << e;
  return (double)low + (double)((1ull << e) - 1) / 2;
}

static void record(struct histogram* h, uint64_t ns) {
  h->count[bucket_of(ns)]++;
  h->total++;
}

static double percentile_us(const struct histogram* h, double p) {
  if (h->total == 0) return 0;
  double exact = p * (double)h->total;
  uint64_t rank = (uint64_t)exact, seen = 0;
  if ((double)rank < exact || rank == 0) rank++;  // the ceiling, at least the first
  for (int b = 0; b < kBuckets; b++) {
    seen += h->count[b];
    if (seen >= rank) return bucket_middle_ns(b) / 1000;
  }
  return bucket_middle_ns(kBuckets - 1) / 1000;
}

// --- Setting up ---------------------------------------------------------------

// 1,000 connections (10,000 when idle) exceed the usual soft limit of 1,024.
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) perror("setrlimit");
  }
}

static void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) < 0) die("sched_setaffinity");
}

static void fill_pattern(void) {
  for (size_t i = 0; i < sizeof pattern; i++) pattern[i] = (uint8_t)((i % kPeriod) * 73 + 11);
}

// HTTP mode: every message is the request; returns its length.
static int fill_requests(const char* path) {
  char req[kPeriod + 1];
  int len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
  if (len < 0 || len >= (int)sizeof req) {
    fprintf(stderr, "echo-load: --http: path too long\n");
    exit(2);
  }
  period = (size_t)len;
  for (size_t i = 0; i < sizeof pattern; i++) pattern[i] = (uint8_t)req[i % period];
  return len;
}

// A blocking connect, then non-blocking for the event loop; -1 on failure.
static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;  // pipelined messages go out at once, not when the last one is acked
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// HTTP mode: the length of a whole answer to the request, asked on a
// connection of its own. Exits unless it is a 200 framed by Content-Length.
static uint64_t probe_reply_size(int port) {
  int fd = connect_to(port);
  if (fd < 0) die("--http: connect");
  struct timeval patience = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  if (write(fd, pattern, period) != (ssize_t)period) die("--http: write");
  char head[8192];
  size_t got = 0;
  char* end = NULL;
  while (!end) {
    ssize_t n = got < sizeof head - 1 ? read(fd, head + got, sizeof head - 1 - got) : 0;
    if (n <= 0) die("--http: no whole response head");
    got += (size_t)n;
    head[got] = '\0';
    end = strstr(head, "\r\n\r\n");
  }
  close(fd);
  const char* length = strcasestr(head, "\r\nContent-Length:");
  if (strncmp(head, "HTTP/1.1 200 ", 13) != 0 || !length || length > end) {
    fprintf(stderr, "echo-load: --http: not a 200 with Content-Length:\n%s\n", head);
    exit(1);
  }
  return (uint64_t)(end + 4 - head) + strtoull(length + 17, NULL, 10);
}

// --- Driving the connections ------------------------------------------------------

static void fail(struct load* l, struct conn* c, const char* why) {
  if (l->errors++ < kMaxReasons) fprintf(stderr, "echo-load: connection %d: %s\n", c->fd, why);
  close(c->fd);
  c->fd = -1;
  l->outstanding -= c->issued - c->completed;
}

static void watch_out(struct load* l, struct conn* c, bool on) {
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
  c->want_out = on;
}

// Writes what has been handed out and not yet written; waits for EPOLLOUT if
// the socket is full.
static void flush(struct load* l, struct conn* c) {
  uint64_t end = c->issued * (uint64_t)l->opt.size;
  while (c->sent < end) {
    size_t len = end - c->sent < kIoMax ? (size_t)(end - c->sent) : kIoMax;
    ssize_t n = write(c->fd, pattern + c->sent % period, len);
    if (n > 0) {
      c->sent += (uint64_t)n;
    } else if (errno == EAGAIN) {
      if (!c->want_out) watch_out(l, c, true);
      return;
    } else if (errno != EINTR) {
      fail(l, c, strerror(errno));
      return;
    }
  }
  if (c->want_out) watch_out(l, c, false);
}

static void issue(struct load* l, struct conn* c, uint64_t count, uint64_t now) {
  for (uint64_t i = 0; i < count; i++) c->sent_at[c->issued++ % (uint64_t)l->opt.depth] = now;
  l->outstanding += count;
  flush(l, c);
}

// Accounts for the messages the bytes so far complete and hands out as many.
static void complete(struct load* l, struct conn* c, uint64_t now) {
  uint64_t done = c->received / l->reply_size;
  for (uint64_t k = c->completed; k < done; k++) {
    if (l->phase == kMeasure) record(&l->hist, now - c->sent_at[k % (uint64_t)l->opt.depth]);
  }
  uint64_t newly = done - c->completed;
  c->completed = done;
  l->outstanding -= newly;
  if (l->phase == kMeasure) l->measured += newly;
  if (l->phase != kDrain && newly > 0) issue(l, c, newly, now);
}

static void on_readable(struct load* l, struct conn* c, uint64_t now) {
  ssize_t n = read(c->fd, rbuf, sizeof rbuf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    fail(l, c, n == 0 ? "closed by the server" : strerror(errno));
  } else if (c->received + (uint64_t)n > (l->opt.http ? c->issued * l->reply_size : c->sent)) {
    fail(l, c, "more bytes came back than were sent");
  } else if (l->opt.verify && memcmp(rbuf, pattern + c->received % kPeriod, (size_t)n) != 0) {
    fail(l, c, "bytes came back different from those sent");
  } else {
    c->received += (uint64_t)n;
    complete(l, c, now);
  }
}

static struct conn* open_conns(struct load* l) {
  struct conn* conns = calloc((size_t)l->opt.conns, sizeof *conns);
  uint64_t* times = calloc((size_t)l->opt.conns * (size_t)l->opt.depth, sizeof *times);
  if (!conns || !times) die("calloc");
  for (int i = 0; i < l->opt.conns; i++) {
    struct conn* c = &conns[i];
    c->sent_at = times + (size_t)i * (size_t)l->opt.depth;
    c->fd = connect_to(l->opt.port);
    if (c->fd < 0) {
      if (l->errors++ < kMaxReasons) perror("echo-load: connect");
      continue;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
  }
  return conns;
}

// Moves to the next phase when its time has come; returns false when done.
static bool advance(struct load* l, uint64_t now, uint64_t* measure_from, uint64_t* stop_at) {
  if (l->phase == kWarmup && now >= *measure_from) {
    memset(&l->hist, 0, sizeof l->hist);
    l->measured = 0;
    l->phase = kMeasure;
    *stop_at += now - *measure_from;  // measure the full --seconds even if we came late
    *measure_from = now;
  }
  if (l->phase == kMeasure && now >= *stop_at) {
    l->phase = kDrain;
    *stop_at = now;
  }
  return l->phase != kDrain || (l->outstanding > 0 && now < *stop_at + kDrainNs);
}

static int run_load(const struct options* opt) {
  static struct load l;  // the histogram is too big for the stack
  l.opt = *opt;
  l.reply_size = opt->http ? probe_reply_size(opt->port) : (uint64_t)opt->size;
  l.ep = epoll_create1(EPOLL_CLOEXEC);
  if (l.ep < 0) die("epoll_create1");
  l.conns = open_conns(&l);

  uint64_t start = now_ns();
  uint64_t measure_from = start + (uint64_t)(opt->warmup * 1e9);
  uint64_t stop_at = measure_from + (uint64_t)(opt->seconds * 1e9);
  l.phase = opt->warmup > 0 ? kWarmup : kMeasure;
  for (int i = 0; i < opt->conns; i++) {
    if (l.conns[i].fd >= 0) issue(&l, &l.conns[i], (uint64_t)opt->depth, start);
  }

  struct epoll_event events[kMaxEvents];
  uint64_t now = start;
  while (advance(&l, now, &measure_from, &stop_at)) {
    int n = epoll_wait(l.ep, events, kMaxEvents, 5);  // wake up to end phases on time
    if (n < 0 && errno != EINTR) die("epoll_wait");
    now = now_ns();  // one clock read for the whole batch
    for (int i = 0; i < n; i++) {
      struct conn* c = events[i].data.ptr;
      if (c->fd >= 0 && (events[i].events & EPOLLOUT)) flush(&l, c);
      if (c->fd >= 0 && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        on_readable(&l, c, now);
      }
    }
  }

  for (int i = 0; i < opt->conns; i++) {
    if (l.conns[i].fd >= 0 && l.conns[i].completed < l.conns[i].issued) {
      fail(&l, &l.conns[i], "not every byte came back within 5 s");
    }
  }
  double seconds = (double)(stop_at - measure_from) / 1e9;
  printf("RESULT msgs_per_s=%.1f p50_us=%.2f p99_us=%.2f errors=%ld\n",
         seconds > 0 ? (double)l.measured / seconds : 0, percentile_us(&l.hist, 0.50),
         percentile_us(&l.hist, 0.99), l.errors);
  return 0;
}

// --- Idle connections ---------------------------------------------------------------

static int run_idle(const struct options* opt) {
  sigset_t usr1;  // blocked from the start: one sent early must not kill us
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, NULL);
  int* fds = calloc((size_t)opt->idle, sizeof *fds);
  if (!fds) die("calloc");
  long errors = 0;
  for (int i = 0; i < opt->idle; i++) {
    fds[i] = connect_to(opt->port);
    if (fds[i] < 0 && errors++ < kMaxReasons) perror("echo-load: connect");
  }
  printf("READY conns=%d errors=%ld\n", opt->idle, errors);
  fflush(stdout);  // the driver reads the server's memory now

  // Hold them until --hold is up or the driver, done measuring, sends SIGUSR1.
  struct timespec hold = {(time_t)opt->hold, (long)((opt->hold - (time_t)opt->hold) * 1e9)};
  while (sigtimedwait(&usr1, NULL, &hold) < 0 && errno == EINTR) {
  }
  // A server that dropped idle connections would look cheap: count them.
  for (int i = 0; i < opt->idle; i++) {
    char byte;
    if (fds[i] < 0) continue;
    bool idle = recv(fds[i], &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN;
    if (!idle) errors++;  // closed, reset, or sent something unasked
  }
  printf("RESULT idle_conns=%d errors=%ld\n", opt->idle, errors);
  return 0;  // exit closes them all at once
}

// --- Arguments ----------------------------------------------------------------------

static void usage(const char* argv0) {
  fprintf(stderr,
          "usage: %s --port N [--conns N] [--depth N] [--size BYTES] [--seconds S]\n"
          "          [--warmup S] [--cpu N] [--no-verify] [--http PATH]\n"
          "       %s --port N --idle N [--hold S] [--cpu N]\n",
          argv0, argv0);
  exit(2);
}

static double number(const char* arg, const char* argv0, double lo, double hi) {
  char* end;
  double v = strtod(arg, &end);
  if (*end != '\0' || !(v >= lo && v <= hi)) usage(argv0);
  return v;
}

static struct options parse(int argc, char** argv) {
  struct options o = {.port = 0,
                      .conns = 64,
                      .depth = 1,
                      .size = 64,
                      .cpu = -1,
                      .seconds = 5,
                      .warmup = 1,
                      .hold = 3,
                      .verify = true};
  static const struct option longs[] = {
      {"port", required_argument, 0, 'p'},    {"conns", required_argument, 0, 'c'},
      {"depth", required_argument, 0, 'd'},   {"size", required_argument, 0, 's'},
      {"seconds", required_argument, 0, 't'}, {"warmup", required_argument, 0, 'w'},
      {"cpu", required_argument, 0, 'u'},     {"idle", required_argument, 0, 'i'},
      {"hold", required_argument, 0, 'h'},    {"no-verify", no_argument, 0, 'n'},
      {"http", required_argument, 0, 'H'},    {0, 0, 0, 0},
  };
  const char* me = argv[0];
  for (int ch; (ch = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
    switch (ch) {
      case 'p':
        o.port = (int)number(optarg, me, 1, 65535);
        break;
      case 'c':
        o.conns = (int)number(optarg, me, 1, 1e6);
        break;
      case 'd':
        o.depth = (int)number(optarg, me, 1, 4096);
        break;
      case 's':
        o.size = (int)number(optarg, me, 1, 1 << 24);
        break;
      case 't':
        o.seconds = number(optarg, me, 0.001, 1e6);
        break;
      case 'w':
        o.warmup = number(optarg, me, 0, 1e6);
        break;
      case 'u':
        o.cpu = (int)number(optarg, me, 0, CPU_SETSIZE - 1);
        break;
      case 'i':
        o.idle = (int)number(optarg, me, 1, 1e6);
        break;
      case 'h':
        o.hold = number(optarg, me, 0, 1e6);
        break;
      case 'n':
        o.verify = false;
        break;
      case 'H':
        o.http = optarg;
        break;
      default:
        usage(me);
    }
  }
  if (optind != argc || o.port == 0) usage(me);
  return o;
}

int main(int argc, char** argv) {
  struct options opt = parse(argc, argv);
  signal(SIGPIPE, SIG_IGN);  // a server that vanished is an error to count, not a crash
  raise_fd_limit();
  if (opt.cpu >= 0) pin_to_cpu(opt.cpu);
  if (opt.http) {
    opt.size = fill_requests(opt.http);
    opt.verify = false;  // answers are not echoes; their count and length are checked
  } else {
    fill_pattern();
  }
  return opt.idle > 0 ? run_idle(&opt) : run_load(&opt);
}
