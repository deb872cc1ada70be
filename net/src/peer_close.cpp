#include "peer_close.hpp"

#include <sys/epoll.h>

#include <atomic>
#include <system_error>
#include <type_traits>

namespace spindle::net::detail {

namespace {

using asio::detail::epoll_reactor;
using asio::detail::scheduler_operation;
using CompleteFn = void (*)(void*, scheduler_operation*, const asio::error_code&, std::size_t);

// Access to a private member through an explicit instantiation, where C++
// does not check access ([temp.spec.general]/6). Each Tag names a member;
// the instantiation below defines member(Tag) to return its pointer.
template <class Tag, typename Tag::type Member>
struct Expose {
  friend typename Tag::type member(Tag) { return Member; }
};

struct EpollFd {
  using type = int epoll_reactor::*;
  friend type member(EpollFd);
};
struct RegisteredEvents {
  using type = std::uint32_t epoll_reactor::descriptor_state::*;
  friend type member(RegisteredEvents);
};
struct CompleteFunc {
  using type = CompleteFn scheduler_operation::*;
  friend type member(CompleteFunc);
};

template struct Expose<EpollFd, &epoll_reactor::epoll_fd_>;
template struct Expose<RegisteredEvents, &epoll_reactor::descriptor_state::registered_events_>;
template struct Expose<CompleteFunc, &scheduler_operation::func_>;

static_assert(std::is_same_v<asio::detail::reactor, epoll_reactor>,
              "spindle::net needs Asio's epoll reactor");

// Asio's descriptor_state::do_complete, which every descriptor state starts
// with; the hook forwards to it. Atomic because PollDescs are opened on any
// thread; relaxed, since every store writes the same value and a hooked
// state reaches the reactor's threads only after its epoll_ctl.
std::atomic<CompleteFn> g_asio_complete{nullptr};

thread_local std::uint32_t t_edge_events = 0;

// The reactor completes a descriptor state with its edge's event mask as
// bytes_transferred; do_complete runs the queued ops' perform() within.
void complete_recording_events(void* owner, scheduler_operation* op, const asio::error_code& ec,
                               std::size_t events) {
  t_edge_events = static_cast<std::uint32_t>(events);
  g_asio_complete.load(std::memory_order_relaxed)(owner, op, ec, events);
}

#if defined(__SANITIZE_THREAD__)
extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);
#endif

// A race we accept, and hide from TSan: between Asio's EPOLL_CTL_ADD and
// this store, a polling thread may already complete the fresh state (the
// socket was ready), reading the pointer as Asio's or as ours. Both are
// valid, the store is one aligned word, and until this PollDesc's first
// wait queues an Edge op, completing the state runs none of our code. The
// race cannot be closed from outside: Asio allocates the state and adds it
// to epoll in one call, and calls it without a lock.
void install_hook(CompleteFn& complete) {
#if defined(__SANITIZE_THREAD__)
  AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
#endif
  std::atomic_ref<CompleteFn>(complete).store(complete_recording_events, std::memory_order_relaxed);
#if defined(__SANITIZE_THREAD__)
  AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
#endif
}

}  // namespace

void watch_peer_close(asio::detail::reactor& reactor, int fd,
                      asio::detail::reactor::per_descriptor_data data) {
  // descriptor_state inherits scheduler_operation privately: only a C-style
  // cast converts to an inaccessible base.
  auto* op = (scheduler_operation*)data;  // NOLINT(google-readability-casting)
  CompleteFn& complete = op->*member(CompleteFunc{});
  if (complete != complete_recording_events) {
    // Every descriptor state is built with the same function; the states
    // are pooled and reused, and keep the hook.
    g_asio_complete.store(complete, std::memory_order_relaxed);
    install_hook(complete);
  }
  std::uint32_t& registered = data->*member(RegisteredEvents{});
  registered |= EPOLLRDHUP;  // kept by Asio's later EPOLL_CTL_MODs (EPOLLOUT)
  epoll_event ev{};
  ev.events = registered;
  ev.data.ptr = data;
  if (::epoll_ctl(reactor.*member(EpollFd{}), EPOLL_CTL_MOD, fd, &ev) != 0)
    throw std::system_error(errno, std::system_category(), "spindle::net: epoll EPOLLRDHUP");
}

std::uint32_t edge_events() noexcept {
  return t_edge_events;
}

bool peer_done(std::uint32_t events) noexcept {
  return (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
}

}  // namespace spindle::net::detail
