// Completion handlers: one per op, reached through one switch with no default so a new op
// without a handler fails to compile (-Werror=switch).
#include "op.h"
#include "shard.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ringcast::core {

void shard::dispatch(const io_uring_cqe& cqe) noexcept {
    const auto [o, h] = decode(cqe.user_data);
    switch (o) {
    case op::accept:
        return on_accept(static_cast<listener>(h.slot), cqe);
    case op::recv:
        return on_recv(h, cqe);
    case op::send:
        return on_send(h, cqe);
    case op::shutdown:
        return on_shutdown(h, cqe);
    case op::cancel:
        return on_cancel(h, cqe);
    case op::close:
        return on_close(h, cqe);
    case op::wake:
        return on_wake(cqe);
    }
    std::fprintf(stderr, "ringcastd: shard %u: completion with unknown tag %llx\n", unsigned(_id),
                 static_cast<unsigned long long>(cqe.user_data));
}

void shard::on_accept(listener which, const io_uring_cqe& cqe) noexcept {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
        _accept_armed[size_t(which)] = false;
    }
    if (cqe.res < 0) {
        if (cqe.res == -ECANCELED) {
            return;
        }
        ++_counters.accept_errors;
        if (cqe.res == -ENFILE || cqe.res == -EMFILE) {
            // Descriptor table full: stop accepting until a connection closes (the kernel
            // keeps the rest in the listen backlog) instead of spinning on errors.
            if (!_accept_paused) {
                std::fprintf(stderr,
                             "ringcastd: shard %u: connection table full (%u); pausing accept\n",
                             unsigned(_id), _conns.capacity());
            }
            _accept_paused = true;
            return;
        }
        std::fprintf(stderr, "ringcastd: shard %u: accept: %s\n", unsigned(_id),
                     std::strerror(-cqe.res));
    } else {
        const auto file_index = static_cast<uint32_t>(cqe.res);
        conn* c = _conns.allocate();
        if (c == nullptr || _stopping) {
            if (c != nullptr) {
                c->file_index = file_index;
                begin_teardown(*c);
            } else {
                prep_close(file_index);
                _accept_paused = true;
            }
        } else {
            c->file_index = file_index;
            ++_counters.accepted;
            const conn_handle h = _conns.handle(*c);
            const uint32_t total = _gauge.connections.fetch_add(1, std::memory_order_relaxed);
            const bool over_total =
                _config.max_connections_total != 0 && total >= _config.max_connections_total;
            if (_conns.live() > _config.max_connections_per_shard || over_total) {
                _gauge.connections.fetch_sub(1, std::memory_order_relaxed);
                // Over the cap, inside the spare slots: say why, then close. The handler
                // never sees it (user stays null).
                ++_counters.refused;
                if (!_config.refusal.empty()) {
                    send_raw(*c, core::make_frame(std::string_view(_config.refusal)));
                }
                close(h, close_mode::after_flush);
            } else {
                c->user = _handler->on_open(h, which);
            }
            if (c->state == conn_state::open || c->state == conn_state::draining ||
                c->state == conn_state::lingering) {
                if (!c->recv_armed) {
                    prep_recv(*c);
                }
            }
        }
    }
    if (!_accept_paused && !_stopping) {
        arm_accepts();
    }
}

void shard::on_recv(conn_handle h, const io_uring_cqe& cqe) noexcept {
    const bool has_buffer = (cqe.flags & IORING_CQE_F_BUFFER) != 0;
    const auto bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    conn* c = _conns.get(h);
    if (c == nullptr) [[unlikely]] {
        // Cannot happen while recv_armed holds the slot; still return the buffer.
        if (has_buffer) {
            _buffers.recycle(bid);
        }
        return;
    }
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
        c->recv_armed = false;
    }
    if (cqe.res > 0) {
        _counters.bytes_received += static_cast<uint64_t>(cqe.res);
        if (c->state == conn_state::open) {
            _handler->on_data(h, c->user, _buffers.lend(bid, static_cast<std::size_t>(cqe.res)));
        }
        // Draining and lingering connections discard input: the handler is done with them.
        _buffers.recycle(bid);
        c = _conns.get(h); // the handler may have closed it
    } else if (cqe.res == 0 || (cqe.res < 0 && cqe.res != -ENOBUFS && cqe.res != -ECANCELED)) {
        // EOF or a socket error (reset, timeout): the connection is over.
        if (has_buffer) {
            _buffers.recycle(bid);
        }
        begin_teardown(*c);
    } else if (cqe.res == -ENOBUFS) {
        // The shard's buffer pool ran dry; recycled buffers are published before the
        // re-arm in rearm_receives() (IO_URING.md §2.15).
        ++_counters.recv_enobufs;
    }
    if (c == nullptr) {
        return;
    }
    if (!c->recv_armed && c->state != conn_state::closing) {
        // The multishot ended (buffer pool empty, CQ full, or a cancel for a read pause):
        // rearm_receives() re-arms it unless reading is paused.
        request_rearm(*c);
    }
    maybe_release(*c);
}

void shard::on_send(conn_handle h, const io_uring_cqe& cqe) noexcept {
    conn* c = _conns.get(h);
    RINGCAST_ASSERT(c != nullptr && c->send_in_flight);
    c->send_in_flight = false;
    give_batch(std::exchange(c->batch, nullptr));
    if (cqe.res < 0) {
        // -EPIPE / -ECONNRESET from a peer that went away, -ECANCELED from teardown.
        begin_teardown(*c);
        maybe_release(*c);
        return;
    }
    _counters.bytes_sent += static_cast<uint64_t>(cqe.res);
    const std::size_t before = c->out.cost_bytes();
    _counters.frames_sent += c->out.consume(static_cast<std::size_t>(cqe.res));
    _queued_total -= before - c->out.cost_bytes();
    if (c->state == conn_state::closing) {
        maybe_release(*c);
        return;
    }
    if (!c->out.empty()) {
        mark_dirty(*c);
    } else if (c->state == conn_state::draining) {
        begin_lingering(*c);
    }
    if (c->recv_paused && c->out.cost_bytes() <= _config.read_pause_bytes / 4) {
        c->recv_paused = false;
        if (!c->recv_armed) {
            request_rearm(*c);
        }
    }
}

void shard::on_shutdown(conn_handle h, const io_uring_cqe& cqe) noexcept {
    conn* c = _conns.get(h);
    RINGCAST_ASSERT(c != nullptr && c->shutdown_in_flight);
    c->shutdown_in_flight = false;
    if (cqe.res < 0 && cqe.res != -ECANCELED && cqe.res != -ENOTCONN) {
        begin_teardown(*c);
    }
    maybe_release(*c);
}

void shard::on_cancel(conn_handle, const io_uring_cqe& cqe) noexcept {
    // Only failures arrive here (CQE_SKIP_SUCCESS). -ENOENT / -EALREADY: the op finished on
    // its own meanwhile; its own completion does the bookkeeping.
    if (cqe.res != -ENOENT && cqe.res != -EALREADY) {
        std::fprintf(stderr, "ringcastd: shard %u: cancel: %s\n", unsigned(_id),
                     std::strerror(-cqe.res));
    }
}

void shard::on_close(conn_handle, const io_uring_cqe& cqe) noexcept {
    // Only failures arrive here (CQE_SKIP_SUCCESS).
    std::fprintf(stderr, "ringcastd: shard %u: close_direct: %s\n", unsigned(_id),
                 std::strerror(-cqe.res));
}

void shard::on_wake(const io_uring_cqe& cqe) noexcept {
    // A doorbell only: the loop pass that follows drains the mesh. A negative result is our
    // own MSG_RING failing (e.g. -EOVERFLOW: the target's CQ is overflowing); the target is
    // then busy reaping and drains its rings without the doorbell.
    if (cqe.res < 0 && cqe.res != -EOVERFLOW) {
        std::fprintf(stderr, "ringcastd: shard %u: doorbell: %s\n", unsigned(_id),
                     std::strerror(-cqe.res));
    }
}

} // namespace ringcast::core
