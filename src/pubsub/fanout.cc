// Fanout: framing an ordered message once, handing it to the interested shards, and local
// delivery under the slow-consumer policy (fanout.h has the model).
#include "fanout.h"

#include "acks.h"
#include "socketio_wire.h"
#include "subscriptions.h"

#include <ringcast/ws.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <memory>

namespace ringcast::pubsub {

core::frame_ref frame_message(const envelope& e, const core::frame_ref& data) {
    // The WebSocket header and the envelope in one shareable buffer, with a large payload
    // spliced in by reference instead of copied.
    const std::size_t body = envelope_size(e);
    const std::size_t header = ws::frame_header_size(body);
    core::frame_ref f;
    if (e.data.size() >= splice_data_bytes) {
        const std::size_t own = header + body - e.data.size();
        f = core::make_spliced_frame(own, header + envelope_data_offset(e), data);
        ws::write_frame_header(f->mutable_data(), ws::opcode::text, body);
        write_envelope_around_data(
            e, std::span(reinterpret_cast<char*>(f->mutable_data() + header), own - header));
    } else {
        f = core::make_frame(header + body);
        ws::write_frame_header(f->mutable_data(), ws::opcode::text, body);
        write_envelope(e, std::span(reinterpret_cast<char*>(f->mutable_data() + header), body));
    }
    return f;
}

fanout::fanout(core::conn_io& io, subscriptions& local, std::size_t slow_consumer_bytes,
               uint32_t start_s, uint32_t ack_timeout_ms, std::size_t deflate_threshold_bytes,
               const socketio_config* socketio)
    : _io(io), _local(local), _slow_consumer_bytes(slow_consumer_bytes),
      _ack_timeout_ms(ack_timeout_ms), _deflate_threshold_bytes(deflate_threshold_bytes),
      _self(io.id()), _start_s(start_s), _socketio(socketio ? *socketio : _no_socketio) {}

fanout::~fanout() = default;

std::string fanout::next_message_id() {
    char id[48];
    std::snprintf(id, sizeof(id), "m-%x-%x-%llx", _start_s, unsigned(_self),
                  static_cast<unsigned long long>(++_message_seq));
    return id;
}

core::frame_ref fanout::fan_out(const publish_job& job, const std::vector<bool>& interested) {
    const std::string id = job.message_id.empty() ? next_message_id() : job.message_id;
    envelope e;
    e.message_id = id;
    e.event = job.event;
    e.channel = job.channel;
    e.data =
        std::string_view(reinterpret_cast<const char*>(job.data->data()), job.data->own_size());
    e.prio = job.prio;
    e.timestamp_ms = job.timestamp_ms != 0 ? job.timestamp_ms : wall_clock_ms();
    e.user_id = job.user_id;
    e.offset = job.offset;
    const core::frame_ref f = frame_message(e, job.data);

    const unsigned self = unsigned(_self);
    for (unsigned shard = 0; shard < interested.size(); ++shard) {
        if (!interested[shard]) {
            continue;
        }
        if (shard == self) {
            deliver_local(job.channel, f, job.prio, job.offset, job.ack, job.accepted_us);
        } else {
            _io.post<kinds::deliver>(
                shard_id(static_cast<uint16_t>(shard)),
                std::make_unique<delivery>(
                    delivery{f, job.channel, job.prio, job.offset, job.ack, job.accepted_us}));
        }
    }
    return f;
}

void fanout::deliver_local(std::string_view channel, const core::frame_ref& f, priority prio,
                           uint64_t offset, bool ack, uint64_t accepted_us) noexcept {
    const local_channel* ch = _local.delivering(channel, offset);
    if (ch == nullptr) {
        return; // the last local subscriber left while this was in flight
    }
    // Index loop: a slow-consumer close does not change the list (the session stays until
    // its connection is released), so positions are stable during the pass. The shard's
    // budget is read once per message, not per subscriber.
    const bool over = _io.output_over_budget();
    bool queued = false;
    variants v;
    if (!ack) {
        for (std::size_t i = 0; i < ch->subscribers.size(); ++i) {
            const auto& sub = ch->subscribers[i];
            if (!sub.s->_closing && sub.recovering == 0) {
                const core::frame_ref& g = wire_frame(*sub.s, f, channel, offset, v);
                queued |= g && deliver(sub.h, *sub.s, g, prio, over);
            }
        }
    } else {
        // A message that needs acks is never dropped, and waits in each receiver's window
        // (as the frame it was sent as: a resend sends that again).
        const priority kept = prio == priority::critical ? prio : priority::high;
        for (std::size_t i = 0; i < ch->subscribers.size(); ++i) {
            const auto& sub = ch->subscribers[i];
            if (sub.s->_closing || sub.recovering != 0) {
                continue;
            }
            const core::frame_ref& g = sub.s->_sink != nullptr ? wire_frame(*sub.s, f, channel, offset, v)
                                                               : f;
            if (g && deliver(sub.h, *sub.s, g, kept, over)) {
                // A Socket.IO client cannot ack (docs/socketio.md "Not supported"): it gets
                // the message as never-dropped, without a window that would only fill.
                if (sub.s->_sink == nullptr) {
                    track(sub.h, *sub.s, *ch, offset, g);
                }
                queued = true;
            }
        }
    }
    if (queued && accepted_us != 0) {
        // Once per message per shard, after its last local copy is queued (decisions.md
        // "Publish-to-send latency"): one clock read, not one per subscriber.
        const uint64_t now_us = core::monotonic_us();
        _stats.publish_to_send.record(now_us > accepted_us ? now_us - accepted_us : 0);
    }
}

void fanout::deliver_recovered(conn_handle h, session& s, const core::frame_ref& f,
                               const local_channel* channel, uint64_t offset,
                               bool ack) noexcept {
    // As priority 2: never dropped; a client that cannot take them is a slow consumer.
    if (s._closing) {
        return;
    }
    core::frame_ref g = f;
    if (s._sink != nullptr) {
        // Tagged like a live message (one log entry for this one receiver), so a client that
        // drops again right after a recovery is not sent the replay a second time.
        const std::string_view name =
            channel != nullptr ? std::string_view(channel->name) : std::string_view();
        const std::string tag = _socketio.recovery && channel != nullptr && offset != 0
                                    ? log_socketio(name, offset)
                                    : std::string();
        g = socketio_frame(f, name, _socketio, tag);
    }
    if (g && deliver(h, s, g, priority::high, _io.output_over_budget()) && ack &&
        channel != nullptr && s._sink == nullptr) {
        track(h, s, *channel, offset, g);
    }
}

// --- acknowledged delivery ------------------------------------------------------------------

void fanout::track(conn_handle h, session& s, const local_channel& channel, uint64_t offset,
                   const core::frame_ref& f) noexcept {
    if (!s._acks) {
        s._acks = std::make_unique<ack_window>();
    }
    ack_window& w = *s._acks;
    const uint64_t due = _io.now_ms() + _ack_timeout_ms;
    ++_stats.ack_pending;
    if (w.track(channel.generation, offset, f, due)) {
        _io.set_timer(h, core::conn_timer::acks, due);
    }
    if (w.size() > max_unacked_messages || w.bytes() > _slow_consumer_bytes) {
        // It holds as much unacknowledged as a slow consumer holds unsent: the same end.
        ++_stats.ack_closes;
        _stats.closes.close_sent(ws::close_code::policy_violation);
        s._closing = true;
        _io.discard_queued(h);
        _io.send(h, ws::make_close_frame(ws::close_code::policy_violation,
                                         "too many unacknowledged messages"));
        _io.close(h, core::close_mode::after_flush);
    }
}

ack_window::acked fanout::acknowledge(session& s, const local_channel& channel,
                                      uint64_t offset) noexcept {
    if (!s._acks) {
        return {};
    }
    const ack_window::acked out = s._acks->acknowledge(channel.generation, offset);
    _stats.ack_pending -= out.count;
    _stats.acked += out.count;
    return out;
}

void fanout::forget(session& s, const local_channel& channel) noexcept {
    if (s._acks) {
        _stats.ack_pending -= s._acks->forget(channel.generation);
    }
}

void fanout::resend_due(conn_handle h, session& s) noexcept {
    if (!s._acks || s._closing) {
        return;
    }
    ack_window& w = *s._acks;
    if (_io.queued_bytes(h) > 0) {
        // Output still waits to be written: what is due may not have left yet, and a copy
        // behind it would only grow the queue. Look again a timeout later; a connection
        // that never drains meets the window's bound instead (perf/attack/ack-presence).
        _io.set_timer(h, core::conn_timer::acks, _io.now_ms() + _ack_timeout_ms);
        return;
    }
    const bool over = _io.output_over_budget();
    const ack_window::resent r = w.resend_due(_io.now_ms(), [&](const core::frame_ref& f) {
        // Sent as it was first (never dropped); a close here only marks the session.
        if (!s._closing) {
            deliver(h, s, f, priority::high, over);
        }
    });
    _stats.ack_resent += r.count;
    if (r.next_due != 0 && !s._closing) {
        _io.set_timer(h, core::conn_timer::acks, r.next_due);
    }
}

void fanout::release(session& s) noexcept {
    if (s._acks) {
        _stats.ack_pending -= s._acks->size();
        s._acks.reset();
    }
}

uint64_t fanout::broadcast(const std::vector<std::pair<conn_handle, session*>>& sessions,
                           const core::frame_ref& f, priority prio) noexcept {
    uint64_t n = 0;
    const bool over = _io.output_over_budget();
    variants v;
    for (std::size_t i = 0; i < sessions.size(); ++i) {
        auto [h, s] = sessions[i];
        if (s->_closing) {
            continue;
        }
        // Uncompressed, as before; a Socket.IO session gets the one re-framed copy.
        const core::frame_ref& g = s->_sink != nullptr ? wire_frame(*s, f, {}, 0, v) : f;
        if (g && deliver(h, *s, g, prio, over)) {
            ++n;
        }
    }
    return n;
}

namespace {

/// Header bytes of an unmasked server frame, from its length form (RFC 6455 §5.2).
std::size_t server_header_bytes(const std::byte* wire) noexcept {
    const auto len7 = std::to_integer<uint8_t>(wire[1]) & 0x7f;
    return len7 == 127 ? 10 : len7 == 126 ? 4 : 2;
}

} // namespace

const core::frame_ref& fanout::frame_for(const session& s, const core::frame_ref& plain,
                                         compressed_variant& z) noexcept {
    if (s._deflate_window_bits == 0) {
        return plain;
    }
    if (!z.tried) {
        z.tried = true;
        compress(plain, z);
    }
    return z.frame && ws::deflate_fits(z.payload_bytes, s._deflate_window_bits) ? z.frame
                                                                                 : plain;
}

const core::frame_ref& fanout::wire_frame(const session& s, const core::frame_ref& plain,
                                          std::string_view channel, uint64_t offset,
                                          variants& v) noexcept {
    if (s._sink == nullptr) {
        return frame_for(s, plain, v.plain_z);
    }
    if (!v.sio_tried) {
        v.sio_tried = true;
        try {
            // A live channel message gets the next delivery tag when recovery is on.
            const std::string tag = _socketio.recovery && offset != 0 && !channel.empty()
                                        ? log_socketio(channel, offset)
                                        : std::string();
            v.sio = socketio_frame(plain, channel, _socketio, tag);
        } catch (const std::bad_alloc&) {
            v.sio = {}; // not sent: the alternative is no server at all
        }
    }
    return v.sio ? frame_for(s, v.sio, v.sio_z) : v.sio;
}

std::string fanout::log_socketio(std::string_view channel, uint64_t offset) {
    if (_sio_log.empty()) {
        _sio_log.resize(socketio_log_entries);
        char prefix[32];
        std::snprintf(prefix, sizeof(prefix), "%x.%x-", _start_s, unsigned(_self));
        _sio_prefix = prefix;
    }
    const uint64_t seq = ++_sio_seq;
    _sio_log[seq % _sio_log.size()] =
        logged_delivery{seq, std::hash<std::string_view>{}(channel), offset};
    return _sio_prefix + std::to_string(seq);
}

std::optional<uint64_t> fanout::socketio_position(std::string_view channel, std::string_view last,
                                                  uint64_t joined_offset,
                                                  uint64_t joined_seq) const noexcept {
    if (last.empty()) {
        return joined_offset; // nothing received since it connected
    }
    if (_sio_log.empty() || !last.starts_with(_sio_prefix)) {
        return std::nullopt; // another shard's or process's tag
    }
    uint64_t q = 0;
    const std::string_view digits = last.substr(_sio_prefix.size());
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), q);
    if (ec != std::errc() || end != digits.data() + digits.size() || q > _sio_seq) {
        return std::nullopt;
    }
    if (q <= joined_seq) {
        return joined_offset; // its last message came before the join
    }
    // From q back to the join: the channel's last message at or before q. The ring holds
    // the last socketio_log_entries numbers; past them the answer is unknown.
    const uint64_t hash = std::hash<std::string_view>{}(channel);
    const uint64_t oldest = _sio_seq >= _sio_log.size() ? _sio_seq - _sio_log.size() + 1 : 1;
    for (uint64_t seq = q; seq > joined_seq; --seq) {
        if (seq < oldest) {
            return std::nullopt;
        }
        const logged_delivery& e = _sio_log[seq % _sio_log.size()];
        if (e.seq == seq && e.channel_hash == hash) {
            return std::max(e.offset, joined_offset);
        }
    }
    return joined_offset;
}

void fanout::compress(const core::frame_ref& plain, compressed_variant& z) noexcept {
    // The plain frame is one this shard's fan-out framed (frame_message): unmasked, final,
    // RSV clear. Its header's length form says where the payload starts.
    const std::byte* wire = plain->data();
    const std::size_t header = server_header_bytes(wire);
    z.payload_bytes = plain->size() - header;
    if (z.payload_bytes < _deflate_threshold_bytes) {
        return;
    }
    core::frame_piece pieces[3];
    const unsigned n = core::frame_pieces(*plain.get(), header, pieces);
    std::span<const std::byte> spans[3];
    for (unsigned i = 0; i < n; ++i) {
        spans[i] = std::span(pieces[i].data, pieces[i].size);
    }
    const auto op = static_cast<ws::opcode>(std::to_integer<uint8_t>(wire[0]) & 0x0f);
    try {
        if (!_deflater) {
            _deflater = std::make_unique<ws::deflater>();
        }
        z.frame = _deflater->compress_frame(op, std::span(spans, n));
    } catch (const std::bad_alloc&) {
        z.frame = {}; // sent plain: compression is an optimisation
    }
    if (z.frame) {
        ++_stats.deflate_compressions;
        _stats.deflate_input_bytes += z.payload_bytes;
        _stats.deflate_output_bytes += z.frame->size() - server_header_bytes(z.frame->data());
    }
}

bool fanout::deliver(conn_handle h, session& s, const core::frame_ref& f, priority prio,
                     bool shard_over_budget) noexcept {
    switch (admit(_io.queued_bytes(h), _slow_consumer_bytes, prio, shard_over_budget)) {
    case delivery_verdict::close:
        close_slow_consumer(h, s);
        return false;
    case delivery_verdict::drop:
        ++_stats.dropped[static_cast<unsigned>(prio)];
        return false;
    case delivery_verdict::send:
        break;
    }
    ++_stats.messages_out;
    _stats.bytes_out += f->size();
    if ((std::to_integer<uint8_t>(f->data()[0]) & 0x40) != 0) {
        ++_stats.compressed_messages_out;
        _stats.compressed_bytes_out += f->size();
    }
    _io.send(h, f);
    return true;
}

void fanout::close_slow_consumer(conn_handle h, session& s) noexcept {
    // Whatever has not started on the wire is dropped so the close frame is next; the
    // close timeout bounds how long we wait for a peer that never reads it.
    s._closing = true;
    ++_stats.slow_consumer_closes;
    _stats.closes.close_sent(ws::close_code::policy_violation);
    _io.discard_queued(h);
    _io.send(h, ws::make_close_frame(ws::close_code::policy_violation, "slow consumer"));
    _io.close(h, core::close_mode::after_flush);
}

} // namespace ringcast::pubsub
