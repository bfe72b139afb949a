// The pubsub engine of one shard, part 3: publishing. A publish goes to its channel's home
// shard, which orders it (offset), frames it once and hands the frame by reference to every
// interested shard; each shard queues a reference on each local subscriber, and the
// backpressure policy (DESIGN §2.7) decides per subscriber.
#include "engine_types.h"
#include "ordering.h"
#include "subscriptions.h"

#include <ringcast/ws.h>

#include <algorithm>
#include <cstdio>

namespace ringcast::pubsub {

/// Data at least this large is not copied into each channel's frame but spliced in by
/// reference (core::make_spliced_frame): a broadcast of 1 MiB to 1,000 channels holds the
/// megabyte once. Below it a copy is cheaper than the two extra iovecs per send.
constexpr std::size_t splice_data_bytes = 4096;

void engine::client_publish(conn_handle h, session& s, const command& cmd) {
    const std::string_view ns = channel_namespace(cmd.channel);
    const auto& allowed = _config.client_publish_namespaces;
    const bool permitted = s._backend || (!ns.empty() && std::find(allowed.begin(), allowed.end(),
                                                                   ns) != allowed.end());
    if (!permitted) {
        return send_reply(h, s,
                          reply_error(cmd.has_id, cmd.id, 403,
                                      "publishing to this channel is not allowed for clients"));
    }
    if (cmd.channel.starts_with("user:") && !s._backend) {
        return send_reply(h, s,
                          reply_error(cmd.has_id, cmd.id, 403, "user channels are server-only"));
    }
    if (!accepts_work_for(cmd.channel)) {
        ++_counters.busy_refused;
        return send_reply(h, s, reply_error(cmd.has_id, cmd.id, 503, "server busy; retry"));
    }
    auto job = std::make_unique<publish_job>(publish_job{std::string(cmd.channel),
                                std::string(cmd.event),
                                core::make_frame(cmd.data),
                                s._user_id,
                                cmd.prio,
                                {},
                                0});
    job->origin.from = publish_origin::kind::client;
    job->origin.conn = h;
    job->origin.has_id = cmd.has_id;
    job->origin.id = cmd.id;
    job->origin.index = reserve_reply(s);
    ++s._publishing;
    route(std::move(job));
}

bool engine::accepts_work_for(std::string_view channel) const noexcept {
    const unsigned home_id = home_shard(channel, _io.shards());
    return home_id == unsigned(_io.id()) ||
           !_io.mesh_congested(shard_id(static_cast<uint16_t>(home_id)));
}

void engine::publish(const publish_request& req, std::string_view channel, publish_origin origin,
                     core::frame_ref data) {
    auto job = std::make_unique<publish_job>(publish_job{std::string(channel),
                                std::string(req.event),
                                data ? std::move(data) : core::make_frame(req.data),
                                std::string(req.user_id),
                                req.prio,
                                origin,
                                0});
    route(std::move(job));
}

void engine::route(std::unique_ptr<publish_job> job) {
    ++_counters.messages_in;
    const unsigned home_id = home_shard(job->channel, _io.shards());
    if (home_id == unsigned(_io.id())) {
        order(*job);
        finish_publish(job->origin, job->offset);
        return;
    }
    _io.post<kinds::publish>(shard_id(static_cast<uint16_t>(home_id)), std::move(job));
}

std::string engine::next_message_id() {
    char id[48];
    std::snprintf(id, sizeof(id), "m-%x-%x-%llx", _start_s, unsigned(_io.id()),
                  static_cast<unsigned long long>(++_message_seq));
    return id;
}

void engine::order(publish_job& job) {
    const home_channel& ch = _ordering->order(job.channel);
    job.offset = ch.offset;
    const std::string id = next_message_id();
    const auto data = std::string_view(reinterpret_cast<const char*>(job.data->data()),
                                       job.data->own_size());
    envelope e;
    e.message_id = id;
    e.event = job.event;
    e.channel = job.channel;
    e.data = data;
    e.prio = job.prio;
    e.timestamp_ms = wall_clock_ms();
    e.user_id = job.user_id;
    e.offset = job.offset;
    // Frame once: the WebSocket header and the envelope in one shareable buffer, with a
    // large payload spliced in by reference instead of copied.
    const std::size_t body = envelope_size(e);
    const std::size_t header = ws::frame_header_size(body);
    core::frame_ref f;
    if (data.size() >= splice_data_bytes) {
        const std::size_t own = header + body - data.size();
        f = core::make_spliced_frame(own, header + envelope_data_offset(e), job.data);
        ws::write_frame_header(f->mutable_data(), ws::opcode::text, body);
        write_envelope_around_data(
            e, std::span(reinterpret_cast<char*>(f->mutable_data() + header), own - header));
    } else {
        f = core::make_frame(header + body);
        ws::write_frame_header(f->mutable_data(), ws::opcode::text, body);
        write_envelope(e, std::span(reinterpret_cast<char*>(f->mutable_data() + header), body));
    }

    const unsigned self = unsigned(_io.id());
    for (unsigned shard = 0; shard < ch.interested.size(); ++shard) {
        if (!ch.interested[shard]) {
            continue;
        }
        if (shard == self) {
            deliver_local(job.channel, f, job.prio, job.offset);
        } else {
            _io.post<kinds::deliver>(
                shard_id(static_cast<uint16_t>(shard)),
                std::make_unique<delivery>(delivery{f, job.channel, job.prio, job.offset}));
        }
    }
}

void engine::finish_publish(const publish_origin& origin, uint64_t offset) {
    if (origin.from == publish_origin::kind::api) {
        if (_listener != nullptr) {
            _listener->on_published(origin, offset);
        }
        return;
    }
    session* s = find_session(origin.conn);
    if (s == nullptr) {
        return; // the publisher left meanwhile
    }
    --s->_publishing;
    fill_reply(origin.conn, *s, origin.index,
               reply_ok(origin.has_id, origin.id, ",\"offset\":" + std::to_string(offset)));
    resume(origin.conn, *s);
}

// --- delivery -----------------------------------------------------------------------------

void engine::deliver_local(std::string_view channel, const core::frame_ref& f, priority prio,
                           uint64_t offset) noexcept {
    local_channel* found = _subscriptions->delivering(channel, offset);
    if (found == nullptr) {
        return; // the last local subscriber left while this was in flight
    }
    const local_channel& ch = *found;
    // Index loop: a slow-consumer close does not change the list (the session stays until
    // its connection is released), so positions are stable during the pass. The shard's
    // budget is read once per message, not per subscriber.
    const bool over = _io.output_over_budget();
    for (std::size_t i = 0; i < ch.subscribers.size(); ++i) {
        const auto& sub = ch.subscribers[i];
        if (!sub.s->_closing) {
            deliver(sub.h, *sub.s, f, prio, over);
        }
    }
}

bool engine::deliver(conn_handle h, session& s, const core::frame_ref& f, priority prio,
                     bool shard_over) noexcept {
    // Backpressure (DESIGN §2.7): the connection's queued bytes decide. Priority 4 goes
    // first, then 3; 1 and 2 are never dropped: past the hard mark the connection closes.
    const std::size_t queued = _io.queued_bytes(h);
    const std::size_t hard = _config.slow_consumer_bytes;
    if (queued >= hard) {
        close_slow_consumer(h, s);
        return false;
    }
    const bool drop = (prio == priority::low && (queued >= hard / 2 || shard_over)) ||
                      (prio == priority::normal && (queued >= hard / 4 * 3 || shard_over));
    if (drop) {
        ++_counters.dropped[static_cast<unsigned>(prio)];
        return false;
    }
    ++_counters.messages_out;
    _counters.bytes_out += f->size();
    _io.send(h, f);
    return true;
}

uint64_t engine::broadcast_local(const core::frame_ref& f, priority prio) noexcept {
    uint64_t n = 0;
    const bool over = _io.output_over_budget();
    for (std::size_t i = 0; i < _sessions.size(); ++i) {
        auto [h, s] = _sessions[i];
        if (!s->_closing && deliver(h, *s, f, prio, over)) {
            ++n;
        }
    }
    return n;
}

void engine::close_slow_consumer(conn_handle h, session& s) noexcept {
    // Whatever has not started on the wire is dropped so the close frame is next; the
    // close timeout bounds how long we wait for a peer that never reads it.
    s._closing = true;
    ++_counters.slow_consumer_closes;
    _io.discard_queued(h);
    _io.send(h, ws::make_close_frame(ws::close_code::policy_violation, "slow consumer"));
    _io.close(h, core::close_mode::after_flush);
}

} // namespace ringcast::pubsub
