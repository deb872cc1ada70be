// Runs a function in a forked child and reports how it ended and what it
// wrote to stdout and stderr: for death tests (a crash must be the child's, not the
// test runner's). Call only while no runtime is running in the parent.
// A child still running after kChildTimeoutSeconds is ended by SIGALRM, which
// fails the test instead of stalling the suite.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <functional>
#include <string>

namespace spindle::testing {

struct ChildResult {
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal killed it
  std::string err;     // its stdout and stderr
};

constexpr unsigned kChildTimeoutSeconds = 120;

inline ChildResult run_in_child(const std::function<void()>& body) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    // Death is the expected end here: the doctest crash handlers the child
    // inherited would report it as a crashed test case, with a summary
    // line ("1 failed") on the runner's stdout that the CI count reads.
    for (int sig : {SIGABRT, SIGBUS, SIGFPE, SIGILL, SIGSEGV}) std::signal(sig, SIG_DFL);
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    alarm(kChildTimeoutSeconds);  // default action: the child ends
    body();
    std::_Exit(0);
  }
  close(fds[1]);
  ChildResult r;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) r.err.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

// Under a sanitizer, the million-fiber tests shrink; the full size runs in
// `make test`. ASan multiplies memory and time per fiber; ThreadSanitizer
// counts every fiber as a thread and dies past 8,128 of them.
#if defined(__SANITIZE_THREAD__)
constexpr long kScale = 200;
#elif defined(__SANITIZE_ADDRESS__)
constexpr long kScale = 10;
#else
constexpr long kScale = 1;
#endif

}  // namespace spindle::testing
