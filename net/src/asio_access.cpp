#include "asio_access.hpp"

namespace spindle::net::detail {
namespace {

using asio::detail::epoll_reactor;
using asio::detail::scheduler_operation;

// Each Tag names a member; the explicit instantiation below defines
// member(Tag) to return its pointer ([temp.spec.general]/6: the names in
// an explicit instantiation are not access-checked).
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
struct TaskResult {
  using type = unsigned int scheduler_operation::*;
  friend type member(TaskResult);
};

template struct Expose<EpollFd, &epoll_reactor::epoll_fd_>;
template struct Expose<RegisteredEvents, &epoll_reactor::descriptor_state::registered_events_>;
template struct Expose<TaskResult, &scheduler_operation::task_result_>;

}  // namespace

int epoll_fd(epoll_reactor& reactor) noexcept {
  return reactor.*member(EpollFd{});
}

std::uint32_t& registered_events(epoll_reactor::descriptor_state& d) noexcept {
  return d.*member(RegisteredEvents{});
}

std::uint32_t ready_events(scheduler_operation& op) noexcept {
  return op.*member(TaskResult{});
}

}  // namespace spindle::net::detail
