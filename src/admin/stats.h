// The counters of GET /api/stats as tables (private to src/admin; tests/unit/admin reads
// them too). One row per field of each counters struct — pubsub::counters,
// core::shard_counters, admin::edge_counters, admin::api_counters, pubsub::broker_stats —
// says the name the figure has in JSON, one line of help, whether it is a counter or a
// gauge (and how a gauge's shards combine), and the member it reads. Summing the shards (merge) and writing the JSON
// (stats.cc) read these tables and nothing else, so adding a counter is adding a struct
// member and one row here; a member without a row does not compile (the static_asserts at
// the end). The structs stay where their modules keep them; the tables point into them with
// member pointers.
//
// How GET /api/stats flows: every shard fills one shard_stats (gather.cc, answer_here), the
// shard that took the request merges the answers in shard order and writes
// {"total":{…},"shards":[{…},…]} (stats_json), each object holding every figure below.
//
// GET /metrics writes the same rows in the Prometheus text format (metrics_text): a row's
// name makes the metric's (ringcast_<name>, and _total for a counter), help its # HELP
// line, type its # TYPE, a shard its `shard` label, and a per_priority row a `priority`
// label. The derived figures exist for the JSON names clients already read; only the
// derived gauges (differences of counters) are metrics, the derived counters are sums of
// rows Prometheus can add itself.
#pragma once

#include <ringcast/admin.h>
#include <ringcast/core.h>
#include <ringcast/pubsub.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace ringcast::admin::stats {

/// What a figure is, and how the shards' figures make the total. A closed set: every switch
/// on it lists all three.
enum class figure : uint8_t {
    counter,   ///< only grows while the process runs; the total adds the shards up
    gauge_sum, ///< a level that goes up and down; the total adds the shards up
    gauge_max, ///< a level whose total is the largest shard's (a high-water mark)
};

/// pubsub::counters::dropped: one figure per delivery priority, indexed by its value (1-4;
/// index 0 is no priority and stays 0).
using by_priority = uint64_t[5];

/// One field of the counters struct S. Exactly one of `value` and `per_priority` is set.
template <typename S>
struct field {
    /// The JSON key, also the Prometheus stem: [a-z_][a-z0-9_]*, unique across all tables.
    std::string_view name;
    figure type;
    uint64_t S::*value = nullptr;
    by_priority S::*per_priority = nullptr;
    /// per_priority: the priorities written, from this one to priority::low. Below it no
    /// figure can be non-zero (priorities 1 and 2 are never dropped: admit() in pubsub/fanout.h).
    pubsub::priority shown_from = pubsub::priority::critical;
    /// One sentence, no line breaks or backslashes (a # HELP line takes it as it is).
    std::string_view help;

    constexpr field(std::string_view n, figure t, uint64_t S::*v, std::string_view h)
        : name(n), type(t), value(v), help(h) {}
    constexpr field(std::string_view n, figure t, by_priority S::*v, pubsub::priority from,
                    std::string_view h)
        : name(n), type(t), per_priority(v), shown_from(from), help(h) {}
};

// clang-format off
inline constexpr field<pubsub::counters> pubsub_fields[] = {
    {"sessions", figure::gauge_sum, &pubsub::counters::sessions, "open /ws connections"},
    {"subscriptions", figure::gauge_sum, &pubsub::counters::subscriptions,
     "subscriptions of the open /ws connections"},
    {"messages_in", figure::counter, &pubsub::counters::messages_in,
     "publishes accepted on this shard (clients, backend sessions and the API)"},
    {"messages_out", figure::counter, &pubsub::counters::messages_out,
     "message frames queued to connections"},
    {"bytes_out", figure::counter, &pubsub::counters::bytes_out,
     "bytes of the message frames queued to connections"},
    {"deflate_compressions", figure::counter, &pubsub::counters::deflate_compressions,
     "channel messages compressed for permessage-deflate connections (once per message per "
     "shard)"},
    {"deflate_input_bytes", figure::counter, &pubsub::counters::deflate_input_bytes,
     "payload bytes of the messages compressed"},
    {"deflate_output_bytes", figure::counter, &pubsub::counters::deflate_output_bytes,
     "compressed payload bytes those compressions made"},
    {"compressed_messages_out", figure::counter, &pubsub::counters::compressed_messages_out,
     "message frames queued compressed (part of messages_out)"},
    {"compressed_bytes_out", figure::counter, &pubsub::counters::compressed_bytes_out,
     "bytes of the compressed message frames queued (part of bytes_out)"},
    {"dropped_by_priority", figure::counter, &pubsub::counters::dropped, pubsub::priority::normal,
     "messages not queued to a connection with a long backlog, by priority"},
    {"slow_consumer_closes", figure::counter, &pubsub::counters::slow_consumer_closes,
     "connections closed 1008 because their backlog reached --slow-consumer-bytes"},
    {"commands", figure::counter, &pubsub::counters::commands, "/ws commands received"},
    {"command_errors", figure::counter, &pubsub::counters::command_errors,
     "/ws commands refused unread: not JSON, an unknown op, a missing or malformed field "
     "(other refusals have their own counters: permission_refused, busy_refused, ...)"},
    {"rate_limited", figure::counter, &pubsub::counters::rate_limited,
     "/ws commands over the command rate, dropped before parsing"},
    {"commands_waited", figure::counter, &pubsub::counters::commands_waited,
     "/ws commands held until an earlier one of the connection finished"},
    {"backlog_refused", figure::counter, &pubsub::counters::backlog_refused,
     "/ws commands refused 429 because too many waited on one connection, or (presence) "
     "because its unread output was past 256 KiB"},
    {"command_busy_refused", figure::counter, &pubsub::counters::busy_refused,
     "/ws publishes and subscribes refused with 503 because traffic between shards was "
     "backed up"},
    {"local_channels", figure::gauge_sum, &pubsub::counters::local_channels,
     "channels with subscribers or pending subscribes on this shard"},
    {"home_channels", figure::gauge_sum, &pubsub::counters::home_channels,
     "channels whose messages this shard orders (their home shard)"},
    {"idle_channels_evicted", figure::counter, &pubsub::counters::idle_channels_evicted,
     "idle channels whose ordering state was dropped to stay under --max-idle-channels"},
    {"history_messages", figure::gauge_sum, &pubsub::counters::history_messages,
     "messages retained for history (--namespace NS:history=N)"},
    {"history_bytes", figure::gauge_sum, &pubsub::counters::history_bytes,
     "bytes of the retained messages, frames and 32 B of bookkeeping each"},
    {"history_channels", figure::gauge_sum, &pubsub::counters::history_channels,
     "channels keeping history on their home shard"},
    {"history_evicted_count", figure::counter, &pubsub::counters::history_evicted_count,
     "retained messages dropped because their channel kept history=N newer ones"},
    {"history_evicted_age", figure::counter, &pubsub::counters::history_evicted_age,
     "retained messages dropped because they were older than history-ttl"},
    {"history_evicted_budget", figure::counter, &pubsub::counters::history_evicted_budget,
     "retained messages dropped, the shard's oldest first, to stay under "
     "--history-budget-bytes"},
    {"recovered", figure::counter, &pubsub::counters::recovered,
     "subscribes with recover answered recovered:true (every missed message sent)"},
    {"recover_failed", figure::counter, &pubsub::counters::recover_failed,
     "subscribes with recover answered recovered:false (epoch changed, or messages gone)"},
    {"recovered_messages", figure::counter, &pubsub::counters::recovered_messages,
     "messages sent from history to recovering subscribes"},
    {"offline_delivered", figure::counter, &pubsub::counters::offline_delivered,
     "messages to user:<id> kept while the user had no connection, delivered when one came "
     "(--offline-messages)"},
    {"ack_pending", figure::gauge_sum, &pubsub::counters::ack_pending,
     "messages sent that need an ack and have not had it yet (ack namespaces, priority 1 to "
     "user:)"},
    {"acked", figure::counter, &pubsub::counters::acked,
     "messages acknowledged by their connection"},
    {"ack_resent", figure::counter, &pubsub::counters::ack_resent,
     "messages sent again on their connection, unacknowledged after --ack-timeout-ms"},
    {"ack_closes", figure::counter, &pubsub::counters::ack_closes,
     "connections closed (1008) for holding too many unacknowledged messages"},
    {"ack_replayed", figure::counter, &pubsub::counters::ack_replayed,
     "user: messages delivered and never acknowledged, sent again to the user's next "
     "connection"},
    {"permission_refused", figure::counter, &pubsub::counters::permission_refused,
     "/ws subscribes and publishes refused 403 by the namespace rules (JWT on)"},
    {"channel_limit_refused", figure::counter, &pubsub::counters::channel_limit_refused,
     "/ws subscribes refused 403 \"channel limit reached\" (--max-channels)"},
    {"refreshes", figure::counter, &pubsub::counters::refreshes,
     "/ws refresh commands that replaced the connection's token"},
    {"refresh_refused", figure::counter, &pubsub::counters::refresh_refused,
     "/ws refresh commands refused (401 bad token, 403 another user's token, 400 no token)"},
    {"revoked_subscriptions", figure::counter, &pubsub::counters::revoked_subscriptions,
     "subscriptions ended by a refresh whose token no longer allows them (notice sent)"},
    // presence
    {"presence_channels", figure::gauge_sum, &pubsub::counters::presence_channels,
     "channels with members, on their home shards (--namespace NS:presence)"},
    {"presence_members", figure::gauge_sum, &pubsub::counters::presence_members,
     "users with a connection subscribed, summed over the presence channels"},
    {"presence_joins", figure::counter, &pubsub::counters::presence_joins,
     "users whose first connection subscribed to a presence channel"},
    {"presence_leaves", figure::counter, &pubsub::counters::presence_leaves,
     "users whose last connection left a presence channel"},
    {"presence_events_sent", figure::counter, &pubsub::counters::presence_events_sent,
     "join and leave events sent, each once to every subscriber of its channel"},
    {"presence_events_suppressed", figure::counter,
     &pubsub::counters::presence_events_suppressed,
     "join and leave events not sent: their channel had more than --presence-max-members "
     "users"},
    {"presence_queries", figure::counter, &pubsub::counters::presence_queries,
     "presence commands and GET /api/presence requests answered by the home shards"},
};

inline constexpr field<core::shard_counters> core_fields[] = {
    {"accepted", figure::counter, &core::shard_counters::accepted, "connections accepted"},
    {"accept_errors", figure::counter, &core::shard_counters::accept_errors,
     "accepts that failed (descriptor table full, resources)"},
    {"log_suppressed", figure::counter, &core::shard_counters::log_suppressed,
     "log lines left out over their call site's limit (docs/operations.md Logs)"},
    {"refused", figure::counter, &core::shard_counters::refused,
     "connections over --max-connections or --max-connections-total"},
    {"refused_unanswered", figure::counter, &core::shard_counters::refused_unanswered,
     "connections closed without an answer: no spare slot left for one"},
    {"refused_per_ip_cap", figure::counter, &core::shard_counters::refused_address_cap,
     "connections refused 429: over --max-connections-per-ip"},
    {"refused_per_ip_rate", figure::counter, &core::shard_counters::refused_address_rate,
     "connections refused 429: over --connect-rate-per-ip and its burst"},
    {"per_ip_evictions", figure::counter, &core::shard_counters::address_evictions,
     "per-address entries dropped to keep that table bounded"},
    {"closed", figure::counter, &core::shard_counters::closed,
     "accepted connections whose socket was released"},
    {"outbound_connects", figure::counter, &core::shard_counters::outbound_connects,
     "outbound connections started (to a broker)"},
    {"outbound_connect_failures", figure::counter,
     &core::shard_counters::outbound_connect_failures,
     "outbound connections that never opened: refused, unreachable, timed out or cancelled"},
    {"outbound_closed", figure::counter, &core::shard_counters::outbound_closed,
     "outbound connections whose socket was released, failed ones included"},
    {"bytes_received", figure::counter, &core::shard_counters::bytes_received,
     "bytes read from connections"},
    {"bytes_sent", figure::counter, &core::shard_counters::bytes_sent,
     "bytes written to connections"},
    {"sends", figure::counter, &core::shard_counters::sends,
     "sendmsg operations submitted (each a batch of queued frames)"},
    {"frames_sent", figure::counter, &core::shard_counters::frames_sent,
     "queued frames (messages, replies, HTTP responses) written out whole"},
    {"recv_enobufs", figure::counter, &core::shard_counters::recv_enobufs,
     "receives that found the shard's buffer pool empty"},
    {"recv_rearms", figure::counter, &core::shard_counters::recv_rearms,
     "receives armed again after one ended"},
    {"read_pauses", figure::counter, &core::shard_counters::read_pauses,
     "times reading from a connection stopped because its output backlog was too long"},
    {"output_budget_closes", figure::counter, &core::shard_counters::budget_closes,
     "connections closed because the shard's queued output was over its budget"},
    {"drain_closes", figure::counter, &core::shard_counters::drain_closes,
     "client sessions closed with 1001 by a drain, paced over --drain-seconds"},
    {"close_timeouts", figure::counter, &core::shard_counters::close_timeouts,
     "closes cut short by --close-timeout-ms: the peer neither read the rest nor closed"},
    {"teardown_overdue", figure::counter, &core::shard_counters::teardown_overdue,
     "teardowns whose socket operations had not ended --close-timeout-ms (at least 1 s) after "
     "they began, ended by shutting the socket down both ways (expected 0)"},
    {"cq_overflows", figure::counter, &core::shard_counters::cq_overflows,
     "event loop turns that found the completion queue overflowed"},
    {"loop_iterations", figure::counter, &core::shard_counters::loop_iterations,
     "turns of the shard's event loop"},
};

inline constexpr field<edge_counters> edge_fields[] = {
    {"inbound_held_bytes", figure::gauge_sum, &edge_counters::inbound_held_bytes,
     "bytes of unfinished inbound messages held"},
    {"inbound_budget_closes", figure::counter, &edge_counters::inbound_budget_closes,
     "connections closed 1009 because the shard's inbound budget was used up"},
    {"refused_origin", figure::counter, &edge_counters::refused_origin,
     "WebSocket upgrades refused 403 because their Origin is not in --allowed-origins"},
    {"refused_user_limit", figure::counter, &edge_counters::refused_user_limit,
     "WebSocket upgrades refused 429 because their user held --max-connections-per-user "
     "connections"},
    {"user_slot_early_closes", figure::counter, &edge_counters::user_slot_early_closes,
     "connections closed while their user's home shard answered, for sending more early "
     "bytes than a request may hold"},
    {"user_slot_users", figure::gauge_sum, &edge_counters::user_slot_users,
     "users holding connection slots, counted on their home shards "
     "(--max-connections-per-user)"},
    {"proxy_headers", figure::counter, &edge_counters::proxy_headers,
     "PROXY protocol headers read from --proxy-protocol-from addresses"},
    {"proxy_header_invalid", figure::counter, &edge_counters::proxy_header_invalid,
     "connections from --proxy-protocol-from addresses closed because they did not start "
     "with a valid PROXY header"},
    {"proxy_header_timeouts", figure::counter, &edge_counters::proxy_header_timeouts,
     "connections from --proxy-protocol-from addresses closed because no whole PROXY header "
     "came within the handshake timeout"},
    {"proxy_header_untrusted", figure::counter, &edge_counters::proxy_header_untrusted,
     "connections refused 400 for a PROXY header from an address not in "
     "--proxy-protocol-from"},
    {"refused_token_missing", figure::counter, &edge_counters::refused_token_missing,
     "WebSocket upgrades refused 401 without a token (JWT keys configured)"},
    {"refused_token_expired", figure::counter, &edge_counters::refused_token_expired,
     "WebSocket upgrades refused 401: token expired, not yet valid or issued in the future"},
    {"refused_token_invalid", figure::counter, &edge_counters::refused_token_invalid,
     "WebSocket upgrades refused 401: token malformed, too long, badly signed, of an unknown "
     "key or a refused algorithm"},
    {"refused_token_claims", figure::counter, &edge_counters::refused_token_claims,
     "WebSocket upgrades refused 401: wrong issuer or audience, missing exp or sub, a sub that "
     "is not a user id"},
    {"token_expiry_closes", figure::counter, &edge_counters::token_expiry_closes,
     "connections closed 4001 because their token expired without a refresh"},
    {"reloads", figure::counter, &edge_counters::reloads,
     "reloaded settings this shard applied (SIGHUP with a valid configuration)"},
    {"deflate_negotiated", figure::counter, &edge_counters::deflate_negotiated,
     "WebSocket upgrades that agreed on permessage-deflate"},
    {"deflate_declined_budget", figure::counter, &edge_counters::deflate_declined_budget,
     "permessage-deflate offers declined because the shard's context-takeover inflaters "
     "would pass --deflate-memory-budget-bytes"},
    {"deflate_reserved_bytes", figure::gauge_sum, &edge_counters::deflate_reserved_bytes,
     "--deflate-memory-budget-bytes reserved by connections whose client keeps its "
     "compression context"},
    {"deflate_inflater_bytes", figure::gauge_sum, &edge_counters::deflate_inflater_bytes,
     "heap held by those connections' inflaters now"},
    {"compressed_messages_in", figure::counter, &edge_counters::compressed_messages_in,
     "compressed WebSocket messages received (permessage-deflate)"},
    {"compressed_bytes_in", figure::counter, &edge_counters::compressed_bytes_in,
     "compressed payload bytes of those messages"},
    {"inflated_bytes_in", figure::counter, &edge_counters::inflated_bytes_in,
     "bytes those messages inflated to"},
    {"deflate_bomb_closes", figure::counter, &edge_counters::deflate_bomb_closes,
     "connections closed 1009: a compressed message inflated past --max-message-bytes"},
    {"deflate_invalid_closes", figure::counter, &edge_counters::deflate_invalid_closes,
     "connections closed 1007: a compressed message was not valid deflate data"},
    {"deflate_rate_refused", figure::counter, &edge_counters::deflate_rate_refused,
     "compressed messages not inflated because the connection's command bucket was empty "
     "(inflating costs a token per 64 KiB of output)"},
    {"socketio_connections", figure::counter, &edge_counters::socketio_connections,
     "WebSocket upgrades on /socket.io/"},
    {"socketio_connects", figure::counter, &edge_counters::socketio_connects,
     "Socket.IO namespace CONNECTs answered ok"},
    {"socketio_connect_errors", figure::counter, &edge_counters::socketio_connect_errors,
     "Socket.IO CONNECT_ERRORs sent: unknown namespace, token refused, bad auth payload"},
    {"socketio_polling_sessions", figure::gauge_sum, &edge_counters::socketio_polling_sessions,
     "Engine.IO long-polling sessions waiting for their upgrade"},
    {"socketio_polling_refused", figure::counter, &edge_counters::socketio_polling_refused,
     "Engine.IO polling handshakes refused 503: the shard holds the most sessions it keeps"},
    {"socketio_parked", figure::gauge_sum, &edge_counters::socketio_parked,
     "disconnected Socket.IO namespaces kept for connection state recovery"},
    {"socketio_parked_dropped", figure::counter, &edge_counters::socketio_parked_dropped,
     "of those, dropped before --socketio-recovery-ms because the shard kept the most it keeps"},
    {"socketio_recovered", figure::counter, &edge_counters::socketio_recovered,
     "Socket.IO reconnects whose rooms all recovered (answered with their old pid)"},
    {"socketio_not_recovered", figure::counter, &edge_counters::socketio_not_recovered,
     "Socket.IO reconnects with a pid that could not recover (a new pid)"},
};

inline constexpr field<api_counters> api_fields[] = {
    {"api_unauthorized", figure::counter, &api_counters::unauthorized,
     "API requests refused 401: missing or wrong API key"},
    {"api_forbidden_scope", figure::counter, &api_counters::forbidden_scope,
     "API requests refused 403: the key lacks the endpoint's scope"},
    {"api_not_loopback", figure::counter, &api_counters::not_loopback,
     "API requests refused 403: no API key set and the peer not on this host"},
    {"api_busy_refused", figure::counter, &api_counters::busy_refused,
     "API publishes refused 503 because traffic between shards was backed up"},
    {"sys_stats_published", figure::counter, &api_counters::sys_stats_published,
     "snapshots published to sys:stats (once a second while it has subscribers)"},
    {"sys_stats_skipped", figure::counter, &api_counters::sys_stats_skipped,
     "sys:stats snapshots not published because traffic between shards was backed up"},
};
inline constexpr field<pubsub::broker_stats> engine_fields[] = {
    {"engine_links", figure::gauge_sum, &pubsub::broker_stats::links,
     "connections this shard keeps to the engine's Redis (--engine redis; 0 embedded)"},
    {"engine_links_up", figure::gauge_sum, &pubsub::broker_stats::links_up,
     "of them up now: fewer than engine_links means publishes get 503 and /readyz fails"},
    {"engine_connects", figure::counter, &pubsub::broker_stats::connects,
     "connections to Redis that came up (AUTH and SELECT done)"},
    {"engine_connect_failures", figure::counter, &pubsub::broker_stats::connect_failures,
     "connection attempts to Redis that did not come up"},
    {"engine_disconnects", figure::counter, &pubsub::broker_stats::disconnects,
     "connections to Redis that were up and went down (each reconnects with backoff)"},
    {"engine_requests", figure::counter, &pubsub::broker_stats::requests,
     "requests sent to Redis (scripts, SUBSCRIBE, PING)"},
    {"engine_errors", figure::counter, &pubsub::broker_stats::errors,
     "error replies from Redis"},
    {"engine_pending", figure::gauge_sum, &pubsub::broker_stats::pending,
     "requests sent to Redis and not yet answered"},
    {"engine_watched", figure::gauge_sum, &pubsub::broker_stats::watched,
     "channels this shard receives from Redis for its home channels with subscribers"},
    {"engine_published", figure::counter, &pubsub::broker_stats::published,
     "publishes Redis ordered for this shard's home channels"},
    {"engine_publish_failed", figure::counter, &pubsub::broker_stats::publish_failed,
     "publishes answered 503 because Redis was down or refused them"},
    {"engine_received", figure::counter, &pubsub::broker_stats::received,
     "messages received from Redis for watched channels"},
    {"engine_history_reads", figure::counter, &pubsub::broker_stats::history_reads,
     "recoveries that read history from Redis's streams"},
    {"engine_buffered_dropped", figure::counter, &pubsub::broker_stats::buffered_dropped,
     "messages dropped while a channel's position was being read (over 10,000 held for it, or 64 MiB for the shard)"},
    {"engine_gap_filled", figure::counter, &pubsub::broker_stats::gap_filled,
     "messages published while the subscriber connection was down, read from the stream and "
     "delivered in order when it was back"},
    {"engine_user_claims", figure::counter, &pubsub::broker_stats::user_claims,
     "connections of a user checked against --max-connections-per-user over every node"},
    {"engine_user_claims_refused", figure::counter, &pubsub::broker_stats::user_claims_refused,
     "of them refused because the user's connections on every live node reached the limit"},
    {"engine_user_claims_unchecked", figure::counter,
     &pubsub::broker_stats::user_claims_unchecked,
     "connections of a user admitted on this node's count alone while Redis was down"},
    {"engine_user_counts_dropped", figure::counter, &pubsub::broker_stats::user_counts_dropped,
     "per-user connection counts not written: more than 262,144 writes waited for room on "
     "the Redis link (all written again after a reconnect)"},
    {"engine_presence_writes", figure::counter, &pubsub::broker_stats::presence_writes,
     "presence members this shard set in Redis (one per change, or a channel's all again)"},
    {"engine_presence_dropped", figure::counter, &pubsub::broker_stats::presence_dropped,
     "presence changes not written because Redis was down, or because more than 262,144 "
     "writes waited for room on the link (all set again after a reconnect)"},
    {"engine_presence_reads", figure::counter, &pubsub::broker_stats::presence_reads,
     "presence queries answered from the members of every live node"},
    {"engine_presence_sweeps", figure::counter, &pubsub::broker_stats::presence_sweeps,
     "presence channels swept of the members of a node that stopped refreshing liveness"},
    {"engine_dead_shards", figure::counter, &pubsub::broker_stats::dead_shards,
     "shards of other nodes seen to stop refreshing their liveness (each starts a sweep)"},
    {"engine_broadcasts_sent", figure::counter, &pubsub::broker_stats::broadcasts_sent,
     "broadcasts to every connection handed to the other nodes through Redis"},
    {"engine_broadcasts_dropped", figure::counter, &pubsub::broker_stats::broadcasts_dropped,
     "broadcasts to every connection not handed on because Redis was down"},
    {"engine_broadcasts_received", figure::counter, &pubsub::broker_stats::broadcasts_received,
     "other nodes' broadcasts to every connection delivered on this shard"},
};
// clang-format on

/// One shard's figures, or the total of several (merge). The five counters structs are
/// the tables' (one row per member); the rest are written by their own code below the
/// tables' (closes by code, the two histograms), with the same shape in every shard object
/// and the total.
struct shard_stats {
    pubsub::counters pubsub;
    core::shard_counters core;
    edge_counters edge;
    api_counters api;
    /// The engine's connections and traffic (pubsub::broker::stats; zero when embedded).
    pubsub::broker_stats engine;
    /// WebSocket closes by code, the gateway's and pubsub's (responder::close_stats).
    ws::close_counts closes;
    /// A publish's acceptance (any shard) → its last copy queued on this shard, µs, once
    /// per message per shard (pubsub::engine::publish_latency).
    core::latency_histogram publish_to_send_us;
    /// Queued output of each open connection, bytes: the shard walked its slot table when
    /// it answered (conn_io::queue_depths), so this is a snapshot, not a history.
    core::queue_depth_histogram queue_depth_bytes;
};

/// The JSON keys and metric stems of the figures outside the tables (see shard_stats).
inline constexpr std::string_view closes_sent_name = "closes_sent";
inline constexpr std::string_view closes_received_name = "closes_received";
inline constexpr std::string_view publish_to_send_name = "publish_to_send_us";
inline constexpr std::string_view queue_depth_name = "queue_depth_bytes";

template <typename S>
using rows = std::span<const field<S>>;

/// Calls fn(section, rows, part) for each table, in the order the JSON writes them:
/// `section` names the struct's module ("pubsub", "core", "edge", "api", "engine"), `rows` is its
/// table (a stats::rows<S>), `part` the shard_stats member holding that struct. The one
/// list of tables.
template <typename Fn>
constexpr void for_each_section(Fn&& fn) {
    fn(std::string_view("pubsub"), rows<pubsub::counters>(pubsub_fields), &shard_stats::pubsub);
    fn(std::string_view("core"), rows<core::shard_counters>(core_fields), &shard_stats::core);
    fn(std::string_view("edge"), rows<edge_counters>(edge_fields), &shard_stats::edge);
    fn(std::string_view("api"), rows<api_counters>(api_fields), &shard_stats::api);
    fn(std::string_view("engine"), rows<pubsub::broker_stats>(engine_fields),
       &shard_stats::engine);
}

/// A figure computed from rows, under the JSON name clients read before the rows were
/// exposed one by one.
struct derived_field {
    std::string_view name;
    figure type;
    uint64_t (*value)(const shard_stats& s) noexcept;
    std::string_view help;
};

inline uint64_t open_connections(const shard_stats& s) noexcept {
    return s.core.accepted - s.core.closed;
}
inline uint64_t open_outbound_connections(const shard_stats& s) noexcept {
    return s.core.outbound_connects - s.core.outbound_closed;
}
inline uint64_t all_dropped(const shard_stats& s) noexcept {
    const auto& d = s.pubsub.dropped;
    return d[1] + d[2] + d[3] + d[4];
}
inline uint64_t all_busy_refused(const shard_stats& s) noexcept {
    return s.pubsub.busy_refused + s.api.busy_refused;
}

inline constexpr derived_field derived_fields[] = {
    {"connections", figure::gauge_sum, &open_connections,
     "open accepted connections, clients and API alike (accepted - closed)"},
    {"outbound_connections", figure::gauge_sum, &open_outbound_connections,
     "outbound connections connecting or open (outbound_connects - outbound_closed)"},
    {"dropped", figure::counter, &all_dropped, "messages dropped, every priority"},
    {"busy_refused", figure::counter, &all_busy_refused,
     "publishes and subscribes refused 503 (command_busy_refused + api_busy_refused)"},
};

/// `one` folded into `total` as `type` says.
constexpr void combine(figure type, uint64_t& total, uint64_t one) noexcept {
    switch (type) {
    case figure::counter:
    case figure::gauge_sum:
        total += one;
        return;
    case figure::gauge_max:
        total = one > total ? one : total;
        return;
    }
}

/// Every figure `table` reads, of `one` folded into `total` (combine).
template <typename S>
constexpr void merge_rows(rows<S> table, S& total, const S& one) noexcept {
    for (const field<S>& row : table) {
        if (row.value != nullptr) {
            combine(row.type, total.*row.value, one.*row.value);
            continue;
        }
        for (std::size_t i = 0; i < std::extent_v<by_priority>; ++i) {
            combine(row.type, (total.*row.per_priority)[i], (one.*row.per_priority)[i]);
        }
    }
}

/// `one`'s figures folded into `total` as each row's type says.
void merge(shard_stats& total, const shard_stats& one) noexcept;

/// Appends the JSON object of `s`: the derived figures, then every row of every table; a
/// per_priority row is an object keyed by priority ("3", "4").
void append_json(std::string& out, const shard_stats& s);

/// The body of GET /api/stats for the shards' answers, in shard order:
/// {"total":{…},"shards":[{…},…]}.
std::string stats_json(std::span<const shard_stats> shards);
/// The same two fields without the braces, `"total":{…},"shards":[…]`, appended: how the
/// sys:stats snapshot (snapshot.cc) carries exactly what GET /api/stats answers.
void append_stats_fields(std::string& out, std::span<const shard_stats> shards);
/// Every row of every shard in the Prometheus text exposition format (version 0.0.4): per
/// metric one # HELP and one # TYPE line, then one sample per shard (label shard="N", and
/// priority="P" for a per-priority row); no totals (sum by shard is the query's). Counter
/// names end in _total. Then the figures outside the tables: ringcast_closes_sent_total and
/// ringcast_closes_received_total (labels code="1008", reason="policy violation"; sent only
/// for codes that may go on the wire), and two histograms per shard,
/// ringcast_publish_to_send_seconds (le and _sum in seconds) and ringcast_queue_depth_bytes
/// (cumulative _bucket samples ending in le="+Inf", then _sum and _count).
///
/// Cost: the answers are already copies, so rendering touches no shard state; what a scrape
/// costs each shard is answer_here (gather.cc): a copy of its counters and one pass over
/// its slot table for the queue depths, without a lock or an allocation per connection.
std::string metrics_text(std::span<const shard_stats> shards);

/// The JSON of one histogram, in every shard object and the total of GET /api/stats:
/// {"le":[bounds],"counts":[per bucket, not cumulative; one more than le, the last above
/// the last bound],"count":N,"sum":S}.
template <const auto& Bounds>
void append_histogram_json(std::string& out, const core::histogram<Bounds>& h) {
    out += "{\"le\":[";
    for (std::size_t i = 0; i < std::size(Bounds); ++i) {
        out += i == 0 ? "" : ",";
        out += std::to_string(Bounds[i]);
    }
    out += "],\"counts\":[";
    for (std::size_t i = 0; i < h.counts.size(); ++i) {
        out += i == 0 ? "" : ",";
        out += std::to_string(h.counts[i]);
    }
    out += "],\"count\":" + std::to_string(h.count) + ",\"sum\":" + std::to_string(h.sum) + "}";
}

/// Microseconds as decimal seconds without exponent or trailing zeros ("0.00001", "2.5",
/// "3"): Prometheus' `le` and _sum of a latency histogram kept in µs.
std::string seconds_of_us(uint64_t us);

/// Figures a row reads: 1, or one per priority.
template <typename S>
constexpr std::size_t slots(const field<S>& row) noexcept {
    return row.value != nullptr ? 1 : std::extent_v<by_priority>;
}

/// True when `rows` name each member of S once and nothing else: no two rows read the same
/// member, each row reads exactly one, and the figures they read fill sizeof(S) (all
/// members are uint64_t or by_priority, so a member without a row leaves bytes uncounted).
template <typename S, std::size_t N>
constexpr bool covers_every_member(const field<S> (&rows)[N]) noexcept {
    std::size_t figures = 0;
    for (std::size_t i = 0; i < N; ++i) {
        if ((rows[i].value == nullptr) == (rows[i].per_priority == nullptr)) {
            return false;
        }
        for (std::size_t j = 0; j < i; ++j) {
            if ((rows[i].value != nullptr && rows[i].value == rows[j].value) ||
                (rows[i].per_priority != nullptr && rows[i].per_priority == rows[j].per_priority)) {
                return false;
            }
        }
        figures += slots(rows[i]);
    }
    return figures * sizeof(uint64_t) == sizeof(S);
}

static_assert(covers_every_member(pubsub_fields),
              "pubsub::counters changed: give each member one row in stats::pubsub_fields");
static_assert(covers_every_member(core_fields),
              "core::shard_counters changed: give each member one row in stats::core_fields");
static_assert(covers_every_member(edge_fields),
              "admin::edge_counters changed: give each member one row in stats::edge_fields");
static_assert(covers_every_member(api_fields),
              "admin::api_counters changed: give each member one row in stats::api_fields");
static_assert(covers_every_member(engine_fields),
              "pubsub::broker_stats changed: give each member one row in stats::engine_fields");

} // namespace ringcast::admin::stats
