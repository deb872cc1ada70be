// Fiber-local storage tables (see spindle/fiber_local.hpp).
#pragma once

#include <cstddef>
#include <vector>

#include "g.hpp"

namespace spindle::detail {

struct FlsSlot {
  void* value = nullptr;
  void (*destroy)(void*) = nullptr;
};

// Allocated on a fiber's first FiberLocal use; freed when it ends.
struct FlsTable {
  std::vector<FlsSlot> slots;
};

void fls_destroy(G* g) noexcept;

}  // namespace spindle::detail
