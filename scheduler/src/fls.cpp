#include "fls.hpp"

#include <atomic>
#include <stdexcept>

#include "sched.hpp"
#include "spindle/fiber_local.hpp"

namespace spindle::detail {

namespace {
std::atomic<std::size_t> g_keys{0};

G* current_or_throw() {
  M* m = this_m();
  if (!m || !m->curg) throw std::logic_error("spindle::FiberLocal used outside a fiber");
  return m->curg;
}
}  // namespace

std::size_t fls_new_key() noexcept {
  return g_keys.fetch_add(1, std::memory_order_relaxed);
}

void* fls_get(std::size_t key) {
  G* g = current_or_throw();
  if (!g->has_fls || key >= g->fls->slots.size()) return nullptr;
  return g->fls->slots[key].value;
}

void fls_set(std::size_t key, void* value, void (*destroy)(void*)) {
  G* g = current_or_throw();
  if (!g->has_fls) {
    g->fls = new FlsTable;
    g->has_fls = true;
  }
  if (key >= g->fls->slots.size()) g->fls->slots.resize(key + 1);
  g->fls->slots[key] = {value, destroy};
}

void fls_destroy(G* g) noexcept {
  if (!g->has_fls) return;
  // A destructor may itself use fiber-local storage: detach the table first.
  FlsTable* table = g->fls;
  g->fls = nullptr;
  g->has_fls = false;
  for (FlsSlot& s : table->slots)
    if (s.value) s.destroy(s.value);
  delete table;
}

}  // namespace spindle::detail
