// Ordering: the home shard's side of the pubsub engine. For each channel homed on this
// shard (home_shard()) it owns the order of its messages — the offset of the last one and
// the epoch those offsets belong to — and which shards want them; and it keeps channels
// that nobody subscribes to any more from growing without bound. Per-channel history,
// recovery and acks attach here.
//
//   publish  ─► engine ─► ordering::order(channel) ─► offset + 1 ─► fanout (interested shards)
//   interest ─► engine ─► ordering::interest(from, channel, gained | lost)
//                              └─► gained: the engine confirms (epoch, offset) to `from`
//
// A home channel is created by the first interest or publish for its name. While no shard
// is interested it sits on the idle list, least recently used first, and is evicted past
// max_idle_channels; a later entry for the name starts again at offset 0 under a new epoch,
// which tells a recovering client that the offsets it knows are gone.
//
// One per shard, used by that shard's thread only. It knows nothing of sessions,
// connections or the mesh (the engine carries its answers), so a unit test drives it alone.
#pragma once

#include "engine_types.h"
#include "history.h"
#include "presence.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::pubsub {

/// A channel on its home shard: the order (offset, epoch) and which shards want it. Lives
/// in ordering's map; the node-based map keeps its address and `name` stable until the
/// channel is evicted, which only happens to idle channels other than the most recent one.
struct home_channel {
    uint64_t offset = 0;          ///< the last message's offset in this epoch (0: none yet)
    std::string epoch;            ///< unique per shard start, shard and channel instance
    std::vector<bool> interested; ///< per shard: it has local subscribers (or pending ones)
    uint32_t interested_count = 0;
    const std::string* name = nullptr; ///< the map key
    home_channel* idle_prev = nullptr; ///< idle list links, valid while `idle`
    home_channel* idle_next = nullptr;
    bool idle = false;
    /// Its retained messages, when its namespace keeps any (channel_rules); ends with it.
    std::unique_ptr<channel_history> history;
    /// The last offset ordered while some shard was interested: later ones reached nobody
    /// (for a user: channel, the user was offline).
    uint64_t delivered_through = 0;
    /// user: channels: every message up to here was acknowledged by one of the user's
    /// connections (docs/protocol.md "Acks"); later ones that need an ack are replayed to
    /// the user's next first connection.
    uint64_t acked_through = 0;
    /// Its namespace takes acks (channel_policy::ack): every message needs one.
    bool ack = false;
    /// The last message's envelope timestamp (ms, wall clock). A stamp never goes below
    /// it, even when the host's clock is stepped back, so the history's stamps never
    /// decrease (channel_history::stamped_from searches them).
    uint64_t stamp_ms = 0;
    /// presence: its members, while it has some and its namespace is marked presence. A
    /// member's shard is interested, so a channel with members is never idle or evicted.
    std::unique_ptr<channel_presence> presence;
    // With a broker (--engine redis, docs/scaling.md): the node-wide order.
    /// The broker was asked to watch it (some shard here is interested).
    bool watching = false;
    /// The broker named the subscription point (broker_events::on_point) since the watch:
    /// epoch and offset are the node-wide ones, and gains are confirmed at once.
    bool point_known = false;
    /// Gains (shard, generation) waiting for the point, confirmed when it comes.
    std::vector<std::pair<unsigned, uint64_t>> awaiting_point;
};

/// The home channels of one shard (see the file comment).
///
///   absent ──order / interest──► idle ◄──last shard lost interest── interested
///                                 │   ──first shard gained interest──►
///                                 └─ past max_idle_channels, oldest first ─► evicted (absent)
///
/// Contract: every operation leaves at most max(max_idle_channels, 1) idle channels, and
/// never evicts the channel it was called for: the reference it returns stays valid until
/// the next call into ordering.
class ordering {
public:
    /// `self` and `shards` place this shard (epochs, the interested vector); `instance`
    /// (unique per process start: the engine's start in wall-clock milliseconds and random
    /// bits) makes epochs differ across restarts, however quick. A channel
    /// whose namespace has a policy in `history` keeps its messages, all of them within
    /// `history_budget_bytes`.
    ordering(shard_id self, unsigned shards, uint64_t instance, uint32_t max_idle_channels,
             channel_rules history = {}, std::size_t history_budget_bytes = 64u << 20);
    ~ordering();
    ordering(const ordering&) = delete;
    ordering& operator=(const ordering&) = delete;

    /// Gives the next message of `channel` its offset (the channel's offset + 1, which the
    /// returned channel now holds), creating the channel when it is new, and marks it the
    /// most recently used if idle. One lookup in the channel map.
    home_channel& order(std::string_view channel);
    /// The channel, created when it is new, marked the most recently used if idle; its
    /// offset unchanged (a broker's message brings its own).
    home_channel& touch(std::string_view channel);
    /// Shard `from_shard` gained or lost its first / last local subscriber of `channel`
    /// (creating the channel when it is new). A channel nobody wants goes to the most
    /// recent end of the idle list; one somebody wants leaves it. The returned channel's
    /// (epoch, offset) is the subscription point for a gain.
    home_channel& interest(unsigned from_shard, std::string_view channel,
                                 interest_change change);
    /// New namespace policies (a reload): for channels created from now on.
    void set_rules(channel_rules rules) { _channel_rules = std::move(rules); }
    /// The channel if it is homed here and still known; nullptr otherwise.
    home_channel* find(std::string_view channel) noexcept;
    const home_channel* find(std::string_view channel) const noexcept;

    /// Calls `f(home_channel&)` for every channel homed here (no order; `f` must not add
    /// or remove channels).
    template <typename F> void for_each(F&& f) {
        for (auto& [name, ch] : _home) {
            f(*ch);
        }
    }
    /// Channels ordered here (the counters' home_channels gauge).
    std::size_t size() const noexcept { return _home.size(); }
    /// Channels on the idle list.
    uint32_t idle_count() const noexcept { return _idle_count; }
    /// Idle channels evicted so far (the counters' idle_channels_evicted).
    uint64_t evicted() const noexcept { return _evicted; }
    /// The idle channels' names, least recently used (next to be evicted) first.
    std::vector<std::string_view> idle_names() const;
    /// The retained messages' counters.
    const history_stats& history() const noexcept { return _history.stats(); }

private:
    home_channel& home(std::string_view channel);
    void idle_unlink(home_channel& ch) noexcept;
    void idle_push(home_channel& ch) noexcept;
    void trim_idle() noexcept;

    channel_rules _channel_rules;
    history_store _history; // before _home: the channels' histories end first
    name_map<std::unique_ptr<home_channel>> _home;
    home_channel* _idle_head = nullptr; // least recently used channel nobody subscribes to
    home_channel* _idle_tail = nullptr;
    uint32_t _idle_count = 0;
    uint64_t _evicted = 0;
    uint64_t _epoch_seq = 0;
    shard_id _self;
    unsigned _shards;
    uint64_t _instance;
    uint32_t _max_idle_channels;
};

} // namespace ringcast::pubsub
