// Turns a hit on a fiber's guard page into a clear fatal message instead of
// a silent segfault. The handler runs on a per-thread alternate signal
// stack: the faulting stack is, by definition, exhausted.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "sched.hpp"

namespace spindle::detail {

namespace {
constexpr std::size_t kAltStackSize = 64 * 1024;
// How far below a stack a fault still counts as that stack's overflow: one
// frame rarely spans more.
constexpr std::size_t kOverflowReach = 64 * 1024;
// The handler found when run() installed ours; restored when run() returns.
// Written before the handler is installed, so the handler may read it.
struct sigaction g_previous;

// Async-signal-safe: only write(2) and hand-rolled formatting.
void put(const char* s) {
  (void)!write(STDERR_FILENO, s, std::strlen(s));
}
void put_u64(unsigned long long v) {
  char buf[24];
  int i = sizeof buf;
  buf[--i] = '\0';
  do buf[--i] = static_cast<char>('0' + v % 10);
  while ((v /= 10) && i > 0);
  put(buf + i);
}

void on_segv(int sig, siginfo_t* info, void* ucontext) {
  M* m = this_m();
  G* g = m ? m->curg : nullptr;
  char* addr = static_cast<char*>(info->si_addr);
  // A fault just below the running fiber's stack is its overflow: in the
  // guard page, or, for an unguarded stack, in unmapped memory beneath it.
  if (g && addr < g->stack.lo && addr >= g->stack.lo - kOverflowReach) {
    char name[32];
    g->copy_name(name);
    put("spindle: fatal: fiber #");
    put_u64(g->id.load(std::memory_order_relaxed));
    put(" '");
    put(name);
    put("' overflowed its ");
    put_u64(g->stack.size);
    put(g->stack.guarded ? "-byte stack (guard page hit)"
                         : "-byte stack (no guard page: memory below it may be corrupt)");
    put("; raise Config::stack_size or SpawnOptions::stack_size\n");
    signal(SIGABRT, SIG_DFL);
    abort();
  }
  // Not ours: hand it to whoever was there before.
  if (g_previous.sa_flags & SA_SIGINFO && g_previous.sa_sigaction) {
    g_previous.sa_sigaction(sig, info, ucontext);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
  } else {
    signal(sig, SIG_DFL);  // returning re-runs the faulting access: default action
  }
}
}  // namespace

// Installed by each run() (test frameworks and other libraries replace
// signal handlers between runs), removed when it returns.
void install_fault_handler() {
  struct sigaction sa {};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_previous);
}

void remove_fault_handler() {
  sigaction(SIGSEGV, &g_previous, nullptr);
}

void* enable_altstack() {
  void* mem =
      mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return nullptr;
  stack_t ss{};
  ss.ss_sp = mem;
  ss.ss_size = kAltStackSize;
  if (sigaltstack(&ss, nullptr) != 0) {
    munmap(mem, kAltStackSize);
    return nullptr;
  }
  return mem;
}

void disable_altstack(void* mem) {
  if (!mem) return;
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  munmap(mem, kAltStackSize);
}

}  // namespace spindle::detail
