// ringcast bridge — queue bridges: events of the backends' own job queues published to
// ringcast channels by rule (docs/bridges.md).
//
//   bull   BullMQ's events stream `<bull prefix>:<queue>:events`, read through a Redis
//          consumer group on one redis::link of shard 0; each event matched against the
//          --queue-bridge rules of its queue, published like an API publish, and
//          acknowledged (XACK) only once ringcast has accepted every publish it made
//   amqp   a RabbitMQ queue the bridge declares and binds to the --amqp-bridge rules'
//          exchanges, consumed over an amqp::link of shard 0 with a prefetch window; each
//          delivery matched against the rules, published, and basic.ack'ed only once
//          ringcast accepted every publish; what no rule can map is rejected to a
//          dead-letter exchange
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
#include <ringcast/amqp.h>
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
    /// The engine's answer to a publish this bridge made (publish_origin::kind::bridge,
    /// origin.index the bridge's own index in its set): the set hands it over.
    virtual void answer(const pubsub::publish_origin& origin, uint64_t offset,
                        std::string_view failure) noexcept = 0;
};

/// The Bull bridge of `cfg` on the shard that owns `io` and `engine`, connecting to
/// `target` through `connector`; its publishes carry origin.index `index` (make_bridge_set).
/// Starts at once.
std::unique_ptr<bridges> make_bull_bridge(core::conn_io& io, core::outbound_connector& connector,
                                          pubsub::engine& engine, const redis::redis_target& target,
                                          const bull_config& cfg, uint32_t index = 0,
                                          redis::link_timing timing = {});

/// The bridges of one shard as one: registered as `engine`'s bridge listener (the engine has
/// one), it hands each answer to the bridge at origin.index in `members`, and gives every
/// member's rows. Each member must have been made with its index in `members`.
std::unique_ptr<bridges> make_bridge_set(pubsub::engine& engine,
                                         std::vector<std::unique_ptr<bridges>> members);

// ---- the RabbitMQ bridge --------------------------------------------------------------------

/// A channel template of the RabbitMQ bridge: literal channel characters and placeholders,
/// each {routingKey}, {exchange} or {FIELD} — the top-level field FIELD (1-64 of
/// [A-Za-z0-9_-]) of the message's body, a JSON object, whose value is a string or an
/// integer. E.g. "user:{userId}", "quota-{routingKey}".
struct amqp_template {
    std::string text; ///< as given
    /// A placeholder names a body field: a message whose body is not a JSON object with it
    /// cannot be mapped.
    bool needs_body = false;
};

/// Checks a template: braces only around a placeholder name, the literal parts channel
/// characters, a sample expansion a valid channel outside the sys namespace.
result<amqp_template, std::string> parse_amqp_template(std::string_view text);

/// One --amqp-bridge rule, EXCHANGE:BINDING_KEY:CHANNEL: the messages the topic exchange
/// EXCHANGE routes with a key BINDING_KEY matches (AMQP topic rules: words split at '.',
/// '*' one word, '#' zero or more) are published to the channel CHANNEL makes.
struct amqp_rule {
    std::string exchange;    ///< 1-127 of [A-Za-z0-9_.-]
    std::string binding_key; ///< 1-255 of [A-Za-z0-9_.*#@-]
    amqp_template channel;
};

/// Parses EXCHANGE:BINDING_KEY:CHANNEL (the channel is everything after the second ':').
/// The error is a sentence naming the part that is wrong.
result<amqp_rule, std::string> parse_amqp_rule(std::string_view text);

/// AMQP topic matching (RabbitMQ's): `binding_key`'s words against `routing_key`'s.
bool topic_matches(std::string_view binding_key, std::string_view routing_key) noexcept;

/// --amqp-queue-prefix: 1-64 of [A-Za-z0-9_.-]; the bridge's queue is PREFIX.bridge, its
/// dead-letter exchange PREFIX.dlx and dead-letter queue PREFIX.dead.
bool valid_amqp_prefix(std::string_view prefix) noexcept;

/// One delivery as the mapper reads it.
struct amqp_message {
    std::string_view exchange;
    std::string_view routing_key;
    std::string_view body;
    std::string_view id; ///< the message's identity in the data (amqp_bridge: message-id or digest)
    bool redelivered = false;
    bool body_too_large = false; ///< past max_event_bytes: cannot be mapped
};

/// What a delivery maps to.
enum class amqp_mapping : uint8_t {
    mapped,    ///< `channels` (each once, at least one), `event` and `data` are set
    unmatched, ///< no rule's exchange and binding key take it
    unmapped,  ///< a rule takes it, but no channel or data can be made (`why` says why)
};

struct amqp_mapped {
    std::vector<std::string> channels;
    std::string event; ///< the routing key when it is a valid event name, else "message"
    /// {"exchange":E,"routingKey":K,"id":ID,"redelivered":B,"body":BODY}: BODY as JSON
    /// where the body is JSON, else as a string (a body that is not UTF-8 is unmapped).
    std::string data;
    std::string_view why; ///< unmapped: a static sentence
};

/// Maps deliveries by the rules: every rule whose exchange and binding key take a message
/// publishes it to the channel its template makes (the same channel once). Holds a JSON
/// parser, so one per bridge; not thread-safe.
class amqp_mapper {
public:
    explicit amqp_mapper(std::vector<amqp_rule> rules);
    ~amqp_mapper();
    amqp_mapper(const amqp_mapper&) = delete;
    amqp_mapper& operator=(const amqp_mapper&) = delete;
    amqp_mapping map(const amqp_message& m, amqp_mapped& out);
    const std::vector<amqp_rule>& rules() const noexcept { return _rules; }

private:
    struct parser;
    std::vector<amqp_rule> _rules;
    std::unique_ptr<parser> _parser;
};

/// The RabbitMQ bridge's settings (--amqp-url, --amqp-bridge, --amqp-prefetch,
/// --amqp-queue-prefix; docs/bridges.md).
struct amqp_config {
    std::vector<amqp_rule> rules;
    std::string prefix = "ringcast";
    /// basic.qos prefetch-count: deliveries the broker hands over before an ack, the bound on
    /// the bridge's work in flight. 256, as the Bull bridge's read: a full queue drained at
    /// 18 000-19 300 msgs/s with it against 12 000 at 16 and 15 300 at 2 048
    /// (perf/RESULTS.md "RabbitMQ bridge, a quieter machine"), so a larger window buys
    /// nothing for eight times the work in flight.
    uint32_t prefetch = 256;
};

/// The RabbitMQ bridge of `cfg` on the shard that owns `io` and `engine`, connecting to
/// `target` through `connector`; its publishes carry origin.index `index`. Starts at once.
std::unique_ptr<bridges> make_amqp_bridge(core::conn_io& io, core::outbound_connector& connector,
                                          pubsub::engine& engine, const amqp::amqp_target& target,
                                          const amqp_config& cfg, uint32_t index,
                                          amqp::link_timing timing = {});

} // namespace ringcast::bridge
