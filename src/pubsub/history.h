// History: the messages a channel's home shard keeps after delivering them, so a backend
// (GET /api/history/<channel>) or a reconnecting client can ask for what it missed. It
// retains the frame fan-out already built, by reference: a retained message costs its
// frame (shared with delivery while that lasts) plus one ring entry and one entry in the
// shard's oldest-first list, 32 B in all.
//
//   engine::order ─► fanout::fan_out ─► frame ─► channel_history::push (home shard only)
//                                                  │ over the namespace's count: drop oldest
//                                                  │ older than its ttl:         drop oldest
//                                                  └─► history_store: shard bytes over the
//                                                      budget: drop the shard's oldest
//
// A channel's history belongs to its home_channel (ordering.h) and ends with it (an idle
// channel evicted from ordering takes its messages along and starts again under a new
// epoch). Which channels keep messages is the namespace's policy
// (--namespace NS:history=N,history-ttl=S).
//
// One store per shard, used by that shard's thread only. Knows nothing of sessions or the
// mesh, so a unit test drives it alone.
#pragma once

#include <ringcast/core.h>
#include <ringcast/pubsub.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ringcast::pubsub {

/// A shard's history counters (the engine's counters gather them).
struct history_stats {
    uint64_t messages = 0;        ///< retained now (gauge)
    uint64_t bytes = 0;           ///< their bytes: frames + bookkeeping (gauge)
    uint64_t channels = 0;        ///< channels keeping messages (gauge)
    uint64_t evicted_count = 0;   ///< dropped for the namespace's count
    uint64_t evicted_age = 0;     ///< dropped for the namespace's ttl
    uint64_t evicted_budget = 0;  ///< dropped, oldest of the shard first, for the budget
};

class history_store;

/// One channel's retained messages: consecutive offsets, oldest first.
///
/// Contract: push() is called with the channel's offsets in order, each one more than the
/// last (ordering assigns them); a gap (which ordering never makes) restarts the ring at
/// the new offset. Every message it holds is younger than the ttl when read through
/// after() and not older than count messages.
class channel_history {
public:
    channel_history(history_store& store, channel_policy policy);
    ~channel_history();
    channel_history(const channel_history&) = delete;
    channel_history& operator=(const channel_history&) = delete;

    /// Keeps `f`, the message at `offset`, received at `now_s` (monotonic seconds); drops
    /// the oldest past the count or the ttl, then lets the store enforce its budget.
    /// `ack`: its receiver must acknowledge it (a priority-1 message to a user: channel).
    void push(uint64_t offset, core::frame_ref f, uint64_t now_s, bool ack = false);
    /// Drops the messages older than the ttl at `now_s` (whole seconds: one received at
    /// second t is kept through second t + ttl).
    void expire(uint64_t now_s) noexcept;

    /// Where a recovery by time starts (recover_point::by_time): `offset` is the first
    /// retained message whose envelope is stamped at or after `since_ms` (one past the last
    /// when none is); `complete` when a retained message stamped before it exists, so none
    /// at or after it can have been dropped. Stamps never decrease within a channel
    /// (home_channel::stamp_ms holds them up when the host's clock is stepped back); a
    /// binary search, O(log n) envelopes read.
    struct stamped {
        uint64_t offset;
        bool complete;
    };
    stamped stamped_from(uint64_t since_ms) const noexcept;
    /// Retained messages after `since`, oldest first, at most `limit`, none older than the
    /// ttl at `now_s`.
    std::vector<core::frame_ref> after(uint64_t since, std::size_t limit, uint64_t now_s);
    /// One retained message with its place (unconfirmed()).
    struct item {
        uint64_t offset;
        core::frame_ref frame;
        bool ack;
    };
    /// What a user has not confirmed, oldest first, at most `limit`, none older than the
    /// ttl: every message after `delivered_through` (it reached no connection), and the
    /// ones pushed with `ack` after `acked_through` (delivered, never acknowledged).
    std::vector<item> unconfirmed(uint64_t acked_through, uint64_t delivered_through,
                                  std::size_t limit, uint64_t now_s);
    /// Drops every message and expects `next_offset` next: the ring covers nothing before
    /// it (a broker's point, after which this node receives the channel; broker.cc).
    void restart(uint64_t next_offset) noexcept;
    /// The offset of the next message the ring expects.
    uint64_t next_offset() const noexcept { return _first + _entries.size(); }
    /// The offset of the oldest retained message; the next offset to come when none is.
    uint64_t first_offset() const noexcept { return _first; }
    std::size_t size() const noexcept { return _entries.size(); }
    const channel_policy& policy() const noexcept { return _policy; }

private:
    friend class history_store;
    enum class drop_reason : uint8_t { count, age, budget };
    struct entry {
        core::frame_ref frame;
        uint32_t at_s; // monotonic seconds, truncated: compared as a difference
        bool ack;      // push()'s; in the padding: an entry stays 16 B
    };
    void drop_oldest(drop_reason why) noexcept;

    history_store& _store;
    channel_policy _policy;
    uint64_t _serial;
    uint64_t _first = 1; // offset of _entries.front(); the next one when empty (a new
                         // channel starts at 1)
    std::deque<entry> _entries;
};

/// The retained messages of one shard and their budget (see the file comment).
///
/// Contract: stats().bytes ≤ budget after every push (a single message larger than the
/// budget is not kept); the oldest-first list holds at most 2 × messages + 1024 entries
/// (stale ones, of messages the count or ttl dropped, are compacted away).
class history_store {
public:
    /// `budget_bytes`: what the shard's retained messages may hold (--history-budget-bytes).
    explicit history_store(std::size_t budget_bytes) noexcept : _budget(budget_bytes) {}
    ~history_store();
    history_store(const history_store&) = delete;
    history_store& operator=(const history_store&) = delete;

    /// A channel's history under `policy` (policy.count > 0); it registers itself here and
    /// must be destroyed before the store.
    std::unique_ptr<channel_history> make(channel_policy policy);

    const history_stats& stats() const noexcept { return _stats; }
    /// What one retained message costs: its frame's allocation and wire bytes (the body it
    /// splices counted in full) and the two entries that keep it.
    static std::size_t cost(const core::frame_ref& f) noexcept;
    /// Entries in the oldest-first list, stale ones included (the contract's bound).
    std::size_t order_entries() const noexcept { return _oldest.size(); }

private:
    friend class channel_history;
    struct order_entry {
        uint64_t serial; // the channel_history; gone from _live when it ended
        uint64_t offset;
    };
    void added(channel_history& h, uint64_t offset, std::size_t bytes);
    void enforce_budget() noexcept;
    void compact();
    bool live(const order_entry& e) const noexcept;

    std::size_t _budget;
    history_stats _stats;
    uint64_t _next_serial = 1;
    std::unordered_map<uint64_t, channel_history*> _live;
    std::deque<order_entry> _oldest; // every retained message once, oldest first
};

} // namespace ringcast::pubsub
