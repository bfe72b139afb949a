// Private to src/net: the gateway's per-connection state and the handler class.
//
// The gateway is the shard's core::conn_handler: it owns each connection's protocol state
// (`connection`) and moves it between phases. It routes nothing itself: a complete HTTP
// request is looked up in the route table (routes.h) and handed to that row's handler with
// a request_context; frames of an upgraded connection reach the frame handlers with a
// frame_context. Nothing about the request or connection being served is kept in members
// between calls: every handler is given what it acts on.
#pragma once

#include "routes.h"
#include "socketio_session.h"
#include "user_slots.h"

#include <ringcast/net.h>

#include <array>
#include <memory>
#include <optional>

namespace ringcast::net {

enum class phase : uint8_t {
    /// From a --proxy-protocol-from address: reading its PROXY header (proxy_header.h)
    /// before anything else; the handshake timeout armed at accept bounds it too.
    proxy_header,
    http,      ///< reading an HTTP request (handshake timeout armed)
    /// A /ws handshake that passed every check but its user's connection slot, waiting for
    /// the user's home shard to answer (user_slots.h); its 101 is ready in
    /// connection::pending. The handshake timeout is re-armed while it waits.
    user_slot,
    websocket, ///< upgraded: frames in, frames out (ping/idle timers armed)
    closed,    ///< we asked the shard to close; input is ignored
    /// Not a client: a connection this shard opened for a client of its own (a broker
    /// link, core::outbound_client), whose events go to connection::client.
    outbound,
};

/// Which WebSocket route a connection upgraded on: where its data messages go.
enum class ws_endpoint : uint8_t {
    pubsub, ///< docs/protocol.md commands to the pubsub engine; connection::session is set
    echo,   ///< --echo: every message is sent back as it came
    /// /socket.io/: Engine.IO / Socket.IO packets (docs/socketio.md); connection::sio is
    /// set, and connection::session once the client's first CONNECT is accepted.
    socketio,
};

/// What a pubsub upgrade needs once the request is gone: made by serve_pubsub() when every
/// check passed, used at once or kept while the user's home shard decides (phase::user_slot).
struct pubsub_start {
    std::string response;              ///< the 101 for the request
    std::optional<auth::identity> who; ///< the token's identity (JWT on; not a backend)
    std::string user_id;               ///< --insecure: ?user= (may be empty)
    bool backend = false;              ///< the bearer is an API key with the publish scope
    /// May subscribe to sys: channels without a token (sys_access_of).
    pubsub::sys_access sys = pubsub::sys_access::no;
    /// permessage-deflate as negotiated (negotiate_deflate); none: uncompressed.
    std::optional<ws::deflate_agreement> deflate;
};

/// One connection's protocol state; allocated at accept, freed in on_closed().
struct connection {
    /// Present only while reading HTTP: an upgraded connection keeps no HTTP buffer.
    std::unique_ptr<http::request_parser> http;
    /// Present on /ws connections: the pubsub side (subscriptions, user, rate bucket).
    std::unique_ptr<pubsub::session> session;
    /// Present on /socket.io/ connections: the Socket.IO side (socketio_session.h).
    std::unique_ptr<sio_connection> sio;
    /// Bytes that arrived while an API response was pending (pipelining), replayed after;
    /// in phase::user_slot, the client's first frames (sent before its 101 came).
    std::string stash;
    /// phase::user_slot only: the upgrade waiting for its slot.
    std::unique_ptr<pubsub_start> pending;
    /// phase::proxy_header: the header's bytes so far, when it came in more than one read
    /// (at most proxy_header_max_bytes); released once it is complete.
    std::string proxy_bytes;
    ws::frame_parser ws;
    /// permessage-deflate with a client that keeps its context between messages: its own
    /// inflater, made at its first compressed message (a subscriber that never publishes
    /// never has one). Null otherwise: the shard's shared inflater serves it.
    std::unique_ptr<ws::inflater> inflate;
    /// Budget this connection reserved at its upgrade for `inflate` (gateway::_deflate_reserved).
    std::size_t deflate_reserved = 0;
    uint64_t last_rx_ms = 0;   ///< last inbound bytes (any), the liveness clock
    uint64_t opened_ms = 0;    ///< accepted at: the access log's duration starts here
    uint64_t ping_sent_ms = 0; ///< when the outstanding ping left; 0: none outstanding
    phase state = phase::http;
    /// Set at the upgrade; meaningful in phase::websocket only.
    ws_endpoint endpoint = ws_endpoint::echo;
    /// permessage-deflate was negotiated: its messages may come compressed (RSV1).
    bool deflate = false;
    /// ... and the client keeps its context: `inflate` is (or will be) its own. Its window:
    uint8_t deflate_client_window_bits = 15;
    bool deflate_takeover = false;
    /// An /api/ request is waiting for other shards; nothing else may be answered first.
    bool awaiting = false;
    /// A response went out and the connection stayed open: it is a keep-alive connection.
    bool kept_alive = false;
    /// The connection holds one of its user's --max-connections-per-user slots (its session
    /// names the user): on_closed() gives it back to the user's home shard.
    bool holds_user_slot = false;
    /// No bytes have come from the peer yet (on_data clears it): where a PROXY header from
    /// an address not trusted to send one is recognised.
    bool first_read = true;
    /// The socket that accepted it: with --api-listen, the API listener serves /api/ and
    /// /healthz only; with --metrics-listen, that one /metrics and /healthz (the route
    /// table's listeners column).
    core::listener listener = core::listener::main;
    /// What the connection may do (the route table's restricted column): a restricted one,
    /// accepted beyond the connection cap, gets one answer and is closed.
    core::admission admission = core::admission::full;
    /// phase::outbound: who hears its events.
    core::outbound_client* client = nullptr;
    /// What the pending /api/ answer may promise, and whether it loses its body (HEAD).
    http::keep_alive awaiting_ka = http::keep_alive::yes;
    head_only awaiting_head = head_only::no;
    /// An Engine.IO long-polling request waiting for its answer from the session's owner
    /// (socketio_session.h): which one (sio_msg::seq); 0 for none.
    uint32_t sio_poll_seq = 0;
    /// What the parsers held at the last count (the shard's inbound budget), and this
    /// connection's place in gateway::_holders while that is not zero.
    std::size_t held_in = 0;
    uint32_t holder_index = 0;
};

/// What a frame handler is given: the upgraded connection the frame arrived on. Valid for
/// one gateway::read_frames() call.
struct frame_context {
    conn_handle h;
    connection& conn;
};

/// The page served at "/": a live channel a person can watch and publish to.
std::string_view demo_page() noexcept;
/// The page served at "/socketio": an unchanged Socket.IO front end (docs/socketio.md).
std::string_view socketio_demo_page() noexcept;
/// The page served at "/dashboard" (src/net/dashboard/, embedded at build time by
/// embed_dashboard.py into dashboard_page.cc): the server's figures, live from sys:stats.
std::string_view dashboard_page() noexcept;
/// Its response headers, each line ending in CRLF: a Content-Security-Policy that allows
/// only the page's own inline script and style (by their SHA-256) and WebSockets to its own
/// origin, and the usual no-sniff, no-framing, no-referrer companions.
std::string_view dashboard_headers() noexcept;

/// One per shard, created by make_gateway() and called only from that shard's loop. Not
/// copyable: the route table views its own _config.
class gateway final : public core::conn_handler,
                      private admin::responder,
                      private core::outbound_connector,
                      private pubsub::user_count_events,
                      private pubsub::reply_sink {
public:
    gateway(core::conn_io& io, const gateway_config& config);
    gateway(const gateway&) = delete;
    gateway& operator=(const gateway&) = delete;

    void* on_open(conn_handle h, core::listener from, core::admission mode) noexcept override;
    void on_data(conn_handle h, void* user, std::span<std::byte> bytes) noexcept override;
    void on_timer(conn_handle h, void* user, core::conn_timer which) noexcept override;
    /// The shard timer belongs to the API (sys:stats snapshots, admin::api::on_timer).
    void on_shard_timer() noexcept override;
    void on_shutdown(conn_handle h, void* user) noexcept override;
    bool on_drain(conn_handle h, void* user) noexcept override;
    void on_output_budget(conn_handle h, void* user) noexcept override;
    /// Outbound connections only (connect()): to their client.
    void on_connect_result(conn_handle h, void* user, std::error_code error) noexcept override;
    void on_closed(conn_handle h, void* user) noexcept override;
    void on_reload(const std::shared_ptr<const core::reload_payload>& settings) noexcept override;

    /// --max-connections-per-user between shards (user_slots.h), registered with the shard
    /// in the constructor: a claim answered here as the user's home, the home's answer to a
    /// handshake waiting here (phase::user_slot), a slot given back to this home.
    void on_mesh(kinds::user_claim, shard_id from, std::unique_ptr<user_slot_msg> m) noexcept;
    void on_mesh(kinds::user_answer, shard_id from, std::unique_ptr<user_slot_msg> m) noexcept;
    void on_mesh(kinds::user_release, shard_id from, std::unique_ptr<user_slot_msg> m) noexcept;
    /// Engine.IO long-polling between a request's shard and its session's owner
    /// (socketio_session.h): requests and the upgrade's probe and take to the owner,
    /// answers and the taken packets back.
    void on_mesh(kinds::sio_to_owner, shard_id from, std::unique_ptr<sio_msg> m) noexcept;
    void on_mesh(kinds::sio_to_asker, shard_id from, std::unique_ptr<sio_msg> m) noexcept;

private:
    friend std::vector<route> make_routes(const gateway_config& config);

    // --- route handlers (handlers.cc): one per row of make_routes(), each a route_handler
    // (routes.h: called only for a request the lookup let through, answers exactly once).

    /// /api/...: hands the request to admin::api. Its answer is sent now, or the connection
    /// waits (`awaiting`, pipelined bytes stashed) until respond() brings it. Keeps the
    /// connection for the next request when ctx.ka allows.
    void serve_api(const request_context& ctx) noexcept;
    /// The pubsub WebSocket path: with --insecure, 400 for an invalid ?user=; then the
    /// handshake check (its status on failure) and the Origin (403); then, with JWT keys,
    /// the token (authenticate: 401 with the reason, counted by class, unless the bearer is
    /// an API key with the publish scope); then 101, a pubsub session (a backend one when
    /// the API key comes as a bearer token; an authenticated one with the token's identity)
    /// and ctx.rest fed as the first frames. Every refusal closes the connection.
    void serve_pubsub(const request_context& ctx) noexcept;
    /// A pubsub upgrade that passed its checks: with a user id (the token's sub, or ?user=
    /// under --insecure) and --max-connections-per-user on, the user's home shard must
    /// grant a slot first — decided here when the home is this shard, else the connection
    /// waits in phase::user_slot with `rest` stashed. 429 when the user holds them all.
    void admit_pubsub(const request_context& ctx, pubsub_start start) noexcept;
    /// Sends start.response, opens the pubsub session and feeds `early` (frames the client
    /// sent before its 101) as the first frames.
    void open_pubsub(conn_handle h, connection& c, pubsub_start start,
                     std::span<std::byte> early) noexcept;
    /// 429 "too many connections for this user", counted; closes.
    void refuse_user_limit(conn_handle h, connection& c) noexcept;
    /// 503 "server draining" with Retry-After: 1 to an upgrade while the process drains
    /// (core::drain_phase::closing); closes.
    void refuse_draining(conn_handle h, connection& c) noexcept;
    /// A slot of `user` is free again: given back here or posted to its home.
    void release_user_slot(std::string_view user) noexcept;
    /// On the user's home: takes a slot of m->user for a handshake on shard `from` (this
    /// one included) if the user holds fewer than the limit here; with an engine, then
    /// asks it whether every node's count allows it (on_user_claimed). Answered through
    /// answer_claim.
    void claim_at_home(shard_id from, std::unique_ptr<user_slot_msg> m) noexcept;
    /// The home's answer to the shard that asked: posted, or finish_claim when it is this.
    void answer_claim(shard_id to, std::unique_ptr<user_slot_msg> m) noexcept;
    /// On the handshake's shard: the user's home answered m: upgrade, 429, or (closed or
    /// draining meanwhile) the slot goes back.
    void finish_claim(std::unique_ptr<user_slot_msg> m) noexcept;
    /// On the user's home: one slot of `user` given back (and the engine's count with it).
    void give_back_here(std::string_view user) noexcept;
    // pubsub::user_count_events (the engine's answers, on the home shard)
    void on_user_claimed(uint64_t token, bool granted) noexcept override;
    void on_user_counts_lost() noexcept override;
    /// The identity of ctx.req's token (presented_token), or the reason it is refused:
    /// verify()'s, "token required", "sub is not a valid user id". Counts a refusal.
    result<auth::identity, std::string_view> authenticate(const http::request& req) noexcept;
    /// The identity `token` proves, or the reason it is refused, counted as authenticate's.
    result<auth::identity, std::string_view> verify_token(std::string_view token) noexcept;

    // --- Socket.IO on /socket.io/ (socketio_endpoint.cc, docs/socketio.md).

    /// /socket.io/: 400 unless EIO=4 and transport=websocket without a sid (the polling
    /// transport is not served yet: the reason says to use transports: ["websocket"]); with
    /// --insecure, 400 for an invalid ?user=; the handshake check; the Origin (403); then
    /// 101 and the Engine.IO open packet. No token here: it comes in each CONNECT.
    void serve_socketio(const request_context& ctx) noexcept;
    /// ?transport=polling: OPTIONS (CORS preflight) 204; without a sid a GET is the
    /// handshake (a session on this shard, 503 past sio_max_polling_sessions); with one, a
    /// GET or POST goes to the sid's owner and the connection waits for its answer (a GET
    /// is held until the upgrade's probe or for the handshake timeout at most, then "6").
    void serve_polling(const request_context& ctx, std::string_view sid) noexcept;
    /// To the owner's handler (called here when it is this shard) / to the asking shard's.
    void to_owner(shard_id owner, std::unique_ptr<sio_msg> m) noexcept;
    void to_asker(shard_id asker, std::unique_ptr<sio_msg> m) noexcept;
    /// On the owner: answers m (post, get) with `status` and `body` on the asking shard.
    void answer_poll(shard_id asker, const sio_msg& m, int status, std::string body) noexcept;
    /// On the owner: forgets the polling sessions past their expiry (at most once a second)
    /// and the parked sessions past theirs.
    void sweep_polling() noexcept;
    /// The connection closed: each namespace with a pid is parked for recovery.
    void park_socketio(connection& c) noexcept;
    /// On the pid's owner: the parked namespace's rooms and where the client stood on each.
    void restore_parked(shard_id asker, sio_msg& m) noexcept;
    /// On the CONNECT's shard: the owner answered; each room is resubscribed (with recover
    /// from its position when known) and the CONNECT answered once all replied.
    void sio_restored(conn_handle h, connection& c, sio_msg& m) noexcept;
    /// The CONNECT reply of `nsp` with its pid (and "recovered" by keeping the old one).
    void sio_connected(conn_handle h, connection& c, std::string_view nsp, std::string pid) noexcept;
    /// On the WebSocket's shard: the owner handed the session's packets over: they are
    /// replayed, then the messages that came meanwhile.
    void sio_taken(conn_handle h, connection& c, sio_msg& m) noexcept;
    /// An upgrade from polling, before the owner handed the session over: "2probe",
    /// then "5" (anything else closes), then messages kept until sio_taken.
    void sio_upgrading(const frame_context& f, ws::opcode type, std::string_view bytes) noexcept;
    /// One Engine.IO message: pong, close, or a Socket.IO packet (through the connection's
    /// decoder). Anything else, or a packet that does not decode, closes with its reason.
    void socketio_message(const frame_context& f, ws::opcode type,
                          std::span<const std::byte> payload) noexcept;
    void sio_packet(const frame_context& f, const socketio::sio_packet& p) noexcept;
    /// CONNECT: the namespace must be "/" or configured ("Invalid namespace"); with JWT
    /// keys the payload's token must verify (and name the user of the connection's first
    /// namespace); the first accepted one opens the pubsub session. Refusals are
    /// CONNECT_ERROR; the connection stays.
    void sio_connect(const frame_context& f, const socketio::sio_packet& p) noexcept;
    /// EVENT on a connected namespace: the join / leave events subscribe and unsubscribe
    /// the room's channel; any other is a publish of (room, data) to the room's channel.
    void sio_event(const frame_context& f, const socketio::sio_packet& p) noexcept;
    /// Hands `command` (docs/protocol.md JSON, its "id" being `id`) to the engine, the reply
    /// to go to (nsp, ack_id).
    void sio_command(const frame_context& f, uint64_t id, std::string_view nsp,
                     std::optional<uint64_t> ack_id, std::string_view command,
                     sio_connection::purpose why = sio_connection::purpose::other,
                     std::string_view channel = {}) noexcept;
    /// Refuses an EVENT that asked for an ACK with `{"ok":false,"error":{code,message}}`
    /// (no ACK asked: emitted as "ringcast:error").
    void sio_refuse(const frame_context& f, std::string_view nsp, std::optional<uint64_t> ack_id,
                    int code, std::string_view message) noexcept;
    /// One Socket.IO packet text as an Engine.IO message ("4" + text) in a text frame.
    void send_sio(conn_handle h, std::string_view packet) noexcept;
    /// pubsub::reply_sink: a reply of a command sio_command handed over, as the ACK it
    /// answers, or an event.
    void on_reply(conn_handle h, std::string_view text) noexcept override;
    /// The liveness timer of a Socket.IO connection: the heartbeat and the CONNECT deadline.
    void socketio_liveness(conn_handle h, connection& c) noexcept;
    void arm_socketio_timer(conn_handle h, const connection& c) noexcept;

    /// --echo PATH: the handshake check (its status on failure, closing), then 101 and
    /// ctx.rest fed as the first frames; messages come back unchanged.
    void serve_echo(const request_context& ctx) noexcept;
    /// /healthz: 200 {"status":"ok"} (application/json).
    void serve_healthz(const request_context& ctx) noexcept;
    void serve_readyz(const request_context& ctx) noexcept;
    /// "/": 200, the demo page (text/html).
    void serve_demo(const request_context& ctx) noexcept;
    /// "/socketio": 200, the Socket.IO demo page (text/html), a page written for any
    /// Socket.IO server: it loads /socket.io/socket.io.js and calls io().
    void serve_socketio_demo(const request_context& ctx) noexcept;
    /// /socket.io/socket.io.js and .min.js (with --socketio-client-js): the bundle, cached
    /// by the browser for an hour.
    void serve_socketio_client(const request_context& ctx) noexcept;
    /// "/dashboard": 200, the live dashboard (text/html) under its Content-Security-Policy.
    void serve_dashboard(const request_context& ctx) noexcept;
    /// Whether a /ws session without a token may read sys: channels (docs/security.md "The
    /// dashboard and sys:stats"): with an API key holding the admin scope (`key`), yes; on
    /// a server with neither JWT keys nor API keys, when the peer is on this host (the
    /// /api/ rule); otherwise no.
    pubsub::sys_access sys_access_of(conn_handle h, const admin::api_key* key) const noexcept;

    // --- WebSocket frames, with the connection they arrived on (gateway.cc).

    /// Adapts ws::frame_sink's events of one read to the frame handlers below.
    class frame_events;
    /// A complete data message: to the connection's endpoint (pubsub_message, echo_message).
    void on_message(const frame_context& f, ws::opcode type,
                    std::span<const std::byte> payload) noexcept;
    /// A compressed data message (permessage-deflate): inflated under --max-message-bytes
    /// (past it 1009; invalid deflate data 1007; invalid UTF-8 in text 1007), then as
    /// on_message.
    void on_compressed_message(const frame_context& f, ws::opcode type,
                               std::span<const std::byte> payload) noexcept;
    /// Text to the pubsub engine as a command; binary closes with 1003.
    void pubsub_message(const frame_context& f, ws::opcode type,
                        std::span<const std::byte> payload) noexcept;
    void echo_message(const frame_context& f, ws::opcode type,
                      std::span<const std::byte> payload) noexcept;
    void on_ping(const frame_context& f, std::span<const std::byte> payload) noexcept;
    void on_close(const frame_context& f, uint16_t code) noexcept;

    // core::outbound_connector: a connection of the broker's (phase::outbound).
    result<conn_handle> connect(const core::outbound_target& to,
                                core::outbound_client& client) noexcept override;

    // admin::responder: an API answer that waited for other shards.
    void respond(conn_handle h, std::string response) noexcept override;
    admin::edge_counters edge_stats() const noexcept override;
    ws::close_counts close_stats() const noexcept override;
    std::vector<admin::bridge_row> bridge_rows() const override;

    /// Counts what `c`'s parser holds now against the shard's inbound budget and, past the
    /// budget, closes the largest holders (1009).
    void account_inbound(conn_handle h, connection& c) noexcept;
    /// Heap held by `c`'s parsers for input not yet complete (HTTP request, WebSocket message).
    static std::size_t inbound_held(const connection& c) noexcept;
    void enforce_inbound_budget() noexcept;
    void forget_inbound(connection& c) noexcept;

    /// phase::proxy_header: gathers the header (parse_proxy_header), names the client to the
    /// shard (conn_io::admit_client) and hands the bytes after the header to read_http. A
    /// bad header closes the connection unanswered (counted).
    void read_proxy_header(conn_handle h, connection& c, std::span<std::byte> bytes) noexcept;
    /// A PROXY header ended badly (invalid, or not complete in time): counted, and the
    /// connection closed without an answer, as the protocol asks.
    void drop_proxy_connection(conn_handle h, connection& c, uint64_t& counter) noexcept;
    void read_http(conn_handle h, connection& c, std::span<std::byte> bytes) noexcept;
    /// Answers one complete request: looks it up in _routes and runs the row's handler, or
    /// sends the lookup's refusal. Returns true when the connection stays in HTTP (then the
    /// bytes after the request, `rest`, are the next request's).
    bool answer(conn_handle h, connection& c, const http::request& req,
                std::span<std::byte> rest) noexcept;
    /// Sends `response` (a 101) and moves the connection to phase::websocket, bound to
    /// `endpoint`; the HTTP parser goes, and with it any request it holds.
    void upgrade(conn_handle h, connection& c, std::string_view response,
                 ws_endpoint endpoint) noexcept;
    /// permessage-deflate for `req`'s offers (off with --permessage-deflate off): the
    /// agreement, or none when nothing was offered, nothing acceptable was, or the client
    /// keeps its context and its inflater would pass the shard's budget now (counted).
    /// Reserves nothing: start_deflate does, at the upgrade.
    std::optional<ws::deflate_agreement> negotiate_deflate(const http::request& req) noexcept;
    /// The 101 for `req` with the agreement's Sec-WebSocket-Extensions, if any.
    static std::string upgrade_response(const http::request& req,
                                        const std::optional<ws::deflate_agreement>& deflate);
    /// At the upgrade: the parser accepts RSV1, the connection knows how to inflate, and an
    /// agreement with context takeover reserves its budget on `c` (released in on_closed);
    /// counted as negotiated.
    void start_deflate(connection& c, const std::optional<ws::deflate_agreement>& deflate) noexcept;
    void read_frames(conn_handle h, connection& c, std::span<std::byte> bytes) noexcept;
    /// Sends `response` (headers only for head_only::yes); keep_alive::no closes after it,
    /// yes re-arms the keep-alive idle timer.
    void send_response(conn_handle h, connection& c, std::string response, http::keep_alive ka,
                       head_only head) noexcept;
    /// --access-log: one line for a WebSocket handshake answered with `status` (101 or a
    /// refusal) on `path` (the request's, never its query: tokens travel there), naming
    /// the peer (the PROXY header's client when there was one), the user when known, and
    /// the time since accept. Refusals are limited per shard like other lines; upgrades
    /// are all written (the per-address connect rate bounds them). A no-op when off.
    void log_handshake(conn_handle h, const connection& c, std::string_view path,
                       unsigned status) noexcept;
    /// send_response for a route handler's answer: ctx's keep-alive and HEAD.
    void reply(const request_context& ctx, std::string response) noexcept;
    void close_websocket(conn_handle h, connection& c, ws::close_code code,
                         std::string_view reason) noexcept;
    void arm_liveness_timer(conn_handle h, const connection& c) noexcept;

    core::conn_io& _io;
    gateway_config _config;
    /// make_routes(_config), built once; rows view _config's strings.
    std::vector<route> _routes;
    /// Inside api::handle(): a respond() now is synchronous and must not replay stashed
    /// requests (that would re-enter the API). A guard on the call stack, not request state
    /// (admin::responder::respond() is given only a handle).
    bool _in_api = false;
    /// The status of the last response sent (send_response, upgrade): what answer() reports
    /// to the access log once a handler has run. Not request state: read right after.
    unsigned _last_status = 0;
    /// Connections whose parser holds heap (held_in > 0), for the budget's eviction.
    std::vector<std::pair<conn_handle, connection*>> _holders;
    std::size_t _inbound_held = 0;
    uint64_t _inbound_budget_closes = 0;
    uint64_t _refused_origin = 0; ///< /ws upgrades refused 403: Origin not in --allowed-origins
    /// permessage-deflate: the heap of the connections' own inflaters (counted by zlib's
    /// allocator hooks), the budget they reserved, the inflater shared by every connection
    /// whose client resets its context, and the buffer a message is inflated into (freed
    /// when a large message left it large).
    ws::inflate_memory _inflate_memory;
    std::size_t _deflate_reserved = 0;
    std::unique_ptr<ws::inflater> _shared_inflater;
    std::vector<std::byte> _inflated;
    uint64_t _deflate_negotiated = 0;
    uint64_t _deflate_declined_budget = 0;
    uint64_t _compressed_messages_in = 0;
    uint64_t _compressed_bytes_in = 0;
    uint64_t _inflated_bytes_in = 0;
    uint64_t _deflate_bomb_closes = 0;
    uint64_t _deflate_invalid_closes = 0;
    uint64_t _deflate_rate_refused = 0; // compressed messages not inflated: bucket empty
    /// Engine.IO long-polling sessions owned here (socketio_session.h), by sid, and the
    /// numbering of this shard's waiting polling requests.
    std::unordered_map<std::string, sio_polling> _sio_polling;
    /// Disconnected Socket.IO namespaces kept for recovery, by pid, and how many were
    /// dropped for room (sio_max_parked) or restored.
    std::unordered_map<std::string, sio_parked> _sio_parked;
    std::size_t _sio_parked_rooms = 0; // rooms of _sio_parked, bounded by sio_max_parked_rooms
    uint64_t _sio_parked_dropped = 0;
    uint64_t _sio_restored = 0; // parked namespaces handed to a reconnect (on their shard)
    uint64_t _sio_connections = 0;
    uint64_t _sio_connects = 0;
    uint64_t _sio_connect_errors = 0;
    uint64_t _sio_polling_refused = 0;
    uint64_t _sio_recovered = 0;
    uint64_t _sio_not_recovered = 0;
    uint64_t _sio_swept_ms = 0;
    uint32_t _sio_poll_seq = 0;
    /// The users homed here and their connection slots (--max-connections-per-user), and
    /// the handshakes this shard refused 429 for a full user.
    user_slots _user_slots;
    uint64_t _refused_user_limit = 0;
    uint64_t _user_slot_early_closes = 0;
    /// Claims the engine is deciding (claim_at_home → on_user_claimed), by token. Bounded
    /// by the handshakes waiting in phase::user_slot on the node's shards.
    struct pending_claim {
        shard_id from;
        std::unique_ptr<user_slot_msg> msg;
    };
    std::unordered_map<uint64_t, pending_claim> _claims;
    uint64_t _claim_seq = 0;

    // PROXY protocol outcomes (admin::edge_counters).
    uint64_t _proxy_headers = 0;
    uint64_t _proxy_header_invalid = 0;
    uint64_t _proxy_header_timeouts = 0;
    uint64_t _proxy_header_untrusted = 0;
    /// Handshake tokens refused, by token_refusal; connections closed 4001 at expiry.
    std::array<uint64_t, token_refusal_classes> _refused_tokens{};
    uint64_t _token_expiry_closes = 0;
    uint64_t _reloads = 0;
    ws::close_counts _closes; // the closes this gateway began or saw the client begin
    /// This shard's verifier over _config.tokens.keys; null when authentication is off.
    /// Declared before _engine, which verifies refreshes with it.
    std::unique_ptr<auth::verifier> _verifier;
    /// The node-wide order with --engine redis (src/engine); null on the embedded engine.
    /// Before _engine, which hands it publishes.
    std::unique_ptr<pubsub::broker> _broker;
    pubsub::engine _engine;
    admin::api _api;
    /// The queue bridges this shard runs (--queue-bridge); null for none. After _engine,
    /// which it publishes through.
    std::unique_ptr<bridge::bridges> _bridges;
};

} // namespace ringcast::net
