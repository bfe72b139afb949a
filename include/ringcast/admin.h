// ringcast admin — the backend HTTP API (docs/protocol.md "Backend API").
//
// What it owns: routing of /api/* requests, API-key checks, and the requests that need more
// than the shard they arrive on: publishes ordered by a channel's home shard, and
// scatter-gather questions (stats, online users, channels, broadcast, disconnect) that every
// shard answers over the mesh. One instance per shard, next to that shard's pubsub engine;
// the gateway (src/net) hands it requests and sends what it answers.
//
// How a request flows: handle() checks access, finds the path in the route table
// (src/admin/api.cc; 404 and 405 come from it) and calls that endpoint's handler. A handler
// answers at once (a refusal, or a publish whose home shards were all this one) or leaves a
// pending request behind, answered through responder::respond() when the home shards have
// reported (on_published) or every shard has answered its gather (on_mesh).
#pragma once

#include <ringcast/core.h>
#include <ringcast/http.h>
#include <ringcast/pubsub.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ringcast::admin {

/// What an API key may do; a key holds one or more scopes.
enum class api_scope : uint8_t {
    /// POST /api/publish, /api/send, /api/broadcast, and a backend session on /ws.
    publish,
    /// POST /api/disconnect; GET /api/stats, /api/online, /api/channels[/<name>],
    /// /api/presence/<name>: what disconnects users or shows who is online.
    admin,
};
inline constexpr unsigned api_scope_count = 2;

/// The scope's name as written in a key file ("publish", "admin").
std::string_view scope_name(api_scope s) noexcept;

/// One backend API key. The secret is compared only through keys_equal and never printed:
/// logs, errors and counters name the key by `name`.
struct api_key {
    std::string name;
    uint8_t scopes = 0; ///< bit (1 << api_scope) per scope held
    std::string secret;

    bool allows(api_scope s) const noexcept { return (scopes >> unsigned(s)) & 1u; }
};

struct api_config {
    /// Keys accepted as "Authorization: Bearer <secret>" on /api/ requests (and on a /ws
    /// upgrade, where a key with the publish scope makes a backend session). Empty: the API
    /// answers only peers on this host (peer_address::loopback()), every scope, and 403 to
    /// anyone else.
    std::vector<api_key> keys;
};

/// Most keys one source may hold (parse_api_keys): a key file is short text.
inline constexpr std::size_t max_api_keys = 64;

/// Reads API keys from `text` (a key file's contents or the environment variable; `source`
/// names it in errors). Two forms:
///  * one line `NAME:SCOPE[,SCOPE...]:SECRET` per key (NAME from [A-Za-z0-9_.-], 1-64
///    bytes; SCOPE `publish` or `admin`); empty lines and lines starting with `#` are
///    skipped;
///  * the whole text one SECRET with no `:` (the single-key form): the key "default" with
///    every scope.
/// A SECRET is 16 or more visible ASCII bytes (no spaces or control bytes: it travels in
/// an HTTP header); names and secrets are unique; at most max_api_keys keys; a line break
/// may be LF or CRLF. Every error names the line and what is accepted, never a secret.
result<std::vector<api_key>, std::string> parse_api_keys(std::string_view text,
                                                         std::string_view source);

/// Compares a presented secret with the configured one in time that depends only on their
/// lengths, never on their contents (no early exit at the first difference), so response
/// timing does not reveal how much of a guess was right. Every API-key check goes through
/// it (bearer_matches).
bool keys_equal(std::string_view presented, std::string_view expected) noexcept;

/// True when `req` carries "Authorization: Bearer <key>" (scheme in any case) and the token
/// is `key` (keys_equal). Always false for an empty `key`.
bool bearer_matches(const http::request& req, std::string_view key) noexcept;

/// The key `req` presents as "Authorization: Bearer <secret>" among `keys`, or null. Every
/// key is compared (keys_equal), whichever matches, so the time taken does not say which.
const api_key* bearer_key(const http::request& req, const std::vector<api_key>& keys) noexcept;

/// The API's own counters, per shard (GET /api/stats). Every member is a row of
/// src/admin/stats.h, which refuses to compile without one.
struct api_counters {
    uint64_t unauthorized = 0; ///< 401: missing or wrong API key
    uint64_t forbidden_scope = 0; ///< 403: a known key without the endpoint's scope
    uint64_t not_loopback = 0; ///< 403: no API key configured and the peer is not on this host
    uint64_t busy_refused = 0; ///< publishes refused with 503 (mesh congested)
    uint64_t sys_stats_published = 0; ///< sys:stats snapshots published (its home shard)
    uint64_t sys_stats_skipped = 0;   ///< snapshots not published: mesh congested
};

/// Counters of the connection layer (src/net), for GET /api/stats. Every member is a row of
/// src/admin/stats.h, which refuses to compile without one.
struct edge_counters {
    uint64_t inbound_held_bytes = 0;    ///< unfinished inbound messages (gauge)
    uint64_t inbound_budget_closes = 0; ///< closed with 1009: the shard's inbound budget
    uint64_t refused_origin = 0;        ///< /ws upgrades refused 403: --allowed-origins
    uint64_t refused_user_limit = 0;    ///< /ws upgrades refused 429: --max-connections-per-user
    uint64_t user_slot_early_closes = 0; ///< closed in phase user_slot: early bytes over the bound
    uint64_t user_slot_users = 0;       ///< users homed here holding slots (gauge)

    /// PROXY protocol (--proxy-protocol-from, docs/proxy-protocol.md):
    uint64_t proxy_headers = 0;          ///< valid headers read from trusted proxies
    uint64_t proxy_header_invalid = 0;   ///< trusted connections closed: not a valid header
    uint64_t proxy_header_timeouts = 0;  ///< trusted connections closed: no whole header in time
    uint64_t proxy_header_untrusted = 0; ///< 400: a header from an address not trusted to send one
    uint64_t refused_token_missing = 0; ///< /ws upgrades refused 401: no token (JWT on)
    uint64_t refused_token_expired = 0; ///< 401: expired, not yet valid, issued in the future
    uint64_t refused_token_invalid = 0; ///< 401: malformed, bad signature, unknown key, alg
    uint64_t refused_token_claims = 0;  ///< 401: issuer, audience, sub or exp claim
    uint64_t token_expiry_closes = 0;   ///< connections closed 4001: token expired
    uint64_t reloads = 0;               ///< reloaded settings applied (SIGHUP)

    /// permessage-deflate (docs/protocol.md "Compression"):
    uint64_t deflate_negotiated = 0;      ///< upgrades that agreed on it
    uint64_t deflate_declined_budget = 0; ///< offers declined: --deflate-memory-budget-bytes
    uint64_t deflate_reserved_bytes = 0;  ///< budget reserved for context-takeover inflaters (gauge)
    uint64_t deflate_inflater_bytes = 0;  ///< heap those inflaters hold now (gauge)
    uint64_t compressed_messages_in = 0;  ///< compressed messages received
    uint64_t compressed_bytes_in = 0;     ///< their compressed payload bytes
    uint64_t inflated_bytes_in = 0;       ///< the bytes they inflated to
    uint64_t deflate_bomb_closes = 0;     ///< closed 1009: inflated past --max-message-bytes
    uint64_t deflate_invalid_closes = 0;  ///< closed 1007: not valid deflate data
    /// compressed messages not inflated: the command bucket was empty (refused as over the
    /// rate, or closed 1008 for a client keeping its context)
    uint64_t deflate_rate_refused = 0;

    /// Socket.IO on /socket.io/ (docs/socketio.md):
    uint64_t socketio_connections = 0;      ///< upgrades to a Socket.IO WebSocket
    uint64_t socketio_connects = 0;         ///< namespace CONNECTs answered ok
    uint64_t socketio_connect_errors = 0;   ///< CONNECT_ERRORs sent (auth, namespace)
    uint64_t socketio_polling_sessions = 0; ///< long-polling sessions awaiting upgrade (gauge)
    uint64_t socketio_polling_refused = 0;  ///< handshakes refused 503: too many sessions
    uint64_t socketio_parked = 0;           ///< namespaces kept for recovery (gauge)
    uint64_t socketio_parked_dropped = 0;   ///< of those, dropped for room before expiry
    uint64_t socketio_recovered = 0;        ///< CONNECTs answered with their old pid
    uint64_t socketio_not_recovered = 0;    ///< CONNECTs with a pid answered with a new one
};

/// One queue bridge's figures on the shard that runs it (src/bridge, docs/bridges.md): a
/// row of "bridges" in GET /api/stats and the ringcast_bridge_* metrics, labelled by kind
/// and name. The connection's figures (up, connects, ...) are those of the bridge's
/// connection to its broker, shared by the rows of the queues it serves.
struct bridge_row {
    std::string kind; ///< "bull", "amqp"
    std::string name; ///< the queue (bull: the Bull queue's name)
    bool up = false;  ///< the broker connection is up and the queue is being read
    uint64_t connects = 0;         ///< broker connections that came up
    uint64_t connect_failures = 0; ///< attempts that did not
    uint64_t disconnects = 0;      ///< up connections that went down (each a reconnect)
    uint64_t received = 0;         ///< events read from the queue (re-reads included)
    uint64_t published = 0;        ///< publishes ringcast accepted (an offset was given)
    uint64_t publish_failed = 0;   ///< publishes refused (engine down): read again later
    uint64_t unmatched = 0;        ///< events no rule takes (ignored, acknowledged)
    uint64_t unmapped = 0;  ///< events a rule takes but no valid channel or data comes of
    uint64_t dead_lettered = 0; ///< unmapped events handed to a dead-letter exchange
    uint64_t acked = 0;         ///< events acknowledged to the broker
    uint64_t in_flight = 0;     ///< events of the read being published now (gauge)
    uint64_t lag_ms = 0; ///< age of the oldest event read and not acknowledged (gauge)
};

/// How the API answers a request it could not answer at once (the gateway implements it).
class responder {
public:
    virtual ~responder() = default;
    /// The complete HTTP response for the request pending on `h` (ignored if it closed).
    virtual void respond(conn_handle h, std::string response) noexcept = 0;
    /// This shard's connection-layer counters.
    virtual edge_counters edge_stats() const noexcept = 0;
    /// This shard's WebSocket closes by code: the gateway's and its pubsub engine's.
    virtual ws::close_counts close_stats() const noexcept = 0;
    /// The queue bridges this shard runs (docs/bridges.md); none by default.
    virtual std::vector<bridge_row> bridge_rows() const { return {}; }
};

// The API's private types (src/admin/endpoints.h, src/admin/gather.h).
struct call;
struct pending_publish;
struct pending_gather;
struct gather_msg;
enum class question : uint8_t;
enum class addressed_to : uint8_t;
/// The API's mesh kinds (src/admin/gather.h): a question to every shard and each answer.
namespace kinds {
struct gather_question;
struct gather_answer;
} // namespace kinds

/// The backend API of one shard. Built with the shard's handler (src/net), on the shard's
/// thread, before any message flows; every call is made on that thread.
class api final : public pubsub::publish_listener,
                  private pubsub::presence_listener,
                  private pubsub::history_listener {
public:
    api(core::conn_io& io, pubsub::engine& engine, const api_config& cfg, responder& out);
    /// New API keys (a reload): later requests are judged by them.
    void reload(const api_config& cfg) { _config = cfg; }
    ~api() override;

    /// Handles one /api/ request. Returns the response, or nothing when it will come later
    /// through responder::respond() (the connection must not answer anything else first).
    std::optional<std::string> handle(conn_handle h, const http::request& req, http::keep_alive ka);
    /// The API's mesh messages, registered with the shard in the constructor.
    void on_mesh(kinds::gather_question, shard_id from, std::unique_ptr<gather_msg> g) noexcept;
    void on_mesh(kinds::gather_answer, shard_id from, std::unique_ptr<gather_msg> g) noexcept;
    void on_published(const pubsub::publish_origin& origin, uint64_t offset,
                      std::string_view failure) noexcept override;
    /// sys:stats gained its first subscriber (this is its home shard): snapshots start.
    void on_watched(std::string_view channel) noexcept override;
    /// The shard timer (core::conn_io::set_shard_timer) the API armed has fired; the
    /// handler forwards it. While sys:stats has subscribers, gathers one snapshot and
    /// publishes it there, and arms the timer for the next; else stops (snapshot.cc).
    void on_timer() noexcept;

private:
    /// A 403 (no keys and not loopback) or 401 (no key matches) when `req` may not use the
    /// API, counted; otherwise nothing, with `key` the key presented (null without keys).
    /// The route's scope is checked against `key` once the route is known (handle()).
    std::optional<std::string> refuse_access(conn_handle h, const http::request& req,
                                             const api_key*& key, http::keep_alive ka);

    // --- the endpoints: one handler per row of the route table (api.cc) -------------------
    // Each takes the request as routed and returns what handle() returns.
    std::optional<std::string> post_publish(const call& c);    // publish_endpoints.cc
    std::optional<std::string> post_send(const call& c);       // publish_endpoints.cc
    std::optional<std::string> post_broadcast(const call& c);  // publish_endpoints.cc
    std::optional<std::string> post_disconnect(const call& c); // disconnect_endpoint.cc
    std::optional<std::string> post_drain(const call& c);      // disconnect_endpoint.cc
    std::optional<std::string> get_stats(const call& c);       // stats.cc
    std::optional<std::string> get_metrics(const call& c);     // stats.cc
    std::optional<std::string> get_online(const call& c);      // query_endpoints.cc
    std::optional<std::string> get_channels(const call& c);    // query_endpoints.cc
    std::optional<std::string> get_channel(const call& c);     // query_endpoints.cc
    std::optional<std::string> get_history(const call& c);     // query_endpoints.cc
    std::optional<std::string> get_presence(const call& c);    // query_endpoints.cc

    // --- publishing (publish_endpoints.cc) ------------------------------------------------
    /// /api/publish and /api/send: every item of the body published on the channel `to`
    /// names, through issue(); a 400 for a body that does not parse or an item without
    /// that field (nothing is published then).
    std::optional<std::string> publish_each(const call& c, addressed_to to);
    /// Publishes items[i] to targets[i]. A 403 when a target is a sys: channel (the
    /// server's own; nothing is published then). A 503 when a target's home shard is congested
    /// (pubsub::engine::accepts_work_for; nothing is published then). Else each item goes
    /// to the engine, and the answer comes at once when every home shard was this one, or
    /// later through finish_publish().
    std::optional<std::string> issue(const call& c,
                                     const std::vector<const pubsub::publish_request*>& items,
                                     const std::vector<std::string>& targets,
                                     pubsub::body_shape shape,
                                     const core::frame_ref& shared_data = {});
    void finish_publish(uint64_t token);

    // --- scatter-gather (gather.cc) -------------------------------------------------------
    /// Asks every shard `what` (this one directly, the others over the mesh); the answer
    /// goes out through finish_gather() once the last shard has replied, so this returns
    /// nothing. `since` and `limit`: history's.
    std::optional<std::string> gather(const call& c, question what, std::string arg,
                                      uint16_t code = 0, core::frame_ref frame = {},
                                      std::string text = {}, uint64_t since = 0,
                                      uint64_t limit = 0);
    /// gather() for any asker: `h` and `ka` are where and how the answer goes (an HTTP
    /// request's), unused for question::snapshot, whose answer is published instead.
    void begin_gather(conn_handle h, http::keep_alive ka, question what, std::string arg,
                      uint16_t code = 0, core::frame_ref frame = {}, std::string text = {},
                      uint64_t since = 0, uint64_t limit = 0);
    /// Fills in this shard's answer to `g`; false when part of it comes later (a presence
    /// or history page the broker reads: g.parked names it), and the caller parks `g`
    /// (park()).
    bool answer_here(gather_msg& g) noexcept;
    /// Keeps `g` until its answer is complete (on_presence_page), then sends it to `from`.
    void park(unsigned from, std::unique_ptr<gather_msg> g);
    /// An answer for a gather of this shard's: added, and the gather finished if it was the
    /// last one.
    void take_answer(std::unique_ptr<gather_msg> g);
    void on_presence_page(uint64_t token, const pubsub::presence_page& page) noexcept override;
    void on_history_page(uint64_t token, pubsub::history_page page) noexcept override;
    /// The parked answer `token` completed: sent to the shard that asked (or taken here).
    void unpark(std::unique_ptr<gather_msg> g, unsigned from);
    void finish_gather(uint64_t token);

    // --- sys:stats (snapshot.cc) ----------------------------------------------------------
    /// The gathered snapshot, published to sys:stats (or counted as skipped).
    void publish_snapshot(std::span<const gather_msg> answers);

    core::conn_io& _io;
    pubsub::engine& _engine;
    api_config _config;
    responder& _out;
    std::unordered_map<uint64_t, std::unique_ptr<pending_publish>> _publishes;
    std::unordered_map<uint64_t, std::unique_ptr<pending_gather>> _gathers;
    /// Answers waiting for the broker (answer_here false), with the shard that asked;
    /// bounded by the gathers under way, each answered or failed by the broker.
    std::unordered_map<uint64_t, std::pair<unsigned, std::unique_ptr<gather_msg>>> _parked;
    uint64_t _next_park = 1;
    /// Names each pending request, and makes broadcast message ids unique on this shard.
    uint64_t _next_token = 1;
    /// sys:stats, on its home shard: the shard timer is armed for the next snapshot (when
    /// `_snapshot_due_ms` comes); a snapshot gather is under way.
    bool _snapshots_on = false;
    bool _snapshot_gathering = false;
    uint64_t _snapshot_due_ms = 0;
    api_counters _counters;
};

} // namespace ringcast::admin
