// The private members of Asio 1.22's epoll reactor that net/ relies on
// (net/README.md, "Edge ops" and "EPOLLRDHUP"). They are reached through
// explicit template instantiation, where C++ does not check access; all of
// it is in asio_access.cpp, so an Asio upgrade that moves them fails to
// compile there.
#pragma once

#include <asio/io_context.hpp>
// After io_context.hpp, which they need first.
#include <asio/detail/reactor.hpp>
#include <asio/detail/scheduler_operation.hpp>

#include <cstdint>

namespace spindle::net::detail {

static_assert(std::is_same_v<asio::detail::reactor, asio::detail::epoll_reactor>,
              "spindle::net needs Asio's epoll reactor");

// The reactor's epoll set.
int epoll_fd(asio::detail::epoll_reactor& reactor) noexcept;

// The events a descriptor is registered for; Asio's later EPOLL_CTL_MODs
// (adding EPOLLOUT) start from them.
std::uint32_t& registered_events(asio::detail::epoll_reactor::descriptor_state& d) noexcept;

// The event mask that epoll_reactor::run stored in a ready descriptor
// state (Asio's scheduler passes it to the state's completion).
std::uint32_t ready_events(asio::detail::scheduler_operation& op) noexcept;

}  // namespace spindle::net::detail
