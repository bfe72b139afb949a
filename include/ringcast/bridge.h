// ringcast bridge — queue bridges: events of the backends' own job queues published to
// ringcast channels by rule (docs/bridges.md).
//
//   bull   BullMQ's events stream `<bull prefix>:<queue>:events`, read through a Redis
//          consumer group on one redis::link of shard 0; each event matched against the
//          --queue-bridge rules of its queue, published like an API publish, and
//          acknowledged (XACK) only once ringcast has accepted every publish it made
//
// What a bridge promises: an event is acknowledged to its broker only after ringcast gave
// each of its publishes an offset, so a ringcastd that dies (kill -9) before that reads the
// event again when it comes back: at least once, never lost; the message's data carries the
// broker's id of the event for a client that must drop the repeat.
//
// Nothing here blocks a shard: the broker connection is an outbound connection of the
// shard's ring (redis::link), and the publishes go through the shard's pubsub engine, whose
// answers come back on the same thread (publish_origin::kind::bridge). The work in flight is
// bounded by one read (bull_read_count events) at a time.
#pragma once

#include <ringcast/admin.h>
#include <ringcast/core.h>
#include <ringcast/pubsub.h>
#include <ringcast/redis.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::bridge {

// ---- rules ----------------------------------------------------------------------------------

/// A channel template: literal channel characters and the placeholders {queue}, {event},
/// {jobId}, e.g. "job:{jobId}" or "test-{event}-{jobId}".
struct channel_template {
    std::string text; ///< as given
    /// Expands the template; nothing when a placeholder's value is empty or the result is
    /// not a valid channel name (pubsub::valid_channel) — the event cannot be mapped.
    std::optional<std::string> expand(std::string_view queue, std::string_view event,
                                      std::string_view job_id) const;
};

/// Checks a template: braces only around a known placeholder, the literal parts channel
/// characters, and a sample expansion a valid channel outside the sys namespace. The error
/// is a sentence naming what is wrong.
result<channel_template, std::string> parse_channel_template(std::string_view text);

/// One --queue-bridge rule, QUEUE:EVENT:CHANNEL: the events named EVENT (or every event,
/// `*`) of the Bull queue QUEUE are published to the channel the template CHANNEL makes.
struct bull_rule {
    std::string queue; ///< 1-128 of [A-Za-z0-9_.@-]
    std::string event; ///< a BullMQ event name (1-64 of [A-Za-z0-9_.-]) or "*"
    channel_template channel;
};

/// Parses QUEUE:EVENT:CHANNEL (the channel is everything after the second ':', so it may
/// hold ':' itself). The error is a sentence naming the part that is wrong.
result<bull_rule, std::string> parse_bull_rule(std::string_view text);

/// BullMQ's key prefix (its `prefix` option): 1-64 of [A-Za-z0-9_.@{}-]; no ':' (BullMQ
/// puts the ':' after it itself) and no '*'.
bool valid_bull_prefix(std::string_view prefix) noexcept;

/// The Bull bridge's settings (--queue-bridge, --queue-bridge-prefix; docs/bridges.md).
struct bull_config {
    std::vector<bull_rule> rules;
    /// The queues' key prefix: a queue Q's events are the stream `<key_prefix>:Q:events`.
    std::string key_prefix = "bull";
    /// The consumer group (every node sharing it shares the events: each event reaches one
    /// of them) and this node's consumer name in it (its pending events are read again
    /// when it comes back under the same name).
    std::string group = "ringcast";
    std::string consumer = "ringcast";
};

/// Events one read takes at most: the bound on the bridge's work in flight.
inline constexpr uint32_t bull_read_count = 256;
/// An event's data larger than this (the API's body limit) cannot be mapped.
inline constexpr std::size_t max_event_bytes = std::size_t{1} << 20;

// ---- the bridges of a shard -----------------------------------------------------------------

/// The bridges one shard runs, owned by that shard's gateway (built by
/// net::gateway_config::make_bridges, on the shard's thread, after its engine). Every call
/// on that thread.
class bridges {
public:
    virtual ~bridges() = default;
    /// Each bridge's figures (admin::bridge_row), appended.
    virtual void rows(std::vector<admin::bridge_row>& out) const = 0;
};

/// The Bull bridge of `cfg` on the shard that owns `io` and `engine` (registered as the
/// engine's bridge listener), connecting to `target` through `connector`. Starts at once.
std::unique_ptr<bridges> make_bull_bridge(core::conn_io& io, core::outbound_connector& connector,
                                          pubsub::engine& engine, const redis::redis_target& target,
                                          const bull_config& cfg, redis::link_timing timing = {});

} // namespace ringcast::bridge
