// Command-line flags of the example programs: "--name value" pairs.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace spindle::apps {

// Where a server listens and how many Ps it runs; every example has these.
struct ServeFlags {
  std::string host = "127.0.0.1";
  int port = 0;
  int procs = 0;  // 0: the runtime's default

  // Takes the flag if it is one of ours.
  bool set(std::string_view name, const char* value) {
    if (name == "--host")
      host = value;
    else if (name == "--port")
      port = std::atoi(value);
    else if (name == "--procs")
      procs = std::atoi(value);
    else
      return false;
    return true;
  }
};

// Calls set(name, value) for each pair; an unknown name (set returns false)
// or a name without a value prints usage and exits with status 2.
template <class Set>
void parse_flags(int argc, char** argv, const char* usage, Set set) {
  bool ok = argc % 2 == 1;
  for (int i = 1; ok && i + 1 < argc; i += 2) ok = set(std::string_view(argv[i]), argv[i + 1]);
  if (ok) return;
  std::fputs(usage, stderr);
  std::exit(2);
}

}  // namespace spindle::apps
