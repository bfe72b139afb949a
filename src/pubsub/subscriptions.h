// Subscriptions: this shard's side of subscribing. It owns the local channels (the names
// with subscribers on this shard, and their subscriber lists), each session's list of
// channels, and the subscribes waiting for their channel's home shard; and it says when this
// shard's interest in a channel changes, which the engine carries to the home shard.
//
//   subscribe ─► engine (checks, reply) ─► confirmed channel? ─yes─► add() ─► reply at once
//                                               │ no
//                                               ▼
//                                  wait(): first one? ─► sink: gained ─► (home shard)
//   confirmed (epoch, offset) ─► engine ─► confirm() ─► waiters added ─► the engine replies
//   unsubscribe / close ─► remove() / close() ─► last one gone? ─► sink: lost ─► (home shard)
//   add() / a subscriber removed ─► sink: member_changed (presence: the engine filters)
//
// The delivery path reads a channel's subscriber list through delivering(): one lookup per
// message, nothing per subscriber.
//
// One per shard, used by that shard's thread only. It never sends: replies are the
// engine's, interest changes go to the interest_sink, so a unit test drives it alone.
#pragma once

#include "engine_types.h"

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringcast::pubsub {

enum class reply_mode : uint8_t { reply, silent };

/// A subscribe waiting for the home shard's confirmation (the first local subscriber's
/// round trip). The fields after `s` are the command path's reply, kept for it untouched
/// and handed back by subscriptions::confirm().
struct pending_sub {
    conn_handle h;
    session* s;
    bool has_id;
    uint64_t id;
    reply_mode mode;
    uint32_t slot; // the session's reply slot
    // A subscribe with "recover" (docs/protocol.md "Recovery"): asked by the client, done
    // (its namespace keeps history), and the client's point.
    bool recover_asked = false;
    bool recover = false;
    uint64_t recover_since = 0;
    bool recover_by_time = false;
    uint64_t recover_since_ms = 0;
    std::string recover_epoch;
};

/// A channel as seen by one shard: its local subscribers. Exists while it has subscribers
/// or pending subscribes, and is erased with the last (which loses the shard's interest).
/// `offset` is the last offset delivered here (or the subscription point), which is what a
/// later local subscribe reply reports. `generation` numbers this instance's interest
/// round trip: a confirmation meant for an earlier instance of the same name is ignored.
struct local_channel {
    struct entry {
        conn_handle h;
        session* s;
        uint32_t sub_index; // position in the session's list of channels
        // Non-zero while its recovery is under way (engine::start_recovery): live messages
        // skip it; the home's answer carries the ones it skipped.
        uint32_t recovering = 0;
    };
    std::string name;
    std::vector<entry> subscribers;
    std::vector<pending_sub> waiting;
    std::string epoch;
    uint64_t offset = 0;
    uint64_t generation = 0;
    bool confirmed = false; // the home shard knows this shard is interested
};

/// Told when this shard's interest in a channel changes (the engine tells the home shard).
/// Called last by the operation that caused it, when subscriptions' state is consistent:
/// the sink may call back into subscriptions.
class interest_sink {
public:
    virtual ~interest_sink() = default;
    virtual void interest_changed(std::string_view channel, uint64_t generation,
                                  interest_change change) = 0;
    /// presence: `s` became (joined) or stopped being (left) a subscriber of `ch`: every
    /// add() (confirm()'s waiters too) and every removal (remove(), close()). A removal
    /// tells it before the interest loss the same operation causes, while `ch` still
    /// exists. `ch`'s subscriber list already shows the change; the sink may read
    /// subscriptions but not change them.
    virtual void member_changed(const local_channel& ch, const session& s,
                                member_change change) = 0;
};

/// The local subscription index of one shard (see the file comment).
///
///   absent ──wait() [sink: gained]──► waiting ──confirm()──► confirmed ◄─► add() / remove()
///     ▲                                   │                         │
///     └── [sink: lost] ◄── its last waiter or subscriber gone (remove, close)
///
/// Invariants: a local channel is in the map iff it has a subscriber or a waiter; each
/// subscriber entry and the session's record of it point at each other (swap-removal keeps
/// both indexes right); a session's pending count is the number of waiters it has.
class subscriptions {
public:
    explicit subscriptions(interest_sink& sink);
    ~subscriptions();
    subscriptions(const subscriptions&) = delete;
    subscriptions& operator=(const subscriptions&) = delete;

    /// The local channel named `channel`, or nullptr: one lookup.
    local_channel* find(std::string_view channel) noexcept {
        auto it = _local.find(channel);
        return it == _local.end() ? nullptr : it->second.get();
    }
    /// The delivery path: the channel whose subscribers get the message at `offset`, which
    /// becomes the channel's subscription point for later local subscribers; nullptr when
    /// nobody here subscribes any more (the message was in flight). One lookup.
    local_channel* delivering(std::string_view channel, uint64_t offset) noexcept {
        local_channel* ch = find(channel);
        if (ch != nullptr && offset > ch->offset) {
            ch->offset = offset; // offline messages delivered late are older than the point
        }
        return ch;
    }
    /// The channel `s` subscribes to under that name, or nullptr (a pending subscribe does
    /// not count). O(the session's channels).
    const local_channel* subscribed(const session& s, std::string_view channel) const noexcept;
    /// Channels `s` subscribes to or waits for: what its channel limit counts.
    static std::size_t held(const session& s) noexcept { return s._subs.size() + s._pending; }
    /// Subscribes of `s` waiting for their home shard.
    static uint32_t pending(const session& s) noexcept { return s._pending; }

    /// Adds `s` (connection `h`) to the subscribers of the confirmed channel `ch`.
    void add(local_channel& ch, conn_handle h, session& s);
    /// The subscriber entry of `s` in `ch`, or nullptr. O(the session's channels).
    static local_channel::entry* entry_of(local_channel& ch, session& s) noexcept;
    /// Queues `p` on `channel` until its home shard confirms this shard's interest. `ch` is
    /// find(channel) as the caller just saw it: when null, the channel is created and the
    /// sink is told the interest was gained.
    void wait(std::string_view channel, local_channel* ch, const pending_sub& p);
    /// The home shard confirmed the interest of `ch` from (epoch, offset): marks it
    /// confirmed, adds every waiter that is not subscribed already, and returns the waiters
    /// in their order, for the engine to answer. Runs nothing else: `ch` stays valid
    /// until the caller runs commands again.
    std::vector<pending_sub> confirm(local_channel& ch, std::string_view epoch, uint64_t offset);
    /// Ends the subscription of `s` to `channel`; false when it has none. The last local
    /// subscriber's departure erases the channel and tells the sink.
    bool remove(session& s, std::string_view channel) noexcept;
    /// Connection `h` (session `s`) closed: ends its subscriptions and its pending
    /// subscribes. O(its own channels), whatever the shard holds.
    void close(conn_handle h, session& s) noexcept;

    /// Channels with subscribers here and their local subscriber counts.
    std::vector<std::pair<std::string, uint32_t>> channel_counts() const;
    /// The `most` channels of channel_counts() with the most subscribers, most first, ties
    /// by name: one pass keeping a heap of `most`, so a shard of a million channels copies
    /// `most` names, not a million.
    std::vector<std::pair<std::string, uint32_t>> top_counts(std::size_t most) const;
    /// Local channels, with subscribers or pending ones (the local_channels gauge).
    std::size_t channel_count() const noexcept { return _local.size(); }
    /// Subscriptions of all sessions (the subscriptions gauge).
    uint64_t subscription_count() const noexcept { return _subscriptions; }

private:
    void remove_at(session& s, std::size_t at) noexcept;
    void cancel_pending(conn_handle h, session& s) noexcept;
    void drop(local_channel& ch) noexcept;

    interest_sink& _sink;
    name_map<std::unique_ptr<local_channel>> _local;
    uint64_t _generation = 0; // numbers each local_channel's interest round trip
    uint64_t _subscriptions = 0;
};

} // namespace ringcast::pubsub
