// ringcast net — listeners and the per-connection protocol state machine.
//
// What it owns: the SO_REUSEPORT listening sockets (one per shard, opened at start-up) and
// the gateway: the core::conn_handler each shard runs, which takes a connection through
//
//   accept ─► HTTP request ─► route table ─┬─► GET /ws + valid upgrade ─► 101 ─► frames ─► pubsub
//                                          ├─► GET <echo path> + upgrade ─► 101 ─► frames echoed
//                                          ├─► /api/... ─► admin::api (maybe answered later)
//                                          ├─► GET /healthz, GET / (demo page) ─► response
//                                          └─► refused ─► 404/405/503 response
//
// and, once upgraded, feeds frames through ws::frame_parser and answers pings and closes.
// The route table (src/net/routes.h) is one row per path: exact or prefix, the methods it
// takes, whether it upgrades, whether a restricted connection (core::admission) may use it
// and which listener serves it; each row names its handler.
//
// Runs on each shard's thread; the gateway holds per-connection state allocated at accept
// and freed at close. Never blocks; protocol errors become HTTP statuses or close codes.
#pragma once

#include <ringcast/admin.h>
#include <ringcast/auth.h>
#include <ringcast/core.h>
#include <ringcast/http.h>
#include <ringcast/pubsub.h>
#include <ringcast/ws.h>

#include <cstdint>
#include <functional>
#include <memory>

namespace ringcast::bridge {
class bridges; // include/ringcast/bridge.h
} // namespace ringcast::bridge
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::net {

/// A numeric or resolvable host and a port, as given to --listen ("127.0.0.1:8080",
/// "[::1]:8080", ":8080" for every IPv4 address).
struct endpoint {
    std::string host;
    uint16_t port = 0;
};

/// Parses "HOST:PORT" and resolves HOST (numeric or a name getaddrinfo knows); the error
/// is a sentence naming the value.
result<endpoint, std::string> parse_endpoint(std::string_view text);

/// Opens `count` listening sockets bound to `where` with SO_REUSEPORT, so the kernel spreads
/// new connections over the shards. Port 0 binds an ephemeral port and all sockets share
/// it. TCP_NODELAY is set on the listeners and inherited by accepted sockets
/// (docs/architecture.md "Listeners"). Setup only: blocking calls.
result<std::vector<int>, std::string> open_listeners(const endpoint& where, std::size_t count);

/// The port a bound socket got.
uint16_t local_port(int fd) noexcept;

/// JWT authentication on /ws (docs/protocol.md "Identity"): on when `keys` is set.
struct token_config {
    /// The keys from --jwt-secret-file, --jwt-public-key and --jwks-file, loaded once at
    /// start-up and shared read-only by every shard (each builds its own auth::verifier
    /// over it). Null: authentication off.
    std::shared_ptr<const auth::key_set> keys;
    /// --jwt-issuer, --jwt-audience, --jwt-leeway-s.
    auth::verify_options verify;
};

/// The Socket.IO endpoint (docs/socketio.md); its namespaces are pubsub::socketio_config's.
struct socketio_settings {
    /// --socketio: serve /socket.io/ (on by default).
    bool enabled = true;
    /// --socketio-join-event, --socketio-leave-event: the events that join and leave a room
    /// (the room's channel is subscribed and unsubscribed); every other event publishes.
    std::string join_event = "join_room";
    std::string leave_event = "leave_room";
    /// --socketio-ping-interval-ms, --socketio-ping-timeout-ms: Engine.IO's heartbeat, sent
    /// in the open packet (the defaults are engine.io's). The client closes when no ping
    /// came for interval + timeout; the server when a pong did not come within timeout.
    uint32_t ping_interval_ms = 25000;
    uint32_t ping_timeout_ms = 20000;
    /// --socketio-recovery-ms: connection state recovery (socket.io 4.6's
    /// connectionStateRecovery, its maxDisconnectionDuration): a disconnected client's rooms
    /// and position are kept this long for its reconnect; 0: off (no delivery tags, no pid).
    /// Sets pubsub::socketio_config::recovery.
    uint32_t recovery_ms = 120000;
    /// --socketio-client-js: the socket.io-client bundle served at /socket.io/socket.io.js
    /// (and .min.js); null: those paths answer 404.
    std::shared_ptr<const std::string> client_js;
};

struct gateway_config {
    /// Path of the pubsub WebSocket endpoint (docs/protocol.md).
    std::string ws_path = "/ws";
    socketio_settings socketio;
    /// Path of the echo WebSocket endpoint (--echo); empty: no echo endpoint.
    std::string echo_path;
    /// --insecure: take the user id from ?user= on the upgrade (development only; never
    /// together with JWT keys, refused at start).
    bool insecure = false;
    /// JWT authentication; with keys, every /ws client but a backend session needs a token.
    token_config tokens;
    /// --allowed-origins: the origins a browser's upgrade may come from (origin_allowed);
    /// empty: any.
    std::vector<std::string> allowed_origins;
    /// --max-connections-per-user: /ws connections one user id (the token's sub, or ?user=
    /// under --insecure) may hold on the whole node, counted by the user's home shard;
    /// the next handshake gets 429. Anonymous and backend sessions are not counted. 0: off.
    uint32_t max_connections_per_user = 10;
    pubsub::config pubsub;
    admin::api_config api;
    /// --api-listen: /api/ is served only on the API listener (and only /api/ there).
    bool separate_api = false;
    /// --metrics-listen: /metrics is served only on the metrics listener (which serves
    /// /metrics and /healthz, nothing else), under the API's access rule.
    bool separate_metrics = false;
    http::request_limits http_limits;
    ws::parser_limits ws_limits;
    /// --permessage-deflate: negotiate RFC 7692 compression with clients that offer it
    /// (docs/protocol.md "Compression"; on by default: browsers, Python websockets and Node
    /// ws offer it unasked, and a broadcast is compressed once per shard, not per client).
    bool permessage_deflate = true;
    /// --deflate-memory-budget-bytes: what one shard reserves, all connections together, for
    /// the inflaters of clients that keep their compression context between messages
    /// (ws::inflater_cost_bytes each: 40 KiB at a 15-bit window). An offer that would pass
    /// it is declined (the connection works uncompressed), counted. 64 MiB: ~1,600 such
    /// connections per shard; clients offering client_no_context_takeover cost nothing.
    std::size_t deflate_memory_budget_bytes = 64u << 20;
    /// Time allowed for the HTTP request (and between keep-alive requests).
    uint32_t handshake_timeout_ms = 10000;
    /// No inbound bytes for this long → the server pings; 0 disables pings.
    uint32_t ping_interval_ms = 30000;
    /// A ping unanswered (no inbound bytes) for this long → close 1001 "ping timeout".
    uint32_t pong_timeout_ms = 10000;
    /// No inbound bytes at all for this long → close 1001 "idle timeout"; 0 disables.
    uint32_t idle_timeout_ms = 300000;
    /// Heap one shard may hold for unfinished inbound messages, all connections together
    /// (--inbound-budget-bytes). Past it the connections holding the most are closed with
    /// 1009 until it is back under 7/8. 128 MiB: eight messages at the 16 MiB default
    /// --max-message-bytes, or thousands of ordinary partial ones.
    std::size_t inbound_budget_bytes = 128u << 20;
    /// --engine redis: builds each shard's broker (src/engine) on the shard's thread, with
    /// the shard's conn_io and the gateway to open its connections through. Empty: the
    /// embedded engine (one node).
    std::function<std::unique_ptr<pubsub::broker>(core::conn_io&, core::outbound_connector&)>
        make_broker;
    /// --queue-bridge: builds the queue bridges a shard runs (src/bridge, docs/bridges.md)
    /// on the shard's thread, after its engine, with the engine to publish through; null
    /// for a shard that runs none. Empty: no bridges.
    std::function<std::unique_ptr<bridge::bridges>(core::conn_io&, core::outbound_connector&,
                                                   pubsub::engine&)>
        make_bridges;
};

/// A reload's settings for every shard's gateway (core::reload_shards; SIGHUP): a complete
/// configuration, of which the gateway takes what may change live (docs/operations.md
/// "Reload"): origins, the per-user limit, timeouts, JWT keys and verify options (while
/// authentication stays on), namespaces and their rules, the pub/sub limits, API keys.
struct reloaded_settings final : core::reload_payload {
    gateway_config config;
};

/// An --allowed-origins entry, checked at start: `scheme://host[:port]` (exact),
/// `scheme://*.domain[:port]` (any subdomain of domain, not domain itself), `*.domain` (any
/// subdomain, any scheme and port) or `null` (the Origin of sandboxed and file pages).
/// Lowercase is not required; a path, a bare `*` or an empty entry is refused with a
/// sentence naming the value.
result<void, std::string> check_origin_pattern(std::string_view pattern);

/// Whether a WebSocket upgrade with Origin header `origin` may proceed under `allowed`
/// (--allowed-origins): always when `allowed` is empty or the request has no Origin (a
/// non-browser client, which could send any Origin it liked: the check protects browsers'
/// users from other sites' pages, not the server from clients); otherwise when one pattern
/// matches, comparing scheme and host without regard to ASCII case. A malformed Origin
/// matches nothing.
bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed) noexcept;


/// The token a /ws upgrade presents: the value of "Authorization: Bearer <token>" (scheme
/// in any case) when the request has that header, else the ?token= query parameter as sent
/// (not percent-decoded: a compact JWS needs no encoding); empty when neither. The header
/// wins when both are there. Whether the value is an API key instead is the caller's
/// question (admin::bearer_key).
std::string_view presented_token(const http::request& req) noexcept;

/// How a refused handshake token is counted in /api/stats (edge_counters).
enum class token_refusal : uint8_t {
    missing, ///< no token at all ("token required")
    expired, ///< "token expired", "token not yet valid", "token issued in the future"
    invalid, ///< a token that proves nothing: malformed, too long, bad signature, unknown
             ///< key, algorithm not allowed, unsupported crit header
    claims,  ///< signed, but its claims do not fit: issuer, audience, missing sub or exp,
             ///< a sub that is not a user id
};
/// How many token_refusal classes there are: sizes the per-class counters.
inline constexpr std::size_t token_refusal_classes = std::size_t(token_refusal::claims) + 1;

/// The class of an auth::verifier::verify() reason or of one of the gateway's own
/// ("token required", "sub is not a valid user id"); an unknown reason counts as invalid.
token_refusal classify_token_refusal(std::string_view reason) noexcept;

/// The protocol handler for one shard, bound to that shard's conn_io.
std::unique_ptr<core::conn_handler> make_gateway(core::conn_io& io, const gateway_config& config);

} // namespace ringcast::net
