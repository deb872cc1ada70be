// The runtime's own diagnostics (stall reports, uncaught exceptions) go to
// stderr through a logger of their own, not registered with spdlog, so an
// application's logging set-up neither hides nor reroutes them.
#pragma once

#include <spdlog/logger.h>

namespace spindle::detail {
spdlog::logger& runtime_log();
}
