// Completion handlers: one per op, reached through one switch with no default so a new op
// without a handler fails to compile (-Werror=switch).
#include "op.h"
#include "shard.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ringcast::core {

void shard::dispatch(const io_uring_cqe& cqe) noexcept {
    const auto [o, h] = decode(cqe.user_data);
    switch (o) {
    case op::accept:
        // slot: the listener's index; generation: which of its accept buffers.
        return on_accept(h.slot, h.generation, cqe);
    case op::connect:
        return on_connect(h, cqe);
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
    RINGCAST_LOG(log::level::error, "unknown_completion")
        .field("user_data", cqe.user_data)
        .msg("shard %u: completion with unknown tag %llx", unsigned(_id),
             static_cast<unsigned long long>(cqe.user_data));
}

void shard::on_accept(uint32_t listener_index, uint32_t index, const io_uring_cqe& cqe) noexcept {
    RINGCAST_ASSERT(listener_index < _listeners.size() && index < accepts_per_listener);
    listener_state& l = _listeners[listener_index];
    accept_buffer& b = l.buffers[index];
    RINGCAST_ASSERT(b.armed);
    b.armed = false;
    --l.armed;
    if (cqe.res < 0) {
        if (cqe.res == -ECANCELED) {
            return;
        }
        ++_counters.accept_errors;
        if (cqe.res == -ENFILE || cqe.res == -EMFILE) {
            // Descriptor table full: stop accepting until a connection closes (the kernel
            // keeps the rest in the listen backlog) instead of spinning on errors.
            if (!_accept_paused) {
                RINGCAST_LOG(log::level::error, "accept_paused")
                    .field("capacity", _conns.capacity())
                    .msg("shard %u: connection table full (%u); pausing accept", unsigned(_id),
                         _conns.capacity());
            }
            _accept_paused = true;
            return;
        }
        RINGCAST_LOG(log::level::error, "accept_failed")
            .field("error", std::strerror(-cqe.res))
            .msg("shard %u: accept: %s", unsigned(_id), std::strerror(-cqe.res));
    } else {
        admit(listener_index, static_cast<uint32_t>(cqe.res), to_peer_address(b.addr, b.len));
    }
    if (!_accept_paused && !_stopping) {
        prep_accept(listener_index, index);
    }
}

void shard::admit(uint32_t listener_index, uint32_t file_index, const peer_address& peer) noexcept {
    listener_state& l = _listeners[listener_index];
    const listener which = l.config->role;
    conn* c = _conns.allocate();
    if (c == nullptr) {
        // Cannot happen while the table is sized by descriptor_slots(); if it does, the
        // kernel's table is full too: pause like ENFILE.
        prep_close(file_index);
        ++_counters.refused_unanswered;
        _accept_paused = true;
        return;
    }
    c->file_index = file_index;
    ++_counters.accepted;
    const conn_handle h = _conns.handle(*c);
    slot_admission& a = _admitted[h.slot];
    a = slot_admission{peer, slot_use::none, static_cast<uint8_t>(listener_index), nullptr,
                       from_proxy(peer)};
    if (_stopping) {
        begin_teardown(*c);
        return;
    }
    switch (l.config->slots) {
    case listener_slots::reserved:
        // A backend's or operator's listener: its own slots, no per-address limits
        // (docs/decisions.md "Edge hardening").
        if (l.reserved_in_use >= l.config->reserved_slots) {
            return refuse_unanswered(*c, "a reserved listener's own slots are all in use");
        }
        ++l.reserved_in_use;
        a.use = slot_use::reserved;
        return open_connection(*c, which, admission::full);
    case listener_slots::capped:
        break;
    }
    // A proxy's connection is counted against its client's address once the handler names
    // the client (admit_client): its own address is the proxy's, shared by every client
    // of that proxy (docs/proxy-protocol.md).
    const address_table::admission verdict =
        a.awaiting_client ? address_table::admission{}
                          : _addresses.admit(key_of(peer), _now_ms);
    _counters.address_evictions = _addresses.evictions();
    switch (verdict.verdict) {
    case address_verdict::admitted:
        a.address_entry = verdict.entry;
        break;
    case address_verdict::untracked:
        break;
    case address_verdict::over_cap:
    case address_verdict::over_rate:
        return refuse_with(*c, refuse_address(verdict.verdict, peer));
    }
    const uint32_t total = _gauge.connections.fetch_add(1, std::memory_order_relaxed);
    const bool over_total =
        _config.max_connections_total != 0 && total >= _config.max_connections_total;
    if (_full_connections < _config.max_connections_per_shard && !over_total) {
        ++_full_connections;
        a.use = slot_use::full;
        return open_connection(*c, which, admission::full);
    }
    _gauge.connections.fetch_sub(1, std::memory_order_relaxed);
    ++_counters.refused;
    if (_spare_connections >= refusal_slots) {
        return refuse_unanswered(*c, "every spare slot in use");
    }
    RINGCAST_LOG_EVERY(log::level::warn, "connections_restricted", 1, refusal_log_interval_ms)
        .field("limit", over_total ? "max-connections-total" : "max-connections")
        .field("value",
               over_total ? _config.max_connections_total : _config.max_connections_per_shard)
        .msg("shard %u: over %s (%u): new connections get /healthz and /api/ only",
             unsigned(_id), over_total ? "--max-connections-total" : "--max-connections",
             over_total ? _config.max_connections_total : _config.max_connections_per_shard);
    ++_spare_connections;
    a.use = slot_use::spare;
    open_connection(*c, which, admission::restricted);
}

bool shard::from_proxy(const peer_address& peer) const noexcept {
    return std::any_of(_config.proxy_from.begin(), _config.proxy_from.end(),
                       [&peer](const address_prefix& p) { return p.contains(peer); });
}

const std::string& shard::refuse_address(address_verdict verdict,
                                         const peer_address& peer) noexcept {
    const bool cap = verdict == address_verdict::over_cap;
    ++(cap ? _counters.refused_address_cap : _counters.refused_address_rate);
    // Arithmetic only, per refusal; the line's strings are made only when it is written.
    const uint32_t limit = cap ? per_shard(_config.per_address, _config.shards()).max_connections
                               : per_shard(_config.per_address, _config.shards()).connect_rate;
    RINGCAST_LOG_EVERY(log::level::warn, "address_refused", 1, refusal_log_interval_ms)
        .field("peer", peer.text())
        .field("limit", cap ? "max-connections-per-ip" : "connect-rate-per-ip")
        .field("value", limit)
        .msg("shard %u: refusing connections from %s: over %s (%u on this shard)", unsigned(_id),
             peer.text().c_str(), cap ? "--max-connections-per-ip" : "--connect-rate-per-ip",
             limit);
    return cap ? _config.refusal_address_cap : _config.refusal_address_rate;
}

bool shard::awaits_client(conn_handle h) const noexcept {
    return const_cast<conn_table&>(_conns).get(h) != nullptr && _admitted[h.slot].awaiting_client;
}

client_verdict shard::admit_client(conn_handle h, const peer_address& client) noexcept {
    conn* c = _conns.get(h);
    RINGCAST_ASSERT(c != nullptr && _admitted[h.slot].awaiting_client);
    slot_admission& a = _admitted[h.slot];
    a.awaiting_client = false;
    a.peer = client;
    if (c->state != conn_state::open) {
        return client_verdict::refused; // already closing: nothing left to admit
    }
    switch (_listeners[a.listener_index].config->slots) {
    case listener_slots::reserved:
        return client_verdict::admitted; // no per-address limits here (admit())
    case listener_slots::capped:
        break;
    }
    const address_table::admission verdict = _addresses.admit(key_of(client), _now_ms);
    _counters.address_evictions = _addresses.evictions();
    switch (verdict.verdict) {
    case address_verdict::admitted:
        a.address_entry = verdict.entry;
        return client_verdict::admitted;
    case address_verdict::untracked:
        return client_verdict::admitted;
    case address_verdict::over_cap:
    case address_verdict::over_rate:
        break;
    }
    // The connection already holds its slot (full or spare) and its handler state: the
    // answer goes out through the ordinary send path, then the connection closes.
    const std::string& refusal = refuse_address(verdict.verdict, client);
    if (refusal.empty()) {
        close(h, close_mode::now);
    } else {
        send(h, core::make_frame(std::string_view(refusal)));
        close(h, close_mode::after_flush);
    }
    return client_verdict::refused;
}

void shard::open_connection(conn& c, listener which, admission mode) noexcept {
    c.user = _handler->on_open(_conns.handle(c), which, mode);
    if (c.state == conn_state::open && !c.recv_armed) {
        prep_recv(c);
    }
}

void shard::refuse_with(conn& c, const std::string& refusal) noexcept {
    if (refusal.empty() || _spare_connections >= refusal_slots) {
        return refuse_unanswered(c, "every spare slot in use");
    }
    // Say why from a spare slot, then close; the handler never sees it (user stays null).
    ++_spare_connections;
    _admitted[_conns.handle(c).slot].use = slot_use::spare;
    send_raw(c, core::make_frame(std::string_view(refusal)));
    close(_conns.handle(c), close_mode::after_flush);
    if (!c.recv_armed) {
        prep_recv(c); // the close waits for the peer's EOF
    }
}

void shard::refuse_unanswered(conn& c, const char* why) noexcept {
    ++_counters.refused_unanswered;
    RINGCAST_LOG_EVERY(log::level::warn, "refused_unanswered", 1, refusal_log_interval_ms)
        .field("reason", why)
        .msg("shard %u: %s: closing new connections unanswered", unsigned(_id), why);
    begin_teardown(c);
}

void shard::forget_admission(uint32_t slot) noexcept {
    slot_admission& a = _admitted[slot];
    switch (a.use) {
    case slot_use::none:
        break;
    case slot_use::full:
        --_full_connections;
        _gauge.connections.fetch_sub(1, std::memory_order_relaxed);
        break;
    case slot_use::spare:
        --_spare_connections;
        break;
    case slot_use::reserved:
        --_listeners[a.listener_index].reserved_in_use;
        break;
    case slot_use::outbound:
        _outbound_free.push_back(_conns.at(slot).file_index - _outbound_base);
        break;
    }
    if (a.address_entry != nullptr) {
        _addresses.release(a.address_entry, _now_ms);
    }
    a = slot_admission{};
}

peer_address shard::peer(conn_handle h) const noexcept {
    return const_cast<conn_table&>(_conns).get(h) != nullptr ? _admitted[h.slot].peer
                                                             : peer_address{};
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
        // re-arm in rearm_receives() (docs/architecture.md "Provided buffers and ENOBUFS").
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
        RINGCAST_LOG(log::level::error, "cancel_failed")
            .field("error", std::strerror(-cqe.res))
            .msg("shard %u: cancel: %s", unsigned(_id), std::strerror(-cqe.res));
    }
}

void shard::on_close(conn_handle, const io_uring_cqe& cqe) noexcept {
    // Only failures arrive here (CQE_SKIP_SUCCESS).
    RINGCAST_LOG(log::level::error, "close_failed")
        .field("error", std::strerror(-cqe.res))
        .msg("shard %u: close_direct: %s", unsigned(_id), std::strerror(-cqe.res));
}

void shard::on_wake(const io_uring_cqe& cqe) noexcept {
    // A doorbell only: the loop pass that follows drains the mesh. A negative result is our
    // own MSG_RING failing (e.g. -EOVERFLOW: the target's CQ is overflowing); the target is
    // then busy reaping and drains its rings without the doorbell.
    if (cqe.res < 0 && cqe.res != -EOVERFLOW) {
        RINGCAST_LOG(log::level::error, "doorbell_failed")
            .field("error", std::strerror(-cqe.res))
            .msg("shard %u: doorbell: %s", unsigned(_id), std::strerror(-cqe.res));
    }
}

} // namespace ringcast::core
