// Acknowledged delivery: what one connection was sent on channels that take acks and has
// not confirmed yet (docs/protocol.md "Acks"). Fanout keeps one window per connection that
// has such messages outstanding:
//
//   deliver (ack) ─► track ─► [due at sent + ack timeout] ─► resend_due: sent again, once
//   {"op":"ack"} ─► acknowledge: every message of the channel up to the offset leaves
//   unsubscribe / revoked ─► forget: the channel's leave
//
// Entries sit in delivery order, so their due times never decrease: the first ones not yet
// resent are the next due, and a resend pass stops at the first entry still in the future.
// A window that grows past its bounds is the connection's fault, like a full send queue:
// fanout closes it as a slow consumer (max_unacked_messages, config::slow_consumer_bytes).
//
// Used by its shard's thread only.
#pragma once

#include "engine_types.h"

#include <cstddef>
#include <cstdint>
#include <deque>

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
class ack_window {
public:
    /// Keeps `f`, the message at `offset` of the local channel instance `channel` (its
    /// local_channel::generation), until acknowledged; due for its resend at `due_ms`.
    void track(uint64_t channel, uint64_t offset, core::frame_ref f, uint64_t due_ms);
    /// What one acknowledge() took out of the window.
    struct acked {
        std::size_t count = 0; ///< messages
        uint64_t through = 0;  ///< the highest offset among them (0: none)
    };
    /// Acknowledges every message of `channel` at or below `offset`.
    acked acknowledge(uint64_t channel, uint64_t offset) noexcept;
    /// Drops every message of `channel` (the subscription ended); returns how many.
    std::size_t forget(uint64_t channel) noexcept;
    /// Calls send(frame) for each message due at `now_ms` that was not resent yet, oldest
    /// first, and marks it resent; returns how many. `send` must not touch the window.
    template <typename Send>
    std::size_t resend_due(uint64_t now_ms, Send&& send) {
        std::size_t n = 0;
        while (_next < _entries.size() && _entries[_next].due_ms <= now_ms) {
            send(_entries[_next].frame);
            ++_next;
            ++n;
        }
        return n;
    }
    /// When the next resend is due; 0 when every message held was resent already.
    uint64_t next_due() const noexcept {
        return _next < _entries.size() ? _entries[_next].due_ms : 0;
    }
    std::size_t size() const noexcept { return _entries.size(); }
    /// Bytes of the frames held (shared with history and other connections, counted here
    /// as this connection's).
    std::size_t bytes() const noexcept { return _bytes; }
    bool empty() const noexcept { return _entries.empty(); }

private:
    struct entry {
        uint64_t channel;
        uint64_t offset;
        core::frame_ref frame;
        uint64_t due_ms;
    };
    template <typename Match>
    std::size_t erase_if(Match&& match) noexcept;

    std::deque<entry> _entries; // delivery order
    std::size_t _next = 0;      // entries before it were resent
    std::size_t _bytes = 0;
};

} // namespace ringcast::pubsub
