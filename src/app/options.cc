// The option table (see options.h for what a row is) and what each option_type does with a
// value: read it from text, check it, show it.
#include "options.h"


#include <ringcast/amqp.h>
#include <ringcast/auth.h>
#include <ringcast/bridge.h>
#include <ringcast/log.h>
#include <ringcast/net.h>
#include <ringcast/pubsub.h>
#include <ringcast/redis.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <limits>
#include <type_traits>

namespace ringcast::app {

namespace {

// --- checks that the types alone do not make -------------------------------------------

bool plain_path(std::string_view path) {
    if (path.empty() || path.front() != '/') {
        return false;
    }
    for (const char ch : path) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                        (ch >= '0' && ch <= '9') || ch == '/' || ch == '-' || ch == '_' ||
                        ch == '.' || ch == '~';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/// --echo: a path of its own, not one the gateway serves already.
result<void, std::string> check_echo_path(std::string_view given_as, std::string_view path) {
    if (!plain_path(path) || path == "/" || path == "/healthz" || path == "/readyz" ||
        path == "/ws" || path == "/metrics" || path == "/dashboard" || path == "/socketio" ||
        path.starts_with("/socket.io/") ||
        path.starts_with("/api/")) {
        return unexpected{std::string(given_as) + " = '" + std::string(path) +
                          "' must be a path such as /echo: it starts with '/', is not "
                          "'/', '/healthz', '/readyz', '/ws', '/metrics', '/dashboard', "
                          "'/socketio', under /socket.io/ or under /api/, and uses only "
                          "letters, digits and /-_.~"};
    }
    return {};
}

/// --socketio-join-event, --socketio-leave-event: an event name (docs/protocol.md "Names")
/// that Socket.IO itself does not reserve.
result<void, std::string> check_socketio_event(std::string_view given_as, std::string_view name) {
    if (!pubsub::valid_event(name)) {
        return unexpected{std::string(given_as) + ": '" + std::string(name) +
                          "' is not an event name (1-255 printable ASCII bytes, no '\"' or '\\')"};
    }
    for (const std::string_view reserved : {"connect", "connect_error", "disconnect",
                                            "disconnecting", "newListener", "removeListener"}) {
        if (name == reserved) {
            return unexpected{std::string(given_as) + ": '" + std::string(name) +
                              "' is reserved by Socket.IO"};
        }
    }
    return {};
}

/// --config: any path; reading it says what is wrong with the file.
result<void, std::string> check_config_file(std::string_view given_as, std::string_view path) {
    if (path.empty()) {
        return unexpected{std::string(given_as) + " needs a file name"};
    }
    return {};
}

/// --allowed-origins, one pattern (net::check_origin_pattern).
result<void, std::string> check_origin(std::string_view, std::string_view pattern) {
    return net::check_origin_pattern(pattern);
}

/// --client-publish, one name: a namespace (a channel name without ':'), not "user".
result<void, std::string> check_namespace(std::string_view given_as, std::string_view name) {
    if (name.empty() || !pubsub::valid_channel(name) || name.find(':') != std::string_view::npos) {
        return unexpected{std::string(given_as) + ": '" + std::string(name) +
                          "' is not a namespace name (letters, digits, _.@*-)"};
    }
    if (name == "user") {
        return unexpected{std::string(given_as) +
                          ": the user namespace is server-only (per-user channels)"};
    }
    return {};
}

/// --api-key-file: not empty. An unset shell variable ("--api-key-file $KEYFILE") must not
/// start a server without the key its operator meant to give it. The file is read by
/// finish_config, once every source is in.
result<void, std::string> check_key_file(std::string_view given_as, std::string_view path) {
    if (path.empty()) {
        return unexpected{std::string(given_as) + ": empty path; give the file holding the key"};
    }
    return {};
}

/// --jwt-secret-file, --jwt-public-key, --jwks-file: not empty (an unset shell variable must
/// not quietly turn authentication off). The file is read by finish_config.
result<void, std::string> check_jwt_file(std::string_view given_as, std::string_view path) {
    if (path.empty()) {
        return unexpected{std::string(given_as) + ": empty path; give the file holding the key"};
    }
    return {};
}

/// --namespace, one NAME:RULE[,RULE…] (auth::parse_namespace_rule).
result<void, std::string> check_namespace_rule(std::string_view given_as, std::string_view rule) {
    if (auto parsed = auth::parse_namespace_rule(rule); !parsed) {
        // The error names the option and the value already ("--namespace x:bad: …").
        (void)given_as;
        return unexpected{parsed.error()};
    }
    return {};
}

/// --log-level: one of the names log::parse_level reads.
result<void, std::string> check_log_level(std::string_view given_as, std::string_view name) {
    if (!log::parse_level(name)) {
        return unexpected{std::string(given_as) + " = '" + std::string(name) +
                          "' is not a level: error, warn, info or debug"};
    }
    return {};
}

/// --engine: embedded or redis.
result<void, std::string> check_engine(std::string_view given_as, std::string_view name) {
    if (name != "embedded" && name != "redis") {
        return unexpected{std::string(given_as) + " = '" + std::string(name) +
                          "' is not an engine: embedded (one node) or redis (many nodes)"};
    }
    return {};
}

/// --redis-url: redis://[[user]:password@]host[:port][/db] (resolved by finish_config).
result<void, std::string> check_redis_url(std::string_view given_as, std::string_view url) {
    if (auto parsed = redis::parse_redis_url(url); !parsed) {
        return unexpected{std::string(given_as) + ": " + parsed.error()};
    }
    return {};
}

/// --redis-prefix: what channel names may hold, without '*' (a pattern in Redis).
result<void, std::string> check_redis_prefix(std::string_view given_as, std::string_view prefix) {
    const bool fine = prefix.size() <= 64 && pubsub::valid_channel(prefix) &&
                      prefix.find('*') == std::string_view::npos;
    if (!fine) {
        return unexpected{std::string(given_as) + " = '" + std::string(prefix) +
                          "' is not a key prefix: 1-64 of A-Z a-z 0-9 _ . : @ -"};
    }
    return {};
}

/// --queue-bridge, one QUEUE:EVENT:CHANNEL rule (bridge::parse_bull_rule).
result<void, std::string> check_queue_bridge(std::string_view given_as, std::string_view rule) {
    if (auto parsed = bridge::parse_bull_rule(rule); !parsed) {
        return unexpected{std::string(given_as) + " " + parsed.error()};
    }
    return {};
}

/// --queue-bridge-prefix: BullMQ's key prefix (bridge::valid_bull_prefix).
result<void, std::string> check_queue_bridge_prefix(std::string_view given_as,
                                                    std::string_view prefix) {
    if (!bridge::valid_bull_prefix(prefix)) {
        return unexpected{std::string(given_as) + " = '" + std::string(prefix) +
                          "' is not a BullMQ key prefix: 1-64 of A-Z a-z 0-9 _ . @ { } -"};
    }
    return {};
}

/// --amqp-url: an amqp:// URL (amqp::parse_amqp_url).
result<void, std::string> check_amqp_url(std::string_view given_as, std::string_view url) {
    if (auto parsed = amqp::parse_amqp_url(url); !parsed) {
        return unexpected{std::string(given_as) + " = '" + std::string(url) + "': " +
                          parsed.error()};
    }
    return {};
}

/// --amqp-bridge, one EXCHANGE:BINDING_KEY:CHANNEL rule (bridge::parse_amqp_rule).
result<void, std::string> check_amqp_bridge(std::string_view given_as, std::string_view rule) {
    if (auto parsed = bridge::parse_amqp_rule(rule); !parsed) {
        return unexpected{std::string(given_as) + " " + parsed.error()};
    }
    return {};
}

/// --amqp-queue-prefix: what the bridge's queue and exchanges are named after.
result<void, std::string> check_amqp_queue_prefix(std::string_view given_as,
                                                  std::string_view prefix) {
    if (!bridge::valid_amqp_prefix(prefix)) {
        return unexpected{std::string(given_as) + " = '" + std::string(prefix) +
                          "' is not a queue name prefix: 1-64 of A-Z a-z 0-9 _ . -"};
    }
    return {};
}

/// --log-format: one of the names log::parse_format reads.
result<void, std::string> check_log_format(std::string_view given_as, std::string_view name) {
    if (!log::parse_format(name)) {
        return unexpected{std::string(given_as) + " = '" + std::string(name) +
                          "' is not a log format: text, json or logfmt"};
    }
    return {};
}

// A day: the longest timeout any *-ms option takes.
constexpr uint64_t max_timeout_ms = 24u * 3600 * 1000;

// The option's field in a config, for a row: `c.member` must name a field of app::config.
// clang-format off
#define RINGCAST_FIELD(member) [](config& c) -> auto& { return c.member; }

constexpr option table[] = {
    {.name = "listen", .type = option_type::address, .field = RINGCAST_FIELD(listen),
     .help = "address to serve WebSocket and HTTP on; port 0 picks a free port, printed on "
             "start"},
    {.name = "shards", .type = option_type::integer, .field = RINGCAST_FIELD(shards),
     .range = {1, 1024}, .when_unset = "one per CPU of the affinity mask",
     .help = "shards (threads pinned to CPUs)"},
    {.name = "echo", .type = option_type::path, .field = RINGCAST_FIELD(gateway.echo_path),
     .check = check_echo_path, .when_unset = "off",
     .help = "serve a WebSocket echo endpoint on PATH (e.g. /echo); the demo page on / is "
             "always served"},
    {.name = "max-connections", .type = option_type::integer,
     .field = RINGCAST_FIELD(runtime.max_connections_per_shard), .range = {1, 1u << 20},
     .help = "connections per shard, capped by RLIMIT_NOFILE; beyond it a few spare slots "
             "still answer GET /healthz and /api/, and refuse upgrades with 503"},
    {.name = "max-connections-total", .type = option_type::integer,
     .field = RINGCAST_FIELD(runtime.max_connections_total), .range = {1, 1u << 30},
     .when_unset = "no cap beyond the per-shard one",
     .help = "connections across all shards"},
    {.name = "max-message-bytes", .type = option_type::bytes,
     .field = RINGCAST_FIELD(gateway.ws_limits.max_message_bytes),
     .range = {125, std::size_t(1) << 30},
     .help = "largest client message; larger → close 1009"},
    {.name = "permessage-deflate", .type = option_type::toggle,
     .field = RINGCAST_FIELD(gateway.permessage_deflate),
     .when_unset = "on",
     .help = "negotiate permessage-deflate (RFC 7692) with clients that offer it; "
             "--permessage-deflate=off never compresses"},
    {.name = "deflate-threshold-bytes", .type = option_type::bytes,
     .field = RINGCAST_FIELD(gateway.pubsub.deflate_threshold_bytes),
     .range = {0, std::size_t(1) << 30},
     .help = "channel messages shorter than this go uncompressed to permessage-deflate "
             "clients"},
    {.name = "deflate-memory-budget-bytes", .type = option_type::bytes,
     .field = RINGCAST_FIELD(gateway.deflate_memory_budget_bytes),
     .range = {0, std::size_t(1) << 40},
     .help = "per shard, for the inflaters of clients that keep their compression context; "
             "past it their offers are declined"},
    {.name = "socketio", .type = option_type::toggle,
     .field = RINGCAST_FIELD(gateway.socketio.enabled), .when_unset = "on",
     .help = "serve Socket.IO v4 clients (socket.io-client, WebSocket transport) on "
             "/socket.io/; --socketio=off answers it 404"},
    {.name = "socketio-namespace", .type = option_type::name_list,
     .field = RINGCAST_FIELD(gateway.pubsub.socketio.namespaces),
     .check = check_namespace, .when_unset = "only \"/\"",
     .help = "a Socket.IO namespace /NS besides \"/\": its rooms are the channels NS:room, "
             "whose messages are emitted there; each use adds to the list"},
    {.name = "socketio-join-event", .type = option_type::text,
     .field = RINGCAST_FIELD(gateway.socketio.join_event), .check = check_socketio_event,
     .help = "the Socket.IO event whose argument is a room to join (its channel is subscribed)"},
    {.name = "socketio-leave-event", .type = option_type::text,
     .field = RINGCAST_FIELD(gateway.socketio.leave_event), .check = check_socketio_event,
     .help = "the Socket.IO event whose argument is a room to leave"},
    {.name = "socketio-ping-interval-ms", .type = option_type::milliseconds,
     .field = RINGCAST_FIELD(gateway.socketio.ping_interval_ms), .range = {1, max_timeout_ms},
     .help = "Engine.IO heartbeat: a ping to every Socket.IO client this often"},
    {.name = "socketio-ping-timeout-ms", .type = option_type::milliseconds,
     .field = RINGCAST_FIELD(gateway.socketio.ping_timeout_ms), .range = {1, max_timeout_ms},
     .help = "close a Socket.IO client whose pong has not come this long after a ping"},
    {.name = "socketio-recovery-ms", .type = option_type::milliseconds,
     .field = RINGCAST_FIELD(gateway.socketio.recovery_ms), .range = {0, max_timeout_ms},
     .help = "Socket.IO connection state recovery: keep a disconnected client's rooms and "
             "position this long for its reconnect; 0 = off"},
    {.name = "socketio-client-js", .type = option_type::path,
     .field = RINGCAST_FIELD(socketio_client_js_file), .check = check_jwt_file,
     .when_unset = "not served",
     .help = "serve this file (socket.io-client's dist/socket.io.min.js) at "
             "/socket.io/socket.io.js, as a Socket.IO server does for its pages"},
    {.name = "handshake-timeout-ms", .type = option_type::milliseconds,
     .field = RINGCAST_FIELD(gateway.handshake_timeout_ms), .range = {1, max_timeout_ms},
     .help = "time allowed for the HTTP request, and between keep-alive requests"},
    {.name = "ping-interval-ms", .type = option_type::milliseconds,
     .field = RINGCAST_FIELD(gateway.ping_interval_ms), .range = {0, max_timeout_ms},
     .help = "ping a client silent for this long; 0 = off"},
    {.name = "pong-timeout-ms", .type = option_type::milliseconds,
     .field = RINGCAST_FIELD(gateway.pong_timeout_ms), .range = {0, max_timeout_ms},
     .help = "close a client that stays silent after a ping; 0 only with "
             "--ping-interval-ms 0"},
    {.name = "idle-timeout-ms", .type = option_type::milliseconds,
     .field = RINGCAST_FIELD(gateway.idle_timeout_ms), .range = {0, max_timeout_ms},
     .help = "close a client silent for this long; 0 = off"},
    {.name = "linger-us", .type = option_type::microseconds,
     .field = RINGCAST_FIELD(runtime.linger_us), .range = {0, 100000},
     .help = "hold output up to N µs so more messages share one send; 0 sends every loop "
             "pass"},
    {.name = "close-timeout-ms", .type = option_type::milliseconds,
     .field = RINGCAST_FIELD(runtime.close_timeout_ms), .range = {0, max_timeout_ms},
     .help = "wait for a closing peer at most this long"},
    {.name = "shutdown-timeout-ms", .type = option_type::milliseconds,
     .field = RINGCAST_FIELD(runtime.shutdown_timeout_ms), .range = {0, max_timeout_ms},
     .help = "on SIGTERM/SIGINT, wait for goodbyes this long"},
    {.name = "drain-delay-ms", .type = option_type::milliseconds,
     .field = RINGCAST_FIELD(drain_delay_ms), .range = {0, max_timeout_ms},
     .help = "on SIGTERM or POST /api/drain, answer /readyz 503 and the agent check "
             "\"drain\" this long before closing sessions: longer than the balancer's "
             "check interval"},
    {.name = "drain-seconds", .type = option_type::integer,
     .field = RINGCAST_FIELD(drain_seconds), .range = {0, 3600},
     .help = "then close the sessions with 1001, spread evenly over this many seconds (new "
             "ones get 503); 0 closes them all at once"},
    {.name = "agent-check-listen", .type = option_type::address,
     .field = RINGCAST_FIELD(agent_check_listen), .when_unset = "none",
     .help = "answer HAProxy's agent check here: \"up ready\" while serving, \"drain\" "
             "from the start of a drain"},
    {.name = "insecure", .type = option_type::toggle, .field = RINGCAST_FIELD(gateway.insecure),
     .help = "development only: take the user id from ?user= on /ws, unchecked; refused "
             "together with JWT keys"},
    {.name = "allowed-origins", .type = option_type::name_list,
     .field = RINGCAST_FIELD(gateway.allowed_origins), .check = check_origin,
     .when_unset = "any origin",
     .help = "origins a browser may open /ws from: scheme://host[:port], scheme://*.domain, "
             "*.domain or null, comma-separated; others get 403. Requests without Origin "
             "(non-browser clients) pass; each use adds to the list"},
    {.name = "client-publish", .type = option_type::name_list,
     .field = RINGCAST_FIELD(gateway.pubsub.client_publish_namespaces),
     .check = check_namespace, .when_unset = "none",
     .help = "namespaces whose channels clients may publish to (e.g. chat), without JWT; "
             "with JWT use --namespace NS:public,publish; each use adds to the list"},
    {.name = "jwt-secret-file", .type = option_type::path,
     .field = RINGCAST_FIELD(jwt_secret_file), .check = check_jwt_file,
     .when_unset = "no HMAC secret",
     .help = "HMAC secret (32 bytes or more) that client tokens (HS256/384/512) are signed "
             "with; any JWT key turns authentication on: every /ws client needs a token"},
    {.name = "jwt-public-key", .type = option_type::path,
     .field = RINGCAST_FIELD(jwt_public_key_file), .check = check_jwt_file,
     .when_unset = "no PEM key",
     .help = "PEM file of public keys (RSA, EC P-256/P-384, Ed25519) that client tokens are "
             "signed with"},
    {.name = "jwks-file", .type = option_type::path, .field = RINGCAST_FIELD(jwks_file),
     .check = check_jwt_file, .when_unset = "no JWKS",
     .help = "JSON Web Key Set of the keys client tokens are signed with (chosen by kid)"},
    {.name = "jwt-leeway-s", .type = option_type::integer, .field = RINGCAST_FIELD(jwt_leeway_s),
     .range = {0, 3600},
     .help = "seconds of clock skew allowed on a token's exp, nbf and iat; a connection is "
             "closed with 4001 at exp plus this"},
    {.name = "jwt-issuer", .type = option_type::text,
     .field = RINGCAST_FIELD(gateway.tokens.verify.issuer), .when_unset = "iss not checked",
     .help = "the iss a token must carry"},
    {.name = "jwt-audience", .type = option_type::text,
     .field = RINGCAST_FIELD(gateway.tokens.verify.audience),
     .when_unset = "a token with aud is refused",
     .help = "the audience a token's aud must name"},
    {.name = "namespace", .type = option_type::entry_list, .field = RINGCAST_FIELD(namespaces),
     .check = check_namespace_rule, .when_unset = "none",
     .help = "who may use channels NAME:…, with JWT: public, private (the token's channels "
             "claim), role=R (a roles claim entry), plus publish to let them publish; and, "
             "with or without JWT, history=N[,history-ttl=S]: messages each channel keeps, "
             "presence: members tracked with join / leave events, ack: clients acknowledge "
             "messages (needs history=); repeat for each namespace",
     .metavar = "NAME:RULE[,RULE]"},
    {.name = "max-channels", .type = option_type::integer,
     .field = RINGCAST_FIELD(gateway.pubsub.max_channels_per_connection), .range = {1, 100000},
     .help = "channels per connection"},
    {.name = "command-rate", .type = option_type::integer,
     .field = RINGCAST_FIELD(gateway.pubsub.command_rate), .range = {1, 1000000},
     .help = "client commands per second per connection"},
    {.name = "command-burst", .type = option_type::integer,
     .field = RINGCAST_FIELD(gateway.pubsub.command_burst), .range = {1, 1000000},
     .help = "client commands a connection may send at once above --command-rate"},
    {.name = "slow-consumer-bytes", .type = option_type::bytes,
     .field = RINGCAST_FIELD(gateway.pubsub.slow_consumer_bytes),
     .range = {4096, std::size_t(1) << 34},
     .help = "queued output at which a subscriber is closed with 1008; half of it drops "
             "priority 4, three quarters drops priority 3"},
    {.name = "read-pause-bytes", .type = option_type::bytes,
     .field = RINGCAST_FIELD(runtime.read_pause_bytes), .range = {4096, std::size_t(1) << 34},
     .help = "stop reading from a connection with this much output queued for it"},
    {.name = "output-budget-bytes", .type = option_type::bytes,
     .field = RINGCAST_FIELD(runtime.output_budget_bytes),
     .range = {65536, std::size_t(1) << 40},
     .help = "queued output per shard above which priorities 3-4 are dropped and the "
             "largest holders closed with 1008"},
    {.name = "inbound-budget-bytes", .type = option_type::bytes,
     .field = RINGCAST_FIELD(gateway.inbound_budget_bytes),
     .range = {65536, std::size_t(1) << 40},
     .help = "unfinished inbound messages per shard above which the largest holders are "
             "closed with 1009"},
    {.name = "history-budget-bytes", .type = option_type::bytes,
     .field = RINGCAST_FIELD(gateway.pubsub.history_budget_bytes),
     .range = {65536, std::size_t(1) << 40},
     .help = "retained messages per shard (--namespace NS:history=N), frames included; past "
             "it the shard's oldest are dropped first"},
    {.name = "offline-messages", .type = option_type::integer,
     .field = RINGCAST_FIELD(gateway.pubsub.offline_messages), .range = {0, 100000},
     .help = "messages to user:<id> kept per user while the user has no connection and "
             "delivered when one comes; 0 = off"},
    {.name = "offline-ttl-s", .type = option_type::integer,
     .field = RINGCAST_FIELD(gateway.pubsub.offline_ttl_s), .range = {1, 31536000},
     .help = "seconds an offline message is kept"},
    {.name = "ack-timeout-ms", .type = option_type::milliseconds,
     .field = RINGCAST_FIELD(gateway.pubsub.ack_timeout_ms), .range = {10, max_timeout_ms},
     .help = "a message that needs an ack (namespaces marked ack, priority 1 to user:) and "
             "has none this long after it was sent is sent again on its connection, once"},
    // presence
    {.name = "presence-max-members", .type = option_type::integer,
     .field = RINGCAST_FIELD(gateway.pubsub.max_presence_members), .range = {0, 100000},
     .help = "users in a presence channel (--namespace NS:presence) up to which joins and "
             "leaves are sent and the members listed; past it, counts only"},
    {.name = "max-idle-channels", .type = option_type::integer,
     .field = RINGCAST_FIELD(gateway.pubsub.max_idle_channels), .range = {1, 1u << 26},
     .help = "channels without subscribers whose offset a shard keeps; older ones restart "
             "under a new epoch"},
    {.name = "backend-command-rate", .type = option_type::integer,
     .field = RINGCAST_FIELD(gateway.pubsub.backend_command_rate), .range = {1, 10000000},
     .help = "commands per second of a backend session, a /ws connection carrying the API "
             "key"},
    {.name = "backend-command-burst", .type = option_type::integer,
     .field = RINGCAST_FIELD(gateway.pubsub.backend_command_burst), .range = {1, 1000000},
     .help = "commands a backend session may send at once above --backend-command-rate"},
    {.name = "max-connections-per-user", .type = option_type::integer,
     .field = RINGCAST_FIELD(gateway.max_connections_per_user), .range = {0, 1u << 20},
     .help = "WebSocket connections one user (the token's sub, or ?user= with --insecure) "
             "may hold on this node, all shards together; the next handshake gets 429; 0 = "
             "off"},
    {.name = "max-connections-per-ip", .type = option_type::integer,
     .field = RINGCAST_FIELD(runtime.per_address.max_connections), .range = {0, 1u << 30},
     .help = "connections at once from one address (IPv6: one /64); each shard allows "
             "ceil(N / shards); 0 = off; behind a proxy every client has the proxy's "
             "address, unless the proxy is in --proxy-protocol-from"},
    {.name = "connect-rate-per-ip", .type = option_type::integer,
     .field = RINGCAST_FIELD(runtime.per_address.connect_rate), .range = {0, 1000000},
     .help = "new connections per second from one address once its burst is spent; 0 = "
             "off; divided over the shards like --max-connections-per-ip"},
    {.name = "connect-burst-per-ip", .type = option_type::integer,
     .field = RINGCAST_FIELD(runtime.per_address.connect_burst), .range = {1, 1u << 30},
     .help = "new connections from one address at once before --connect-rate-per-ip "
             "applies; divided over the shards the same way"},
    {.name = "proxy-protocol-from", .type = option_type::network_list,
     .field = RINGCAST_FIELD(runtime.proxy_from),
     .when_unset = "none",
     .help = "trusted proxies (e.g. 10.0.0.0/8,2001:db8::/32): a connection from one of "
             "these networks must begin with a PROXY protocol v1 or v2 header, and the "
             "client address it carries is the connection's address for the per-address "
             "limits, logs and the API's loopback check; each use adds to the list"},
    {.name = "api-key-file", .type = option_type::path, .field = RINGCAST_FIELD(api_key_file),
     .check = check_key_file, .when_unset = "the key from RINGCAST_API_KEY, if set",
     .help = "backend API keys: a file of NAME:SCOPE[,SCOPE]:SECRET lines (scopes publish, "
             "admin), or one SECRET line (every scope); or set RINGCAST_API_KEY the same way. "
             "Requests then need \"Authorization: Bearer SECRET\". Without a key the API "
             "answers only loopback peers (127.0.0.0/8, ::1)"},
    {.name = "api-listen", .type = option_type::address, .field = RINGCAST_FIELD(api_listen),
     .when_unset = "on --listen",
     .help = "serve the backend API here instead of on --listen"},
    {.name = "metrics-listen", .type = option_type::address,
     .field = RINGCAST_FIELD(metrics_listen), .when_unset = "/metrics on the API's listener",
     .help = "serve GET /metrics (Prometheus), /healthz and /readyz here, and nothing "
             "else; /metrics keeps the API's access rule (an admin-scope API key, or loopback "
             "peers when no key is set)"},
    {.name = "log-level", .type = option_type::text, .field = RINGCAST_FIELD(log_level),
     .check = check_log_level,
     .help = "the least severe lines written to stderr: error, warn, info or debug; a "
             "reload (SIGHUP) changes it live",
     .metavar = "LEVEL"},
    {.name = "log-format", .type = option_type::text, .field = RINGCAST_FIELD(log_format),
     .check = check_log_format,
     .help = "how stderr lines are written: text (the human lines), json (one object per "
             "line) or logfmt (key=value); the start-up lines on stdout stay text",
     .metavar = "FORMAT"},
    {.name = "access-log", .type = option_type::toggle, .field = RINGCAST_FIELD(access_log),
     .help = "one line per WebSocket handshake: peer, path without its query, status, user, "
             "duration; refusals are limited like other lines; a reload changes it live"},
    {.name = "engine", .type = option_type::text, .field = RINGCAST_FIELD(engine),
     .check = check_engine,
     .help = "where channels are ordered: embedded (this node alone) or redis (every node "
             "sharing one Redis: publishes, history and recovery span the nodes; "
             "docs/scaling.md)",
     .metavar = "ENGINE"},
    {.name = "redis-url", .type = option_type::text, .field = RINGCAST_FIELD(redis_url),
     .check = check_redis_url,
     .help = "the Redis of --engine redis: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]; the "
             "host is resolved at start",
     .metavar = "URL"},
    {.name = "redis-prefix", .type = option_type::text, .field = RINGCAST_FIELD(redis_prefix),
     .check = check_redis_prefix,
     .help = "what every Redis key and channel of ringcast starts with (PREFIX:), so nodes "
             "of one cluster share it and other clusters on the same Redis do not",
     .metavar = "PREFIX"},
    {.name = "queue-bridge", .type = option_type::entry_list,
     .field = RINGCAST_FIELD(queue_bridges), .check = check_queue_bridge, .when_unset = "none",
     .help = "publish the events of a BullMQ queue, read from its events stream on "
             "--redis-url: QUEUE's EVENT (progress, completed, failed, …, or * for every "
             "one) to the channel CHANNEL makes of {queue}, {event} and {jobId}, e.g. "
             "reports:progress:job:{jobId}; acknowledged once published; repeat for each "
             "rule (docs/bridges.md)",
     .metavar = "QUEUE:EVENT:CHANNEL"},
    {.name = "queue-bridge-prefix", .type = option_type::text,
     .field = RINGCAST_FIELD(queue_bridge_prefix), .check = check_queue_bridge_prefix,
     .help = "BullMQ's key prefix (its prefix option): queue Q's events are the stream "
             "PREFIX:Q:events",
     .metavar = "PREFIX"},
    {.name = "amqp-url", .type = option_type::text, .field = RINGCAST_FIELD(amqp_url),
     .check = check_amqp_url,
     .help = "the RabbitMQ of --amqp-bridge: amqp://[USER[:PASSWORD]@]HOST[:PORT][/VHOST] "
             "(guest:guest and vhost / when left out; %2f for a / in the vhost); the host "
             "is resolved at start",
     .metavar = "URL"},
    {.name = "amqp-bridge", .type = option_type::entry_list,
     .field = RINGCAST_FIELD(amqp_bridges), .check = check_amqp_bridge, .when_unset = "none",
     .help = "publish RabbitMQ messages: those the topic exchange EXCHANGE routes with a key "
             "KEY matches (* one word, # any) go to the channel CHANNEL makes of "
             "{routingKey}, {exchange} and the JSON body's top-level fields ({userId}), e.g. "
             "quota:quota.*:user:{userId}; acknowledged once published, unmappable ones "
             "dead-lettered; repeat for each rule (docs/bridges.md)",
     .metavar = "EXCHANGE:KEY:CHANNEL"},
    {.name = "amqp-prefetch", .type = option_type::integer,
     .field = RINGCAST_FIELD(amqp_prefetch), .range = {1, 65535},
     .help = "RabbitMQ messages the bridge holds unacknowledged at most (basic.qos): its "
             "work in flight"},
    {.name = "amqp-queue-prefix", .type = option_type::text,
     .field = RINGCAST_FIELD(amqp_queue_prefix), .check = check_amqp_queue_prefix,
     .help = "names of what the RabbitMQ bridge declares: its queue PREFIX.bridge, the "
             "dead-letter exchange PREFIX.dlx and queue PREFIX.dead; nodes sharing it share "
             "the messages",
     .metavar = "PREFIX"},
    {.name = "config", .type = option_type::path, .field = RINGCAST_FIELD(config_file),
     .check = check_config_file, .when_unset = "none: flags, RINGCAST_* variables, defaults",
     .help = "a TOML file of settings (keys are these options' names; namespaces as "
             "[namespace.NAME] tables); flags and RINGCAST_<OPTION> variables win over it",
     .scope = option_scope::source},
    {.name = "check-config", .type = option_type::toggle, .field = RINGCAST_FIELD(check_only),
     .help = "validate the options, print the value of each, and exit",
     .scope = option_scope::command},
    {.name = "print-config", .type = option_type::toggle, .field = RINGCAST_FIELD(print_only),
     .help = "print the effective configuration as a config file, each value's source "
             "noted, and exit",
     .scope = option_scope::command},
    {.name = "version", .type = option_type::toggle, .field = RINGCAST_FIELD(show_version),
     .help = "print the version and exit", .scope = option_scope::command},
    {.name = "help", .type = option_type::toggle, .field = RINGCAST_FIELD(show_help),
     .help = "print this help and exit", .scope = option_scope::command, .alias = "-h"},
};
// clang-format on

#undef RINGCAST_FIELD

// --- what the compiler checks of every row ---------------------------------------------

template <typename T> constexpr bool holds(const option& opt) noexcept {
    return std::holds_alternative<field_of<T>>(opt.field);
}

constexpr bool is_number(option_type type) noexcept {
    switch (type) {
    case option_type::integer:
    case option_type::bytes:
    case option_type::milliseconds:
    case option_type::microseconds:
        return true;
    case option_type::address:
    case option_type::path:
    case option_type::name_list:
    case option_type::network_list:
    case option_type::text:
    case option_type::entry_list:
    case option_type::toggle:
        return false;
    }
    return false;
}

/// The field types each option_type can read a value into.
constexpr bool field_fits_type(const option& opt) noexcept {
    switch (opt.type) {
    case option_type::integer:
    case option_type::milliseconds:
    case option_type::microseconds:
        return holds<uint32_t>(opt) || holds<std::size_t>(opt);
    case option_type::bytes:
        return holds<std::size_t>(opt);
    case option_type::address:
        return holds<net::endpoint>(opt) || holds<std::optional<net::endpoint>>(opt);
    case option_type::path:
        return holds<std::string>(opt);
    case option_type::name_list:
    case option_type::entry_list:
        return holds<std::vector<std::string>>(opt);
    case option_type::network_list:
        return holds<std::vector<address_prefix>>(opt);
    case option_type::text:
        return holds<std::string>(opt);
    case option_type::toggle:
        return holds<bool>(opt);
    }
    return false;
}

/// The unit in the name matches the type, both ways: "-bytes" is a bytes option, and so on.
constexpr bool unit_in_name(const option& opt) noexcept {
    const bool bytes = opt.name.ends_with("-bytes");
    const bool ms = opt.name.ends_with("-ms");
    const bool us = opt.name.ends_with("-us");
    return bytes == (opt.type == option_type::bytes) &&
           ms == (opt.type == option_type::milliseconds) &&
           us == (opt.type == option_type::microseconds);
}

constexpr bool well_formed_name(std::string_view name) noexcept {
    if (name.empty() || name.front() == '-' || name.back() == '-' ||
        name.find("--") != std::string_view::npos) {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
    });
}

constexpr bool row_is_consistent(const option& opt) noexcept {
    const uint64_t field_max = holds<uint32_t>(opt) ? std::numeric_limits<uint32_t>::max()
                                                    : std::numeric_limits<std::size_t>::max();
    const bool range_ok = is_number(opt.type)
                              ? opt.range.min <= opt.range.max && opt.range.max <= field_max
                              : opt.range.min == 0 && opt.range.max == 0;
    const bool check_ok = opt.check == nullptr || opt.type == option_type::path ||
                          opt.type == option_type::name_list || opt.type == option_type::text ||
                          opt.type == option_type::entry_list;
    // A command is something ringcastd does instead of serving: only a switch makes sense.
    // A source names where settings are: a path.
    const bool scope_ok = opt.scope == option_scope::setting ||
                          (opt.scope == option_scope::command && opt.type == option_type::toggle) ||
                          (opt.scope == option_scope::source && opt.type == option_type::path);
    return well_formed_name(opt.name) && !opt.help.empty() && field_fits_type(opt) &&
           unit_in_name(opt) && range_ok && check_ok && scope_ok;
}

constexpr bool names_are_unique(std::span<const option> rows) noexcept {
    for (std::size_t i = 0; i < rows.size(); ++i) {
        for (std::size_t j = i + 1; j < rows.size(); ++j) {
            if (rows[i].name == rows[j].name ||
                (!rows[i].alias.empty() && rows[i].alias == rows[j].alias)) {
                return false;
            }
        }
    }
    return true;
}

static_assert(std::all_of(std::begin(table), std::end(table), row_is_consistent),
              "an option row's field, range, check, scope or name does not fit its type");
static_assert(names_are_unique(table), "two option rows share a name or an alias");

// --- reading and showing values ---------------------------------------------------------

/// The field `opt` names in `cfg`; T must be the row's field type (row_is_consistent).
template <typename T> T& field_in(config& cfg, const option& opt) noexcept {
    const auto* field = std::get_if<field_of<T>>(&opt.field);
    RINGCAST_ASSERT(field != nullptr);
    return (*field)(cfg);
}

// Rendering reads through the same accessors as setting; they take a config& because one
// function per field serves both, and nothing is written through this one.
template <typename T> const T& field_in(const config& cfg, const option& opt) noexcept {
    return field_in<T>(const_cast<config&>(cfg), opt);
}

template <typename T>
result<T, std::string> parse_number(std::string_view given_as, std::string_view text,
                                    value_range range) {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < range.min ||
        value > range.max) {
        return unexpected{std::string(given_as) + " = '" + std::string(text) +
                          "' is not a whole number from " + std::to_string(range.min) + " to " +
                          std::to_string(range.max)};
    }
    return value;
}

template <typename T>
result<void, std::string> set_number(config& cfg, const option& opt, std::string_view given_as,
                                     std::string_view text) {
    auto value = parse_number<T>(given_as, text, opt.range);
    if (!value) {
        return unexpected{value.error()};
    }
    field_in<T>(cfg, opt) = *value;
    return {};
}

result<void, std::string> set_address(config& cfg, const option& opt, std::string_view given_as,
                                      std::string_view text) {
    auto where = net::parse_endpoint(text);
    if (!where) {
        return unexpected{std::string(given_as) + ": " + where.error()};
    }
    if (holds<net::endpoint>(opt)) {
        field_in<net::endpoint>(cfg, opt) = std::move(*where);
    } else {
        field_in<std::optional<net::endpoint>>(cfg, opt) = std::move(*where);
    }
    return {};
}

/// "a,b,c" → a, b, c, each checked, added only when all pass. An empty value adds nothing;
/// so does a trailing comma, but an empty name between commas (",", "a,,b") is refused.
result<void, std::string> add_names(config& cfg, const option& opt, std::string_view given_as,
                                    std::string_view list) {
    std::vector<std::string> names;
    while (!list.empty()) {
        const auto comma = list.find(',');
        const std::string_view name = list.substr(0, comma);
        if (opt.check != nullptr) {
            if (auto ok = opt.check(given_as, name); !ok) {
                return ok;
            }
        }
        names.emplace_back(name);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
    auto& field = field_in<std::vector<std::string>>(cfg, opt);
    field.insert(field.end(), names.begin(), names.end());
    return {};
}

/// "10.0.0.0/8,::1" → each network, added only when all are valid. Unlike a name list an
/// empty value and empty items are refused: a trust list given empty is a mistake (an
/// unset variable), never a way to say "nobody".
result<void, std::string> add_networks(config& cfg, const option& opt, std::string_view given_as,
                                       std::string_view list) {
    std::vector<address_prefix> networks;
    do {
        const auto comma = list.find(',');
        auto network = parse_address_prefix(list.substr(0, comma));
        if (!network) {
            return unexpected{std::string(given_as) + ": " + network.error()};
        }
        networks.push_back(*network);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
        if (comma != std::string_view::npos && list.empty()) {
            return unexpected{std::string(given_as) + ": a trailing comma; list networks "
                                                      "as CIDR[,CIDR]"};
        }
    } while (!list.empty());
    auto& field = field_in<std::vector<address_prefix>>(cfg, opt);
    field.insert(field.end(), networks.begin(), networks.end());
    return {};
}

result<void, std::string> set_toggle(config& cfg, const option& opt, std::string_view given_as,
                                     std::string_view text) {
    constexpr std::string_view on[] = {"true", "yes", "on", "1"};
    constexpr std::string_view off[] = {"false", "no", "off", "0"};
    if (std::find(std::begin(on), std::end(on), text) != std::end(on)) {
        field_in<bool>(cfg, opt) = true;
    } else if (std::find(std::begin(off), std::end(off), text) != std::end(off)) {
        field_in<bool>(cfg, opt) = false;
    } else {
        return unexpected{std::string(given_as) + " = '" + std::string(text) +
                          "' is not a switch value: true or false (also yes/no, on/off, 1/0)"};
    }
    return {};
}

std::string render_endpoint(const net::endpoint& where) {
    const bool v6 = where.host.find(':') != std::string::npos;
    return (v6 ? "[" + where.host + "]" : where.host) + ":" + std::to_string(where.port);
}

std::optional<std::string> render_number(uint64_t value, value_range range) {
    if (value < range.min || value > range.max) {
        return std::nullopt;
    }
    return std::to_string(value);
}

} // namespace

std::span<const option> options() noexcept {
    return table;
}

const option* find_option(std::string_view name) noexcept {
    for (const option& opt : table) {
        if (opt.name == name) {
            return &opt;
        }
    }
    return nullptr;
}

std::string refusal(std::string_view name) {
    if (name == "api-key") {
        return "a key on the command line can be read by every local user (ps, "
               "/proc/PID/cmdline); put it in a file readable only by ringcastd and pass "
               "--api-key-file PATH, or set the environment variable " +
               std::string(api_key_env);
    }
    return {};
}

bool reloadable(const option& opt) noexcept {
    // What gateway::on_reload and engine::reload take (net.h reloaded_settings).
    static constexpr std::string_view live[] = {
        "allowed-origins",      "max-connections-per-user", "handshake-timeout-ms",
        "ping-interval-ms",     "pong-timeout-ms",          "idle-timeout-ms",
        "jwt-secret-file",      "jwt-public-key",           "jwks-file",
        "jwt-issuer",           "jwt-audience",             "jwt-leeway-s",
        "namespace",            "client-publish",           "max-channels",
        "command-rate",         "command-burst",            "backend-command-rate",
        "backend-command-burst", "slow-consumer-bytes",     "ack-timeout-ms",
        "presence-max-members", "offline-messages",         "offline-ttl-s",
        "api-key-file",         "drain-delay-ms",           "drain-seconds",
        "log-level",            "access-log",
    };
    return std::find(std::begin(live), std::end(live), opt.name) != std::end(live);
}

std::string flag_of(const option& opt) {
    return "--" + std::string(opt.name);
}

std::string_view config_key(const option& opt) noexcept {
    switch (opt.scope) {
    case option_scope::setting:
        return opt.name;
    case option_scope::source:
    case option_scope::command:
        return {};
    }
    return {};
}

std::string env_name(const option& opt) {
    switch (opt.scope) {
    case option_scope::setting:
        break;
    case option_scope::source:
    case option_scope::command:
        return {};
    }
    std::string name = "RINGCAST_";
    for (const char ch : opt.name) {
        name += ch == '-' ? '_' : static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch);
    }
    return name;
}

std::string_view value_name(const option& opt) noexcept {
    if (!opt.metavar.empty()) {
        return opt.metavar;
    }
    switch (opt.type) {
    case option_type::integer:
    case option_type::bytes:
    case option_type::milliseconds:
    case option_type::microseconds:
        return "N";
    case option_type::address:
        return "HOST:PORT";
    case option_type::path:
        return "PATH";
    case option_type::name_list:
        return "NS[,NS]";
    case option_type::network_list:
        return "CIDR[,CIDR]";
    case option_type::text:
        return "TEXT";
    case option_type::entry_list:
        return "ENTRY";
    case option_type::toggle:
        return {};
    }
    return {};
}

result<void, std::string> set_option(config& cfg, const option& opt, std::string_view given_as,
                                     std::string_view value) {
    switch (opt.type) {
    case option_type::integer:
    case option_type::bytes:
    case option_type::milliseconds:
    case option_type::microseconds:
        return holds<uint32_t>(opt) ? set_number<uint32_t>(cfg, opt, given_as, value)
                                    : set_number<std::size_t>(cfg, opt, given_as, value);
    case option_type::address:
        return set_address(cfg, opt, given_as, value);
    case option_type::path:
        if (opt.check != nullptr) {
            if (auto ok = opt.check(given_as, value); !ok) {
                return ok;
            }
        }
        field_in<std::string>(cfg, opt) = std::string(value);
        return {};
    case option_type::name_list:
        return add_names(cfg, opt, given_as, value);
    case option_type::network_list:
        return add_networks(cfg, opt, given_as, value);
    case option_type::text:
    case option_type::entry_list:
        if (value.empty()) {
            return unexpected{std::string(given_as) + ": empty value"};
        }
        if (opt.check != nullptr) {
            if (auto ok = opt.check(given_as, value); !ok) {
                return ok;
            }
        }
        if (opt.type == option_type::text) {
            field_in<std::string>(cfg, opt) = std::string(value);
        } else {
            field_in<std::vector<std::string>>(cfg, opt).emplace_back(value);
        }
        return {};
    case option_type::toggle:
        return set_toggle(cfg, opt, given_as, value);
    }
    return unexpected{std::string(given_as) + ": option of an unknown type"};
}

std::optional<std::string> render_value(const config& cfg, const option& opt) {
    switch (opt.type) {
    case option_type::integer:
    case option_type::bytes:
    case option_type::milliseconds:
    case option_type::microseconds:
        return holds<uint32_t>(opt) ? render_number(field_in<uint32_t>(cfg, opt), opt.range)
                                    : render_number(field_in<std::size_t>(cfg, opt), opt.range);
    case option_type::address:
        if (holds<net::endpoint>(opt)) {
            return render_endpoint(field_in<net::endpoint>(cfg, opt));
        } else if (const auto& where = field_in<std::optional<net::endpoint>>(cfg, opt)) {
            return render_endpoint(*where);
        }
        return std::nullopt;
    case option_type::path:
    case option_type::text: {
        const auto& text = field_in<std::string>(cfg, opt);
        return text.empty() ? std::nullopt : std::optional<std::string>(text);
    }
    case option_type::entry_list: {
        // One entry per use, as given; shown one after another separated by spaces (an
        // entry holds commas, never a space).
        const auto& entries = field_in<std::vector<std::string>>(cfg, opt);
        if (entries.empty()) {
            return std::nullopt;
        }
        std::string text;
        for (const auto& entry : entries) {
            text += (text.empty() ? "" : " ") + entry;
        }
        return text;
    }
    case option_type::name_list: {
        const auto& names = field_in<std::vector<std::string>>(cfg, opt);
        if (names.empty()) {
            return std::nullopt;
        }
        std::string text;
        for (const auto& name : names) {
            text += (text.empty() ? "" : ",") + name;
        }
        return text;
    }
    case option_type::network_list: {
        const auto& networks = field_in<std::vector<address_prefix>>(cfg, opt);
        if (networks.empty()) {
            return std::nullopt;
        }
        std::string text;
        for (const auto& network : networks) {
            text += (text.empty() ? "" : ",") + network.text();
        }
        return text;
    }
    case option_type::toggle:
        return field_in<bool>(cfg, opt) ? "true" : "false";
    }
    return std::nullopt;
}

} // namespace ringcast::app
