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

namespace {
/// Entries an empty lane may keep allocated (32 B each): what a client acking every few
/// dozen messages reuses, without keeping a burst's worth per connection.
constexpr std::size_t max_idle_lane_capacity = 256;
} // namespace

// --- ack_window -----------------------------------------------------------------------------

ack_window::lane* ack_window::find(uint64_t channel) noexcept {
    for (lane& l : _lanes) {
        if (l.channel == channel) {
            return &l;
        }
    }
    return nullptr;
}

bool ack_window::track(uint64_t channel, uint64_t offset, core::frame_ref f, uint64_t due_ms) {
    lane* l = find(channel);
    if (l == nullptr) {
        l = &_lanes.emplace_back(lane{channel, {}, 0, 0});
    }
    RINGCAST_ASSERT(l->entries.empty() || l->entries.back().due_ms <= due_ms);
    _bytes += f->size();
    ++_size;
    l->entries.push_back(entry{offset, std::move(f), due_ms});
    const bool arm = !_timer_armed;
    _timer_armed = true;
    return arm;
}

void ack_window::compact(lane& l) noexcept {
    if (l.head == l.entries.size()) {
        // Emptied: the capacity stays for the channel's next messages, unless a burst left
        // it large (4,096 entries of 32 B would stay 128 KiB per connection).
        if (l.entries.capacity() > max_idle_lane_capacity) {
            std::vector<entry>().swap(l.entries);
        } else {
            l.entries.clear();
        }
        l.head = l.next = 0;
    } else if (l.head >= 16 && l.head * 2 >= l.entries.size()) {
        l.entries.erase(l.entries.begin(), l.entries.begin() + std::ptrdiff_t(l.head));
        l.next -= l.head;
        l.head = 0;
    }
}

ack_window::acked ack_window::acknowledge(uint64_t channel, uint64_t offset) noexcept {
    acked out;
    lane* l = find(channel);
    if (l == nullptr) {
        return out;
    }
    while (l->head < l->entries.size() && l->entries[l->head].offset <= offset) {
        entry& e = l->entries[l->head];
        out.through = std::max(out.through, e.offset);
        _bytes -= e.frame->size();
        e.frame = {}; // the reference goes now, not at compaction
        ++l->head;
        ++out.count;
    }
    l->next = std::max(l->next, l->head);
    _size -= out.count;
    compact(*l);
    return out;
}

std::size_t ack_window::forget(uint64_t channel) noexcept {
    lane* l = find(channel);
    if (l == nullptr) {
        return 0;
    }
    const std::size_t n = l->entries.size() - l->head;
    for (std::size_t i = l->head; i < l->entries.size(); ++i) {
        _bytes -= l->entries[i].frame->size();
    }
    _size -= n;
    // Swap-remove: lanes have no order of their own.
    *l = std::move(_lanes.back());
    _lanes.pop_back();
    return n;
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
