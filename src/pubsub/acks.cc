// Acknowledged delivery (docs/protocol.md "Acks"): the per-connection window (acks.h), the
// ack command, the resend timer, and the user: channel's acknowledged offset on its home.
//
//   home: order ─► ack needed? (namespace marked ack, or priority 1 to user:) ─► deliver
//   S: fanout ─► sent ─► ack_window ─► timer: sent again, once ─► still unacked: bounded
//   {"op":"ack"} ─► window ─► user: channel? ─► (acked) ─► home: acked_through
//   home: the user's next first connection ─► what was never acked is sent again
#include "acks.h"

#include "engine_types.h"
#include "fanout.h"
#include "ordering.h"
#include "subscriptions.h"

#include <algorithm>

namespace ringcast::pubsub {

// --- ack_window -----------------------------------------------------------------------------

void ack_window::track(uint64_t channel, uint64_t offset, core::frame_ref f, uint64_t due_ms) {
    RINGCAST_ASSERT(_entries.empty() || _entries.back().due_ms <= due_ms);
    _bytes += f->size();
    _entries.push_back(entry{channel, offset, std::move(f), due_ms});
}

template <typename Match>
std::size_t ack_window::erase_if(Match&& match) noexcept {
    // One pass, keeping the order; entries before _next that go move _next back with them.
    std::size_t kept = 0;
    std::size_t next = _next;
    for (std::size_t i = 0; i < _entries.size(); ++i) {
        if (match(_entries[i])) {
            _bytes -= _entries[i].frame->size();
            if (i < _next) {
                --next;
            }
            continue;
        }
        if (kept != i) {
            _entries[kept] = std::move(_entries[i]);
        }
        ++kept;
    }
    const std::size_t removed = _entries.size() - kept;
    _entries.resize(kept);
    _next = next;
    return removed;
}

ack_window::acked ack_window::acknowledge(uint64_t channel, uint64_t offset) noexcept {
    acked out;
    out.count = erase_if([&](const entry& e) {
        if (e.channel != channel || e.offset > offset) {
            return false;
        }
        out.through = std::max(out.through, e.offset);
        return true;
    });
    return out;
}

std::size_t ack_window::forget(uint64_t channel) noexcept {
    return erase_if([&](const entry& e) { return e.channel == channel; });
}

// --- the ack command ------------------------------------------------------------------------

void engine::acknowledge(conn_handle h, session& s, const command& cmd) {
    const local_channel* ch = _subscriptions->subscribed(s, cmd.channel);
    if (ch == nullptr) {
        return send_reply(h, s, reply_error(cmd.has_id, cmd.id, 404, "not subscribed"));
    }
    const bool user_channel = cmd.channel.starts_with("user:");
    if (!user_channel && !_config.channels.find(cmd.channel).ack) {
        return send_reply(h, s,
                          reply_error(cmd.has_id, cmd.id, 400,
                                      "acks are off for this channel's namespace"));
    }
    const ack_window::acked acked = _fanout->acknowledge(s, *ch, cmd.offset);
    if (user_channel && acked.count > 0) {
        // The user's home remembers it: what was acknowledged is not replayed on the next
        // connection. Only when the ack confirmed something, so acks alone cost the home
        // nothing; and only through the last message it confirmed, so an ack of offsets
        // still on their way does not confirm them.
        const unsigned home_id = home_shard(cmd.channel, _io.shards());
        if (home_id == unsigned(_io.id())) {
            note_acked(cmd.channel, acked.through);
        } else {
            _io.post<kinds::acked>(shard_id(static_cast<uint16_t>(home_id)),
                                   std::make_unique<ack_msg>(
                                       ack_msg{std::string(cmd.channel), acked.through}));
        }
    }
    if (cmd.has_id) {
        send_reply(h, s, reply_ok(true, cmd.id, ",\"acked\":" + std::to_string(acked.count)));
    }
}

void engine::note_acked(std::string_view channel, uint64_t offset) noexcept {
    if (home_channel* ch = _ordering->find(channel); ch != nullptr) {
        // Never past what was ordered: an ack of a future offset confirms nothing to come.
        ch->acked_through = std::max(ch->acked_through, std::min(offset, ch->offset));
    }
}

void engine::on_mesh(kinds::acked, shard_id, std::unique_ptr<ack_msg> m) noexcept {
    note_acked(m->channel, m->offset);
}

void engine::on_ack_timer(conn_handle h, session& s) noexcept {
    _fanout->resend_due(h, s);
}

} // namespace ringcast::pubsub
