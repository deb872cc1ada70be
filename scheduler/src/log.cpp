#include "log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

namespace spindle::detail {
spdlog::logger& runtime_log() {
  static spdlog::logger log("spindle", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  return log;
}
}  // namespace spindle::detail
