// Knowing that the peer has half-closed (sent its FIN) without a syscall,
// as nginx does with EPOLLRDHUP. Asio's epoll reactor registers sockets
// without EPOLLRDHUP, so this adds it (through two of its private members,
// asio_access.hpp); an edge's mask reaches the edge op through
// AsioPoller (edge_events()).
//
// Why it matters: after a short read the socket is almost surely empty, so
// a server can wait for the next edge instead of reading again only to get
// EAGAIN (one syscall per request). But a FIN that arrived together with
// the data raises no edge of its own: waiting first would wait forever.
// With EPOLLRDHUP registered, such an edge carries the flag, and the wait
// is skipped.
#pragma once

#include <asio/io_context.hpp>
// After io_context.hpp, which it needs first.
#include <asio/detail/reactor.hpp>

#include <cstdint>

namespace spindle::net::detail {

// Adds EPOLLRDHUP to fd's registration (one epoll_ctl). Call once, right
// after register_descriptor and before any op is started on it (nothing
// else touches the state yet).
void watch_peer_close(asio::detail::reactor& reactor, int fd,
                      asio::detail::reactor::per_descriptor_data data);

// Whether an edge's mask says the peer will send no more: half-close,
// hang-up or error. A read then returns what is left, then 0 or the error.
bool peer_done(std::uint32_t events) noexcept;

}  // namespace spindle::net::detail
