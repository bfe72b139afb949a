// Acknowledged delivery: what one connection was sent on channels that take acks and has
// not confirmed yet (docs/protocol.md "Acks"). Fanout keeps one window per connection that
// has such messages outstanding:
//
//   deliver (ack) ─► track ─► [due at sent + ack timeout] ─► resend_due: sent again, once
//   {"op":"ack"} ─► acknowledge: the channel's messages up to the offset leave
//   unsubscribe / revoked ─► forget: the channel's leave
//
// One lane per channel, entries in send order — which is offset order within a channel,
// and due order, since every entry is due one fixed timeout after it was sent. So a
// cumulative ack pops from its lane's front (O(messages acknowledged), whatever else
// waits: scanning the whole window per ack took 26 % of the server with every message
// acked at 5,000 subscribers, perf/RESULTS.md), and a resend pass walks each lane from its
// first entry not yet resent to the first still in the future. A window that grows past
// its bounds is the connection's fault, like a full send queue: fanout closes it as a slow
// consumer (max_unacked_messages, config::slow_consumer_bytes).
//
// Used by its shard's thread only.
#pragma once

#include "engine_types.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringcast::pubsub {

/// Messages one connection may leave unacknowledged; one more closes it as a slow consumer
/// (1008). A client that acks every second on a channel of 1,000 messages a second stays
/// far below it; one that never acks meets it, or the byte bound (the slow-consumer
/// threshold, counted over the frames it holds), whichever comes first. ~40 B an entry:
/// 160 KB at most per connection, besides the frames it shares with history.
inline constexpr std::size_t max_unacked_messages = 4096;

/// One connection's unacknowledged messages (see the file comment).
///
/// Contract: track() is called with non-decreasing due times (the shard's clock plus one
/// timeout); every entry is resent at most once; size() and bytes() count what is held.
/// The window also says when its timer needs arming: track() when none is armed, and
/// resend_due() (the timer fired) for the next due, if any.
class ack_window {
public:
    /// Keeps `f`, the message at `offset` of the local channel instance `channel` (its
    /// local_channel::generation), until acknowledged; due for its resend at `due_ms`.
    /// True when no timer is armed: the caller arms one for `due_ms`.
    bool track(uint64_t channel, uint64_t offset, core::frame_ref f, uint64_t due_ms);
    /// What one acknowledge() took out of the window.
    struct acked {
        std::size_t count = 0; ///< messages
        uint64_t through = 0;  ///< the highest offset among them (0: none)
    };
    /// Acknowledges the messages of `channel` at or below `offset`: those at its lane's
    /// front (a message sent out of offset order waits for an ack that covers the ones
    /// before it too). O(messages acknowledged + channels).
    acked acknowledge(uint64_t channel, uint64_t offset) noexcept;
    /// Drops every message of `channel` (the subscription ended); returns how many.
    std::size_t forget(uint64_t channel) noexcept;
    /// What one resend_due() did.
    struct resent {
        std::size_t count = 0;
        uint64_t next_due = 0; ///< when to arm the timer again; 0: nothing left to resend
    };
    /// The timer fired: calls send(frame) for each message due at `now_ms` that was not
    /// resent yet, channel by channel in send order, and marks it resent. `send` must not
    /// touch the window.
    template <typename Send>
    resent resend_due(uint64_t now_ms, Send&& send) {
        resent out;
        for (lane& l : _lanes) {
            while (l.next < l.entries.size() && l.entries[l.next].due_ms <= now_ms) {
                send(l.entries[l.next].frame);
                ++l.next;
                ++out.count;
            }
            if (l.next < l.entries.size() &&
                (out.next_due == 0 || l.entries[l.next].due_ms < out.next_due)) {
                out.next_due = l.entries[l.next].due_ms;
            }
        }
        _timer_armed = out.next_due != 0;
        return out;
    }
    std::size_t size() const noexcept { return _size; }
    /// Bytes of the frames held (shared with history and other connections, counted here
    /// as this connection's).
    std::size_t bytes() const noexcept { return _bytes; }
    bool empty() const noexcept { return _size == 0; }

private:
    struct entry {
        uint64_t offset;
        core::frame_ref frame;
        uint64_t due_ms;
    };
    /// One channel's entries: [head, next) resent already, [next, end) not yet. A vector
    /// with a moving head: popping is O(1), and the consumed front is reclaimed once it is
    /// half the vector.
    struct lane {
        uint64_t channel;
        std::vector<entry> entries;
        std::size_t head = 0;
        std::size_t next = 0;
    };
    lane* find(uint64_t channel) noexcept;
    static void compact(lane& l) noexcept;

    std::vector<lane> _lanes; // one per channel with messages waiting (≤ the channel limit)
    std::size_t _size = 0;
    std::size_t _bytes = 0;
    bool _timer_armed = false;
};

} // namespace ringcast::pubsub
