// Outbound connections: conn_io::connect() and the completion of its connect. Everything
// else about such a connection (receive, send, close, timers) is the accepted
// connections' code; what differs is how it starts and which descriptor it holds.
//
//   connect() ── socket + TCP_NODELAY, installed at a free outbound file index ──► connecting
//      (synchronous; an error here is connect()'s result and nothing follows)        │
//                        IORING_OP_CONNECT on the fixed file, now or after delay_ms ◄─┘
//   connect CQE 0 ─────────────────────────────► open: on_connect_result(h, user, {})
//   connect CQE < 0, or ended by the shard ────► closing: on_connect_result(h, user, why)
//      (deadline, stopping; abandoned: silent)     then on_closed(h, user) once released
//
// The liveness timer is the shard's while connecting: first the start (delay_ms), then the
// deadline (connect_timeout_ms).
//
// The socket is made with plain socket() and setsockopt() on the shard's thread, not with
// IORING_OP_SOCKET: TCP_NODELAY on a direct descriptor needs SOCKET_URING_OP_SETSOCKOPT
// (Linux 6.7; liburing 2.3 has neither the constant nor its prep helper), and ringcast
// supports 6.1. Neither call blocks, and a connect is rare (a broker connection and its
// reconnects): socket + setsockopt + install + close + the later removal measured
// 11-13 µs per connect against 8-12 µs for IORING_OP_SOCKET + close_direct (2 000 of each,
// 2 vCPU, 6.18; docs/architecture.md "Outbound connections"). The plain descriptor lives
// only inside connect(): once the table holds the socket it is closed, so RLIMIT_NOFILE
// is not touched for long and outbound sockets are direct descriptors like accepted ones.
//
// Outbound sockets take file indices from the top of the table, which the kernel's
// allocator never hands to an accept (uring::init), and which the shard installs and
// removes itself, synchronously, so an index freed by one connection's release can be
// installed by the next connect() at once.
#include "op.h"
#include "shard.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ringcast::core {

namespace {
/// The sockaddr of `a` into `out`; its length, or 0 for ip_family::unknown.
socklen_t to_sockaddr(const peer_address& a, sockaddr_storage& out) noexcept {
    out = sockaddr_storage{};
    switch (a.family) {
    case ip_family::v4: {
        auto& in = reinterpret_cast<sockaddr_in&>(out);
        in.sin_family = AF_INET;
        in.sin_port = htons(a.port);
        std::memcpy(&in.sin_addr, a.bytes.data(), 4);
        return sizeof(sockaddr_in);
    }
    case ip_family::v6: {
        auto& in6 = reinterpret_cast<sockaddr_in6&>(out);
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(a.port);
        std::memcpy(&in6.sin6_addr, a.bytes.data(), 16);
        return sizeof(sockaddr_in6);
    }
    case ip_family::unknown:
        return 0;
    }
    return 0;
}
} // namespace

result<conn_handle> shard::connect(const outbound_target& to, void* user) noexcept {
    RINGCAST_ASSERT(user != nullptr);
    if (_stopping) {
        return errno_error(ESHUTDOWN);
    }
    sockaddr_storage addr;
    const socklen_t len = to_sockaddr(to.address, addr);
    if (len == 0) {
        return errno_error(EAFNOSUPPORT);
    }
    if (_outbound_free.empty()) {
        return errno_error(EMFILE);
    }
    // The table is sized so that every outbound file index has a connection slot
    // (descriptor_slots()): accepted connections hold at most the kernel's range.
    conn* c = _conns.allocate();
    RINGCAST_ASSERT(c != nullptr);
    const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0) {
        // Requests and replies to a broker are small: Nagle would hold a second request
        // back until the first is acknowledged (up to a delayed ACK, ~40 ms).
        const int one = 1;
        if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
            err = errno;
        } else if (const int rc = _ring.install_file(_outbound_base + _outbound_free.back(), fd);
                   rc < 0) {
            err = -rc;
        }
        ::close(fd); // installed or not, it goes: the table holds its own reference
    }
    if (err != 0) {
        _conns.release(*c);
        return errno_error(err);
    }
    const uint32_t index = _outbound_free.back();
    _outbound_free.pop_back();
    c->file_index = _outbound_base + index;
    c->user = user;
    c->state = conn_state::connecting;
    outbound_state& o = _outbound[index];
    o.addr = addr;
    o.len = len;
    o.end = connect_end::none;
    o.connect_timeout_ms = std::max<uint32_t>(to.connect_timeout_ms, timer_wheel::tick_ms);
    const conn_handle h = _conns.handle(*c);
    _admitted[h.slot] = slot_admission{to.address, slot_use::outbound, 0, nullptr};
    ++_counters.outbound_connects;
    if (to.delay_ms > 0) {
        _timers.schedule(timer_id(h.slot, conn_timer::liveness), _now_ms + to.delay_ms);
    } else {
        prep_connect(*c);
    }
    return h;
}

void shard::prep_connect(conn& c) noexcept {
    outbound_state& o = outbound_of(c);
    _timers.schedule(timer_id(_conns.handle(c).slot, conn_timer::liveness),
                     _now_ms + o.connect_timeout_ms);
    io_uring_sqe* sqe = _ring.get_sqe();
    io_uring_prep_connect(sqe, static_cast<int>(c.file_index),
                          reinterpret_cast<const sockaddr*>(&o.addr), o.len);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, encode(op::connect, _conns.handle(c)));
    c.connect_in_flight = true;
}

void shard::on_connect_timer(conn& c) noexcept {
    if (c.connect_in_flight) {
        end_connect(c, connect_end::deadline);
    } else {
        prep_connect(c); // the delay is over
    }
}

void shard::end_connect(conn& c, connect_end why) noexcept {
    RINGCAST_ASSERT(c.state == conn_state::connecting && why != connect_end::none);
    outbound_of(c).end = why;
    if (c.connect_in_flight) {
        begin_teardown(c); // cancels the connect; on_connect() reports the end
    } else {
        fail_connect(c, 0); // still waiting for its start: nothing to cancel
    }
}

void shard::on_connect(conn_handle h, const io_uring_cqe& cqe) noexcept {
    conn* c = _conns.get(h);
    RINGCAST_ASSERT(c != nullptr && c->connect_in_flight);
    c->connect_in_flight = false;
    if (c->state == conn_state::connecting && cqe.res == 0) {
        c->state = conn_state::open;
        _timers.cancel(timer_id(h.slot, conn_timer::liveness));
        _handler->on_connect_result(h, c->user, {});
        c = _conns.get(h); // the handler may have closed it
        if (c != nullptr && c->state == conn_state::open && !c->recv_armed) {
            prep_recv(*c);
        }
        return;
    }
    fail_connect(*c, cqe.res);
}

void shard::fail_connect(conn& c, int cqe_res) noexcept {
    // When the shard ended it, the connect's own result (-ECANCELED, 0 if it won the race
    // with the cancel, or none if it never started) is not the reason.
    const conn_handle h = _conns.handle(c);
    ++_counters.outbound_connect_failures;
    int why = 0;
    switch (outbound_of(c).end) {
    case connect_end::none:
        RINGCAST_ASSERT(cqe_res < 0);
        why = -cqe_res;
        break;
    case connect_end::deadline:
        why = ETIMEDOUT;
        break;
    case connect_end::stopping:
        why = ECANCELED;
        break;
    case connect_end::abandoned:
        break;
    }
    if (c.state != conn_state::closing) {
        // Refused, unreachable, or not started: nothing is outstanding. Closing before the
        // handler hears of it, so a close(h) in on_connect_result is a no-op.
        c.state = conn_state::closing;
        cancel_timers(h.slot);
    }
    if (why != 0) {
        _handler->on_connect_result(h, c.user, errno_error(why).error);
    }
    maybe_release(c);
}

void shard::release_outbound(conn& c) noexcept {
    if (const int rc = _ring.remove_file(c.file_index); rc < 0) [[unlikely]] {
        RINGCAST_LOG(log::level::error, "outbound_release_failed")
            .field("error", std::strerror(-rc))
            .msg("shard %u: releasing outbound descriptor %u: %s", unsigned(_id), c.file_index,
                 std::strerror(-rc));
    }
    ++_counters.outbound_closed;
}

} // namespace ringcast::core
