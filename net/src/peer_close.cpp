#include "peer_close.hpp"

#include <sys/epoll.h>

#include <cerrno>
#include <system_error>

#include "asio_access.hpp"

namespace spindle::net::detail {

void watch_peer_close(asio::detail::reactor& reactor, int fd,
                      asio::detail::reactor::per_descriptor_data data) {
  std::uint32_t& registered = registered_events(*data);
  registered |= EPOLLRDHUP;  // kept by Asio's later EPOLL_CTL_MODs (EPOLLOUT)
  epoll_event ev{};
  ev.events = registered;
  ev.data.ptr = data;
  if (::epoll_ctl(epoll_fd(reactor), EPOLL_CTL_MOD, fd, &ev) != 0)
    throw std::system_error(errno, std::system_category(), "spindle::net: epoll EPOLLRDHUP");
}

bool peer_done(std::uint32_t events) noexcept {
  return (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
}

}  // namespace spindle::net::detail
