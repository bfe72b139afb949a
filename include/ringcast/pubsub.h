// ringcast pubsub — channels, subscriptions, publishing and fan-out.
//
// This header has two parts:
//  1. The wire protocol (pure functions, no state): parsing client commands and backend
//     publish requests, validating names, writing the message envelope and replies. They
//     take bytes and return values, so unit tests, fuzzers and the server share them.
//  2. The runtime: one engine per shard, the facade over subscribing, ordering and
//     delivery (src/pubsub), which the gateway and the backend API drive.
//
// The protocol itself is specified in docs/protocol.md; the choices behind the runtime are
// in docs/decisions.md ("Pub/sub", "The engine split by concern").
#pragma once

#include <ringcast/auth.h>
#include <ringcast/core.h>
#include <ringcast/ws.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ringcast::pubsub {

// ---- 1. wire protocol ------------------------------------------------------------------

/// Delivery priority: 1 critical (never dropped silently), 2 high, 3 normal, 4 low.
enum class priority : uint8_t { critical = 1, high = 2, normal = 3, low = 4 };

/// Channel names: 1-255 bytes of [A-Za-z0-9_.:@*-].
bool valid_channel(std::string_view name) noexcept;
/// Event names: 1-255 printable ASCII bytes except '"' and '\'.
bool valid_event(std::string_view name) noexcept;
/// User ids: 1-64 bytes of [A-Za-z0-9_.@-].
bool valid_user_id(std::string_view id) noexcept;
/// The namespace of a channel: the part before the first ':' (empty when none).
std::string_view channel_namespace(std::string_view channel) noexcept;
/// Refresh tokens: 1-max_token_chars bytes of [A-Za-z0-9_.-] (a compact JWS); whether it
/// verifies is auth::verifier's to say.
inline constexpr std::size_t max_token_chars = 16384;
bool valid_token(std::string_view token) noexcept;

enum class command_op : uint8_t { subscribe, unsubscribe, publish, ping, refresh, ack, presence };

/// Where a recovering subscribe resumes (docs/protocol.md "Recovery"): after `offset` of
/// `epoch`, or (by_time) at the first retained message stamped at or after `since_ms`, the
/// form that works across nodes whose epochs differ.
struct recover_point {
    std::string_view epoch;
    uint64_t offset = 0;
    bool by_time = false;
    uint64_t since_ms = 0; ///< by_time: a Unix time in ms (an envelope's "timestamp")
};

/// One parsed client command. Views point into the text given to parse_command().
struct command {
    command_op op = command_op::ping;
    bool has_id = false;
    uint64_t id = 0;          ///< echoed in the reply when has_id
    std::string_view channel; ///< subscribe, unsubscribe, publish, ack, presence (valid_channel)
    std::string_view event;   ///< publish; "message" when absent (valid_event)
    std::string_view data;    ///< publish: raw JSON text of "data", validated; "null" when absent
    priority prio = priority::normal;
    bool has_recover = false;
    recover_point recover; ///< subscribe with "recover"
    std::string_view token; ///< refresh: the new token (valid_token)
    uint64_t offset = 0;    ///< ack: every message up to this offset is acknowledged
};

/// Why a command was refused; `code` per docs/protocol.md (400 ...), `message` static text.
struct command_error {
    int code = 400;
    std::string_view message;
    bool has_id = false; ///< the id could be read, so the reply can echo it
    uint64_t id = 0;
};

/// Parses one client text message (docs/protocol.md "Client → server"). Strict JSON
/// (RFC 8259, UTF-8): duplicate keys take the last value; unknown keys are ignored; `data`
/// is validated completely and kept byte for byte. Never throws; bounded work per byte.
result<command, command_error> parse_command(std::string_view text) noexcept;

/// A backend publish (POST /api/publish, /api/send, /api/broadcast items).
struct publish_request {
    std::string_view channel; ///< empty for /api/send and whole-server broadcasts
    std::string_view event = "message";
    std::string_view data = "null";
    priority prio = priority::normal;
    std::string_view user_id;               ///< "userId"; empty when absent
    std::vector<std::string_view> channels; ///< "channels" (broadcast to a list)
};

/// Why a POST body was refused: `code` 400 (500 when the server is out of memory) and a
/// sentence naming the field, e.g. "messages[3].channel is not a valid channel name".
struct publish_error {
    int code = 400;
    std::string message;
};

/// Which shape a POST body had: the reply has the same shape (docs/protocol.md "Backend API").
enum class body_shape : uint8_t {
    single, ///< one request object: answered {"ok":true,"offset":N}
    batch,  ///< {"messages":[...]}, even with one item: answered {"ok":true,"results":[...]}
};

/// A parsed POST body: its requests in order and the shape they came in.
struct publish_body {
    std::vector<publish_request> requests;
    body_shape shape = body_shape::single;
};

/// Parses a POST body: one request, or {"messages":[...]} into several. Views point into
/// `body`. The shape comes from the parsed top-level key, never from the text: a "messages"
/// string inside an event or data does not make a batch. The error's message says which
/// field is wrong (e.g. "messages[3].channel").
result<publish_body, publish_error> parse_publish_body(std::string_view body);

/// The fields of one envelope (docs/protocol.md "Server → client").
struct envelope {
    std::string_view message_id;
    std::string_view event;
    std::string_view channel;
    std::string_view data; ///< raw JSON, already validated
    priority prio = priority::normal;
    uint64_t timestamp_ms = 0;
    std::string_view user_id; ///< empty → "userId":null
    uint64_t offset = 0;
};

/// Exact byte length of write_envelope()'s output for `e`.
std::size_t envelope_size(const envelope& e) noexcept;
/// Writes `e` as one JSON object into `out` (exactly envelope_size(e) bytes) and returns
/// the bytes written. Names are already valid (no escaping needed), data is raw JSON.
std::size_t write_envelope(const envelope& e, std::span<char> out) noexcept;
/// Writes `e` without its data (envelope_size(e) - e.data.size() bytes, e.data not empty):
/// a frame can then splice one shared copy of a large payload in at
/// envelope_data_offset(e) (core::make_spliced_frame). Returns the bytes written.
std::size_t write_envelope_around_data(const envelope& e, std::span<char> out) noexcept;
/// Where e.data starts in write_envelope()'s output.
std::size_t envelope_data_offset(const envelope& e) noexcept;
/// The "timestamp" of the envelope a message frame carries (its frame as fan-out built it,
/// data spliced or not); 0 for a frame that holds none.
uint64_t envelope_timestamp(const core::frame_ref& f) noexcept;

/// {"op":"reply","id":<id|null>,"ok":true<extra>} where `extra_fields` is either empty or
/// starts with ',' (e.g. ",\"offset\":5").
std::string reply_ok(bool has_id, uint64_t id, std::string_view extra_fields = {});
/// {"op":"reply","id":<id|null>,"ok":false,"error":{"code":N,"message":"..."}} with the
/// message JSON-escaped.
std::string reply_error(bool has_id, uint64_t id, int code, std::string_view message);
/// {"op":"notice","type":"unsubscribed","channel":"<channel>","reason":"<reason>"}: a
/// refresh ended the connection's subscription to `channel` (a valid_channel), because the
/// new token does not allow it; `reason` (JSON-escaped) is auth::may_subscribe's.
std::string notice_unsubscribed(std::string_view channel, std::string_view reason);

// presence (docs/protocol.md "Presence")
/// One channel's presence as its home shard knows it.
struct presence_page {
    uint64_t users = 0;       ///< users with at least one connection subscribed
    uint64_t connections = 0; ///< connections subscribed, anonymous ones included
    uint64_t anonymous = 0;   ///< connections without a user id
    bool listed = true;       ///< false past config::max_presence_members: no members
    std::vector<std::pair<std::string, uint32_t>> members; ///< user id → connections, by id
};
/// How much of a presence_page is filled: the counts alone, or the members too.
enum class presence_detail : uint8_t { counts, members };
/// Who hears a presence page read from every node (engine::read_presence), on the shard's
/// thread.
class presence_listener {
public:
    virtual ~presence_listener() = default;
    virtual void on_presence_page(uint64_t token, const presence_page& page) noexcept = 0;
};
/// `"channel":"C","users":U,"connections":K,"anonymous":A` then `,"members":[{"userId":
/// "u","connections":N},...]` or, past the cut-off, `,"listed":false`: the fields of the
/// presence reply and of GET /api/presence/<channel>. `channel` is a valid_channel.
std::string presence_fields(std::string_view channel, const presence_page& page);

// ---- 2. runtime ---------------------------------------------------------------------------
//
// One engine per shard (built by the gateway on the shard's thread). A channel's home shard
// (home_shard()) orders its messages: it assigns offsets, frames each message once and
// hands the frame, by reference, to every shard that has local subscribers; each shard
// queues a reference on each local subscriber. Subscribing is a round trip to the home
// shard, so a subscription takes effect at a known offset (the reply's) and misses nothing
// after it. Cross-shard traffic uses the core mesh; src/pubsub/engine_types.h lists the
// kinds.

/// What the channels of one namespace do beyond delivery (--namespace NS:history=N,
/// history-ttl=S,presence,ack): how many messages they keep and for how long, whether their
/// home tracks who is subscribed, whether clients acknowledge what they get.
struct channel_policy {
    uint32_t count = 0; ///< history: messages kept per channel; 0: none (no history)
    uint32_t ttl_s = 0; ///< history: seconds a message is kept; 0: no age limit
    bool presence = false; ///< the home keeps the members; join / leave go to subscribers
    bool ack = false;      ///< clients acknowledge each message (docs/protocol.md "Acks")
};

/// The namespace policies (from --namespace), looked up by a channel's namespace.
struct channel_rules {
    std::vector<std::pair<std::string, channel_policy>> by_namespace;
    /// The policy of `channel`'s namespace (the part before ':'); nothing when none.
    channel_policy find(std::string_view channel) const noexcept;
};

/// One answer of engine::history.
struct history_page {
    bool found = false;         ///< the channel is homed here and known
    bool kept = false;          ///< its namespace keeps history
    std::string epoch;          ///< the epoch its offsets belong to
    uint64_t offset = 0;        ///< its last message's offset
    uint64_t first = 0;         ///< the oldest retained message's offset (offset + 1: none)
    std::vector<core::frame_ref> frames; ///< the messages asked for, oldest first
};

/// Who hears a history page read from the broker (engine::read_history_page), on the
/// shard's thread.
class history_listener {
public:
    virtual ~history_listener() = default;
    virtual void on_history_page(uint64_t token, history_page page) noexcept = 0;
};

/// Knobs of the engine; filled from flags by src/app.
/// Socket.IO connections (docs/socketio.md): which Socket.IO namespace a channel's
/// messages are emitted in.
struct socketio_config {
    /// --socketio-namespace NAME: the Socket.IO namespace "/NAME", whose rooms are the
    /// channels NAME:<room>; messages of NAME:… channels are emitted there, all others in "/".
    std::vector<std::string> namespaces;
    /// Connection state recovery is on (--socketio-recovery-ms > 0): every live channel
    /// message a Socket.IO client gets carries its shard's delivery tag as its last
    /// argument, which the client hands back when it reconnects (docs/socketio.md).
    bool recovery = false;
};

/// The Socket.IO namespace `channel`'s messages are emitted in: "/NAME" when the channel's
/// namespace (the part before its first ':') is one of cfg.namespaces, else "/".
std::string socketio_namespace_of(std::string_view channel, const socketio_config& cfg);

struct config {
    /// Namespaces whose channels clients may publish to (--client-publish), for sessions
    /// without an identity (authentication off).
    std::vector<std::string> client_publish_namespaces;
    /// The namespace rules (--namespace), set when authentication is on (JWT keys
    /// configured): a session opened with an identity subscribes and publishes only as
    /// auth::may_subscribe / may_publish allow. Shared read-only by every shard.
    std::shared_ptr<const auth::namespace_table> namespaces;
    /// Channels one connection may subscribe to (its own user: channel included).
    uint32_t max_channels_per_connection = 50;
    /// Queued output at which a connection is a slow consumer and is closed with 1008.
    /// Half of it drops priority 4, three quarters drops priority 3 as well. (Above the
    /// shard's output budget, core::runtime_config, 3 and 4 are dropped for everyone.)
    std::size_t slow_consumer_bytes = 4u << 20;
    /// --deflate-threshold-bytes: a channel message whose frame payload is shorter than this
    /// goes to permessage-deflate connections uncompressed (RSV1 clear). 256: a smaller
    /// JSON envelope shrinks by under 30 % (20-70 bytes: 150 → 123 B, 196 → 157 B), not worth
    /// a second frame per message; at 517 B it halves (perf/RESULTS.md "permessage-deflate").
    std::size_t deflate_threshold_bytes = 256;
    /// Commands per second per connection (token bucket) and the bucket size.
    uint32_t command_rate = 100;
    uint32_t command_burst = 200;
    /// Channels with no subscriber on any shard whose order (offset, epoch) a home shard
    /// keeps, least recently used first out (--max-idle-channels). ~300 B each with their
    /// map node and names: 4,096 hold ~1.2 MB per shard, however many fresh names backends
    /// publish to (16,384 left 19 MB resident after perf/attack/churn on 2 shards, 4,096
    /// 13 MB against a 16 MB target). An evicted channel starts again at offset 1 under a
    /// new epoch, which tells a recovering client.
    uint32_t max_idle_channels = 4096;
    /// The same for a backend session (a /ws connection that presented the API key): a
    /// publishing feed, trusted by its key (--backend-command-rate, --backend-command-burst).
    /// 1 000 times the client rate, so only a runaway loop meets it; the burst absorbs the
    /// backlog a feed flushes at once after reconnecting.
    uint32_t backend_command_rate = 100000;
    uint32_t backend_command_burst = 20000;
    /// What channels do beyond delivery, by namespace (--namespace NS:history=N,
    /// history-ttl=S,presence,ack): none of it by default.
    channel_rules channels;
    /// Bytes the retained messages of one shard may hold, frames included
    /// (--history-budget-bytes); past it the shard's oldest go first.
    std::size_t history_budget_bytes = std::size_t{64} << 20;
    /// Messages to user:<id> kept while the user has no connection, delivered in order
    /// when one comes (--offline-messages, 0 = off; --offline-ttl-s). They live in the
    /// user channel's history on its home shard, within history_budget_bytes, and go with
    /// the channel if it is evicted as idle (max_idle_channels).
    uint32_t offline_messages = 100;
    uint32_t offline_ttl_s = 86400;
    /// A message that needs an ack (namespaces marked ack, priority 1 to user: channels)
    /// and is not acknowledged this long after it was sent is sent again on that
    /// connection, once (--ack-timeout-ms).
    uint32_t ack_timeout_ms = 10000;
    /// presence: users in one channel up to which its home sends join / leave events and
    /// lists the members (--presence-max-members); past it, counts only. Each join or leave
    /// goes to every subscriber, so a room of N users joining costs N² events: 1,000 keeps
    /// a full room's arrival at a million frames, a list answer at ~100 KB.
    uint32_t max_presence_members = 1000;
    socketio_config socketio;
};

/// Counters of one shard's engine; gathered by the backend API.
struct counters {
    uint64_t sessions = 0;      ///< open /ws connections (gauge)
    uint64_t subscriptions = 0; ///< (gauge)
    uint64_t messages_in = 0;   ///< publishes accepted on this shard (client and API)
    uint64_t messages_out = 0;  ///< frames queued to connections
    uint64_t bytes_out = 0;     ///< bytes of those frames
    /// permessage-deflate: frames compressed (once per message per shard), the payload bytes
    /// given to them and the bytes they made; and of messages_out, the compressed ones.
    uint64_t deflate_compressions = 0;
    uint64_t deflate_input_bytes = 0;
    uint64_t deflate_output_bytes = 0;
    uint64_t compressed_messages_out = 0;
    uint64_t compressed_bytes_out = 0;
    uint64_t dropped[5] = {};   ///< by priority (index 1-4)
    uint64_t slow_consumer_closes = 0;
    uint64_t commands = 0;
    uint64_t command_errors = 0;
    uint64_t rate_limited = 0;    ///< commands over the rate, dropped before parsing
    uint64_t commands_waited = 0; ///< commands held until an earlier one finished (order)
    uint64_t backlog_refused = 0; ///< commands refused: too many waiting on one connection
    uint64_t busy_refused = 0;    ///< publishes/subscribes refused: the mesh is congested
    uint64_t local_channels = 0;  ///< channels with local subscribers or pending (gauge)
    uint64_t home_channels = 0;   ///< channels ordered here (gauge)
    uint64_t idle_channels_evicted = 0;
    uint64_t history_messages = 0;       ///< retained on this shard (gauge)
    uint64_t history_bytes = 0;          ///< their bytes, frames included (gauge)
    uint64_t history_channels = 0;       ///< channels keeping messages here (gauge)
    uint64_t history_evicted_count = 0;  ///< dropped past their namespace's history=N
    uint64_t history_evicted_age = 0;    ///< dropped past their namespace's history-ttl
    uint64_t history_evicted_budget = 0; ///< dropped, oldest first, for --history-budget-bytes
    uint64_t recovered = 0;          ///< subscribes with recover answered "recovered":true
    uint64_t recover_failed = 0;     ///< ... answered "recovered":false
    uint64_t recovered_messages = 0; ///< messages those subscribes were sent from history
    uint64_t offline_delivered = 0;  ///< user: messages kept while offline, then delivered
    uint64_t ack_pending = 0;   ///< messages sent and not acknowledged yet (gauge)
    uint64_t acked = 0;         ///< messages acknowledged (each counted once)
    uint64_t ack_resent = 0;    ///< messages sent again after --ack-timeout-ms
    uint64_t ack_closes = 0;    ///< connections closed (1008) for what they left unacked
    uint64_t ack_replayed = 0;  ///< user: messages never acknowledged, sent again on reconnect
    uint64_t permission_refused = 0; ///< subscribes / publishes refused 403 (namespace rules)
    uint64_t channel_limit_refused = 0; ///< subscribes refused 403 (--max-channels)
    uint64_t refreshes = 0;          ///< refresh commands that replaced a connection's token
    uint64_t refresh_refused = 0;    ///< refresh commands refused (401, 403)
    uint64_t revoked_subscriptions = 0; ///< subscriptions ended by a refresh (notice sent)
    // presence, on the channels' home shards
    uint64_t presence_channels = 0;  ///< channels with members (gauge)
    uint64_t presence_members = 0;   ///< users with a connection, summed over them (gauge)
    uint64_t presence_joins = 0;     ///< a user's first connection to a channel
    uint64_t presence_leaves = 0;    ///< a user's last connection to a channel left
    uint64_t presence_events_sent = 0;       ///< join / leave events fanned out (once each)
    uint64_t presence_events_suppressed = 0; ///< not sent: past max_presence_members
    uint64_t presence_queries = 0;   ///< presence commands and API queries answered
};

struct local_channel;
struct publish_job;
struct interest_msg;
struct delivery;
struct recover_msg;
struct ack_msg;
struct member_msg;   // presence
struct presence_msg; // presence
struct home_channel;
class ack_window;
namespace kinds {
struct interest;
struct confirmed;
struct publish;
struct published;
struct deliver;
struct recover;
struct recovered;
struct acked;
struct member;          // presence
struct presence_ask;    // presence
struct presence_answer; // presence
} // namespace kinds
struct pending_sub;
struct session_backlog;
enum class reply_mode : uint8_t;
enum class interest_change : uint8_t;
enum class member_change : uint8_t; // presence
class ordering;
class subscriptions;
class fanout;
class engine;

/// Whether a session without a token may subscribe to the server's own channels
/// (auth::sys_namespace); the gateway decides it at the upgrade (docs/security.md "The
/// dashboard and sys:stats"). A session with a token is judged by its roles instead.
enum class sys_access : bool { no, yes };

/// The pubsub side of one /ws connection; owned by the gateway's connection state.
///
/// Command order. A connection's commands take effect in the order sent and their replies
/// leave in that order, whichever shards own the channels:
///
///   command ─► [rate bucket] ─► parse ─► can start? ──yes──► run (sync, or async: a reply
///                 │ empty: dropped          │ no                slot is reserved and filled
///                 ▼ unparsed, counted       ▼                   when the home shard answers)
///            one 429 a second      deferred (bounded) ─── an async command finishes ──┘
///
/// A subscribe that needs its home shard's round trip holds back everything after it; a
/// publish routed to another shard holds back everything but further publishes, which
/// travel on the same ordered mesh rings and so stay in order (replies are re-ordered
/// through the slots). The backlog exists only while something waits.
/// Where the replies and notices of a session that does not speak docs/protocol.md go: a
/// Socket.IO connection (src/net) turns each into an ACK or an event. Called on the
/// session's shard, in the order the engine would have sent them.
class reply_sink {
public:
    virtual ~reply_sink() = default;
    /// One reply or notice, the JSON text the engine would have sent as a text frame.
    virtual void on_reply(conn_handle h, std::string_view text) noexcept = 0;
};

class session {
public:
    session();
    ~session();
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    const std::string& user_id() const noexcept { return _user_id; }
    /// Who the connection's token says it is; null when it was opened without one
    /// (authentication off, or a backend session).
    const auth::identity* identity() const noexcept { return _identity.get(); }
    /// The connection is closing: deliver nothing more to it.
    void mark_closing() noexcept { _closing = true; }
    /// permessage-deflate was negotiated (set once, before the session opens): channel
    /// messages from deflate_threshold_bytes on may go to it compressed, when they fit
    /// `server_max_window_bits` (ws::deflate_fits). The gateway calls it.
    void enable_deflate(uint8_t server_max_window_bits) noexcept {
        _deflate_window_bits = server_max_window_bits;
    }
    /// The connection speaks Socket.IO (set once, before the session opens): replies and
    /// notices go to `sink`, channel messages and presence events are re-framed as
    /// Socket.IO events (docs/socketio.md). `sink` must outlive the session.
    void speak_socketio(reply_sink& sink) noexcept { _sink = &sink; }
    bool socketio() const noexcept { return _sink != nullptr; }
    /// The server began closing it (its close frame is queued): a close frame from the
    /// client now is the echo, not a close of its own.
    bool closing() const noexcept { return _closing; }

private:
    // Each field belongs to one part of the engine, which alone reads and writes it: the
    // command path (engine), subscribing (subscriptions) or delivery (fanout).
    friend class engine;
    friend class subscriptions;
    friend class fanout;
    struct subscription {
        local_channel* channel;
        uint32_t index; // position in channel->subscribers
    };
    std::string _user_id;                      // engine
    // engine: the verified token's claims, replaced by a refresh. Bounded by the token's
    // size (auth::verify_options::max_token_bytes): at most that many bytes of names.
    std::unique_ptr<auth::identity> _identity;
    std::vector<subscription> _subs;           // subscriptions: the channels it receives
    std::vector<local_channel*> _waiting_on;   // subscriptions: where a subscribe of ours waits
    std::unique_ptr<session_backlog> _backlog; // engine: deferred commands, reply slots; or null
    std::unique_ptr<ack_window> _acks;         // fanout: messages awaiting its ack; or null
    uint32_t _registry_index = 0;              // engine: position in engine::_sessions
    uint32_t _tokens_milli = 0;                // engine: command tokens x1000
    uint32_t _pending = 0;                     // subscriptions: subscribes waiting for a home
    uint32_t _publishing = 0;                  // engine: publishes waiting for their home shard
    uint32_t _recovering = 0;                  // engine: subscribes waiting for their history
    uint32_t _asking_presence = 0;             // engine: presence commands waiting for a home
    uint32_t _rate_limit_burst = 0;            // engine: its bucket (client or backend)
    uint32_t _rate_limit_rate = 0;             // engine
    bool _closing = false; // fanout: closing (slow consumer, or told): deliver nothing more
    bool _backend = false; // engine: holds the API key: may publish anywhere
    bool _sys = false;     // engine: may subscribe to sys: channels without a token
    bool _running = false; // engine: its commands are being run: do not re-enter
    uint8_t _deflate_window_bits = 0; // fanout: permessage-deflate's window, 0: off
    reply_sink* _sink = nullptr;      // engine, fanout: a Socket.IO connection's, or null
    uint64_t _refill_ms = 0;      // engine; ahead of now while the bucket is in debt
    uint64_t _limit_reply_ms = 0; // engine: when the last 429 for an over-rate command left
};

/// Where the result of a publish goes when the home shard has ordered it.
struct publish_origin {
    /// bridge: a queue bridge (src/bridge) on this shard; answered to the bridge listener.
    enum class kind : uint8_t { client, api, bridge } from = kind::client;
    conn_handle conn; ///< client: the publishing connection; api: the HTTP connection
    bool has_id = false;
    uint64_t id = 0;    ///< client: command id; api: request token; bridge: the bridge's token
    uint32_t index = 0; ///< api: position in a batch; client: the reply slot; bridge: which
};

/// Told about finished backend publishes (the admin API implements it).
class publish_listener {
public:
    virtual ~publish_listener() = default;
    /// `offset` 0: it was not ordered, and `failure` (a static text) says why (with a
    /// broker only: Redis down or refusing).
    virtual void on_published(const publish_origin& origin, uint64_t offset,
                              std::string_view failure = {}) noexcept = 0;
    /// On `channel`'s home shard: a channel of the sys namespace went from no interested
    /// shard to one (its first subscriber anywhere). Nothing by default.
    virtual void on_watched(std::string_view channel) noexcept { (void)channel; }
};

/// One message as the node-wide order carries it (--engine redis, src/engine): what a
/// home shard hands over to be ordered, and what comes back ordered, to every node whose
/// home shard watches the channel. Views: valid for the call they are given to.
struct broker_message {
    std::string_view channel;
    /// The envelope's "id": not carried; every node makes the same one from the order,
    /// "m-<epoch>-<offset in hex>" (engine: on_broker_message, history).
    std::string_view message_id;
    std::string_view event;
    std::string_view data; ///< raw JSON, validated by the publishing node
    std::string_view user_id;
    priority prio = priority::normal;
    // Set by the order (on the way back):
    std::string_view epoch;
    uint64_t offset = 0;
    uint64_t timestamp_ms = 0; ///< the order's clock: one clock for every node
    bool ack = false;          ///< retained with the ack bit (history entries)
};

/// What a broker reports to the engine of its shard; every call on that shard's thread.
class broker_events {
public:
    virtual ~broker_events() = default;
    /// broker::publish(`token`) was ordered at (`epoch`, `offset`); offset 0: it was not,
    /// and `reason` says why (the broker is down, the order refused it).
    virtual void on_ordered(uint64_t token, std::string_view epoch, uint64_t offset,
                            std::string_view reason) noexcept = 0;
    /// A watched channel's message, in the channel's order (offsets may jump where the
    /// broker's connection was lost: those messages are in its history, not here).
    virtual void on_message(const broker_message& m) noexcept = 0;
    /// broker::watch(`channel`) took effect: every message after (`epoch`, `offset`) comes
    /// through on_message, none at or before it. Also after a reconnect, for every
    /// watched channel (its offset may have moved on meanwhile).
    virtual void on_point(std::string_view channel, std::string_view epoch,
                          uint64_t offset) noexcept = 0;
    /// A watched channel's point cannot be read now (a connection went, or is too busy):
    /// it comes through on_point once the broker is back; whoever waits for it should not.
    virtual void on_point_lost(std::string_view channel) noexcept = 0;
    /// broker::read_history(`token`) answered: the channel's epoch and last offset, and
    /// its retained messages after the asked offset, oldest first (at most the asked
    /// count); `ok` false when it could not be read (down): then nothing else is set.
    virtual void on_history(uint64_t token, bool ok, std::string_view epoch, uint64_t offset,
                            std::span<const broker_message> messages) noexcept = 0;
    /// broker::read_range(`token`) answered: as on_history, and `first`, the oldest
    /// retained message's offset (offset + 1 when none is); `epoch` empty when the broker
    /// has no such channel.
    virtual void on_range(uint64_t token, bool ok, std::string_view epoch, uint64_t offset,
                          uint64_t first, std::span<const broker_message> messages) noexcept = 0;
    // Presence across nodes (docs/scaling.md "Presence").
    /// A user's first connection to watched `channel` on any live node (`joined`), or its
    /// last one left; `users` counts the channel's users with it (after a join, before a
    /// leave). In the channel's order with its messages.
    virtual void on_presence(std::string_view channel, std::string_view user, bool joined,
                             uint64_t users) noexcept = 0;
    /// broker::read_presence(`token`) answered: the channel's members on every live node;
    /// `ok` false when it could not be read (the connection was lost): then `page` is empty.
    virtual void on_presence_page(uint64_t token, bool ok, const presence_page& page) noexcept = 0;
    /// The broker's connection came (back) up, or this shard was taken for dead meanwhile:
    /// what it held of this shard's members may be gone, so every presence channel's
    /// members are set again (broker::replace_members).
    virtual void on_members_lost() noexcept = 0;
    /// Another node's POST /api/broadcast to every connection: `text` is the envelope as
    /// that node delivered it, to deliver to every connection of this shard.
    virtual void on_broadcast(std::string_view text, priority prio) noexcept = 0;
};

/// A broker's figures on one shard (/api/stats "engine", /metrics ringcast_engine_*).
struct broker_stats {
    uint64_t links = 0;    ///< connections it keeps to the broker
    uint64_t links_up = 0; ///< of them up now (gauge)
    uint64_t connects = 0;
    uint64_t connect_failures = 0;
    uint64_t disconnects = 0; ///< up connections that went down
    uint64_t requests = 0;
    uint64_t errors = 0;
    uint64_t pending = 0;        ///< requests unanswered (gauge)
    uint64_t watched = 0;        ///< channels received for home shards here (gauge)
    uint64_t published = 0;      ///< publishes the broker ordered
    uint64_t publish_failed = 0; ///< publishes answered 503: down, or refused
    uint64_t received = 0;       ///< messages received for watched channels
    uint64_t history_reads = 0;  ///< recoveries read from the broker's history
    uint64_t buffered_dropped = 0; ///< messages dropped while a point was read (bounded)
    uint64_t gap_filled = 0; ///< messages missed while resubscribing, read from the history
    uint64_t user_claims = 0;         ///< per-user slots checked against every node
    uint64_t user_claims_refused = 0; ///< of them refused: the user's nodes held the limit
    uint64_t user_claims_unchecked = 0; ///< slots granted on this node's count alone (down)
    uint64_t user_counts_dropped = 0; ///< count changes not written: over the waiting bound
    uint64_t presence_writes = 0;  ///< members set or replaced in Redis
    uint64_t presence_dropped = 0; ///< member changes not written (down, or over the waiting bound): set again after a reconnect
    uint64_t presence_reads = 0;   ///< presence queries answered from every node
    uint64_t presence_sweeps = 0;  ///< channels swept of a dead node's members
    uint64_t dead_shards = 0;      ///< shards of other nodes seen to stop refreshing liveness
    uint64_t broadcasts_sent = 0;     ///< broadcasts to every connection handed to other nodes
    uint64_t broadcasts_dropped = 0;  ///< of them not handed on: the broker was down
    uint64_t broadcasts_received = 0; ///< other nodes' broadcasts delivered here
};

/// What the broker tells the holder of a shard's per-user connection counts (the gateway,
/// --max-connections-per-user across nodes); on the shard's thread.
class user_count_events {
public:
    virtual ~user_count_events() = default;
    /// broker::claim_user(`token`) was decided: `granted` false when the user's entries on
    /// every live node reached the limit.
    virtual void on_user_claimed(uint64_t token, bool granted) noexcept = 0;
    /// The broker's connection came (back) up: what it held of this shard's entries may be
    /// gone (expired while it was away), so every user's count is pushed again (count_user).
    virtual void on_user_counts_lost() noexcept = 0;
};

/// The node-wide order of channels (docs/scaling.md): with it, a channel's home shard does
/// not give offsets itself but hands each publish to the broker, watches the channels some
/// shard here subscribes to, and reads history the node did not see. One per shard, used
/// by its thread only; null in the engine means the embedded engine (one node).
class broker {
public:
    virtual ~broker() = default;
    /// Who hears the answers (the shard's engine); set once, before any other call.
    virtual void set_events(broker_events* events) noexcept = 0;
    /// Orders `m` (channel, message id, event, data, user, priority, ack) and keeps it in
    /// the channel's history when `keep` (policy.count > 0; policy.ttl_s bounds its age).
    /// Always answered through on_ordered(token), possibly before this returns.
    virtual void publish(const broker_message& m, const channel_policy& keep,
                         uint64_t token) noexcept = 0;
    /// Starts / stops receiving `channel`'s messages. watch → on_point, then on_message.
    /// Calls alternate per channel (watch, unwatch, watch, …).
    virtual void watch(std::string_view channel) noexcept = 0;
    virtual void unwatch(std::string_view channel) noexcept = 0;
    /// Reads `channel`'s retained messages after `after` (at most `limit`); answered
    /// through on_history(token), possibly before this returns.
    virtual void read_history(std::string_view channel, uint64_t after, uint64_t limit,
                              uint64_t token) noexcept = 0;
    /// Reads `channel`'s retained messages after `after` (0: from the oldest), oldest
    /// first, at most `limit` (GET /api/history); answered through on_range(token),
    /// possibly before this returns.
    virtual void read_range(std::string_view channel, uint64_t after, uint64_t limit,
                            uint64_t token) noexcept = 0;
    /// Connected and usable now.
    virtual bool up() const noexcept = 0;
    virtual broker_stats stats() const noexcept = 0;

    // Connections per user across nodes (docs/scaling.md "Connections per user"). Each
    // shard's entry for a user is the number of slots it holds; an entry of a node that
    // stopped refreshing its liveness is not counted (and removed by the next claim).
    /// Who hears claims decided and counts lost; set once, before claim_user.
    virtual void set_user_events(user_count_events* events) noexcept = 0;
    /// `user` holds `held` slots here, this claim's included: granted (and this shard's
    /// entry set to `held`) when that plus the other live entries is at most `max`.
    /// Always answered through on_user_claimed(token), possibly before this returns; while
    /// the broker is down, granted at once (this node's own count still applies).
    virtual void claim_user(std::string_view user, uint32_t held, uint32_t max,
                            uint64_t token) noexcept = 0;
    /// This shard's entry for `user` becomes `held` (0 removes it): a slot given back.
    virtual void count_user(std::string_view user, uint32_t held) noexcept = 0;

    // Presence across nodes (docs/scaling.md "Presence"). Each shard's entry for a (channel,
    // user) is the number of that user's connections subscribed on its node, kept by the
    // channel's home shard there; entries of a node that stopped refreshing its liveness
    // are not counted, and removed (with a leave for every user they held) by the other
    // nodes' sweep.
    /// This shard holds `connections` of `user`'s connections (empty: anonymous ones) to
    /// `channel`; 0 removes the entry. A user's first connection on any live node and its
    /// last come back to every node watching the channel as on_presence. Dropped while the
    /// broker is down (on_members_lost asks for everything again).
    virtual void set_member(std::string_view channel, std::string_view user,
                            uint64_t connections) noexcept = 0;
    /// This shard's entries for `channel` become exactly `members` (user → connections;
    /// the empty user: anonymous ones), the ones not named removed.
    virtual void replace_members(std::string_view channel,
                                 std::span<const std::pair<std::string, uint32_t>> members) noexcept = 0;
    /// Reads `channel`'s members on every live node, naming them when there are at most
    /// `max_listed`. False when it cannot be asked now (down, busy): nothing follows; else
    /// answered through on_presence_page(token), never before this returns.
    virtual bool read_presence(std::string_view channel, uint32_t max_listed,
                               uint64_t token) noexcept = 0;

    /// Hands a broadcast to every connection (POST /api/broadcast without channels) to
    /// every shard of every other node (on_broadcast there); `text` is the envelope. At
    /// most once, not kept: dropped (counted) while the broker is down.
    virtual void broadcast(std::string_view text, priority prio) noexcept = 0;
};

/// Hash for maps keyed by names, so lookups take a string_view without building a
/// std::string (the delivery path looks up a channel per message).
struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const noexcept {
        return std::hash<std::string_view>{}(name);
    }
};
template <typename T>
using name_map = std::unordered_map<std::string, T, name_hash, std::equal_to<>>;

/// The home shard of a channel or user: FNV-1a of the name, modulo the shard count.
unsigned home_shard(std::string_view name, unsigned shards) noexcept;

/// The pubsub engine of one shard: a facade over three parts, each with its own state and
/// its own file in src/pubsub, which reach each other only through the engine:
///
///   subscriptions  local channels and their subscribers, the sessions' channel lists,
///                  subscribes waiting for their home shard, interest gained / lost
///   ordering       the channels homed here: offset, epoch, interested shards, idle LRU
///   fanout         framing once, hand-off to the interested shards, local delivery under
///                  the slow-consumer policy, broadcast
///
/// The engine itself keeps the sessions and the command path (rate limit, command order,
/// replies; commands.cc), carries a publish to its home shard and back and the interest
/// round trip between a shard's subscriptions and the home's ordering, and handles the mesh
/// kinds (engine.cc):
///
///   command ─► engine ─► subscribe ─► subscriptions ─(interest)─► home: ordering ─┐
///                     └► publish ─► route ─(publish)─► home: order ─► ordering ─► fanout
///   confirmed ─► engine ─► subscriptions ─► replies     deliver ─► fanout ◄───────┘
///
/// Built on its shard's thread (it registers its mesh handlers there) and used by that
/// thread only.
class engine {
public:
    /// `tokens`: the shard's verifier when authentication is on (a refresh command is
    /// verified with it; it must outlive the engine), else null.
    /// `nodes`: the broker of this shard when the node is one of many (--engine redis;
    /// it must outlive the engine), else null: channels are ordered here.
    engine(core::conn_io& io, const config& cfg, auth::verifier* tokens = nullptr,
           broker* nodes = nullptr);
    ~engine();
    engine(const engine&) = delete;
    engine& operator=(const engine&) = delete;

    /// A /ws connection finished its upgrade as `user_id` (empty: anonymous). Subscribes it
    /// to user:<id>.
    /// `backend`: the connection presented the API key and may publish to any channel
    /// (a high-rate feed over one WebSocket instead of HTTP requests). `sys`: it may
    /// subscribe to sys: channels.
    void open_session(conn_handle h, session& s, std::string_view user_id, bool backend = false,
                      sys_access sys = sys_access::no);
    /// A /ws connection authenticated by a token the gateway verified: opens it as
    /// who.user_id (which must be a valid_user_id), keeps `who` for the subscribe and
    /// publish decisions (config::namespaces, which must be set) and arms the connection's
    /// core::conn_timer::expiry at exp + leeway; the handler closes it (4001) when that
    /// fires, unless a refresh moved it.
    void open_session(conn_handle h, session& s, auth::identity who);
    /// A text message from the client: one command (docs/protocol.md).
    void on_text(conn_handle h, session& s, std::string_view text);
    /// A command that would come now would be over the rate (counted as rate_limited, like
    /// the commands on_text drops; nothing is sent): for a gateway that answers it itself
    /// (a Socket.IO emit gets a 429 ACK instead of silence).
    bool over_rate(session& s) noexcept;
    /// A command of the gateway's own on the session's behalf (a Socket.IO recovery's
    /// resubscriptions): as on_text, without taking a token.
    void on_own_text(conn_handle h, session& s, std::string_view text);
    /// Inflating a compressed message is paid from the session's command bucket: before it,
    /// whether the bucket holds a token (false: the message is refused over the rate as a
    /// command would be, unread and uninflated; the 429 goes out once a second) ...
    bool may_inflate(conn_handle h, session& s);
    /// ... and after it, one token per inflate_bytes_per_token of output past the first
    /// (the command itself pays one): what the bucket lacks is a debt the refill pays first,
    /// so a connection inflates on average at most --command-rate × 64 KiB a second
    /// (perf/attack/deflate attack 9).
    void charge_inflated(session& s, std::size_t inflated_bytes) noexcept;
    static constexpr std::size_t inflate_bytes_per_token = 64u << 10;
    /// The connection is gone: its subscriptions end.
    void close_session(conn_handle h, session& s) noexcept;
    /// The engine's mesh messages (src/pubsub/engine_types.h lists the kinds), registered
    /// with the shard in the constructor; each handler owns the payload it is given.
    void on_mesh(kinds::interest, shard_id from, std::unique_ptr<interest_msg> m) noexcept;
    void on_mesh(kinds::confirmed, shard_id from, std::unique_ptr<interest_msg> m) noexcept;
    void on_mesh(kinds::publish, shard_id from, std::unique_ptr<publish_job> job) noexcept;
    void on_mesh(kinds::published, shard_id from, std::unique_ptr<publish_job> job) noexcept;
    void on_mesh(kinds::deliver, shard_id from, std::unique_ptr<delivery> d) noexcept;
    void on_mesh(kinds::recover, shard_id from, std::unique_ptr<recover_msg> m) noexcept;
    void on_mesh(kinds::recovered, shard_id from, std::unique_ptr<recover_msg> m) noexcept;
    void on_mesh(kinds::acked, shard_id from, std::unique_ptr<ack_msg> m) noexcept;
    /// h's core::conn_timer::acks fired: what it left unacknowledged too long is sent again.
    void on_ack_timer(conn_handle h, session& s) noexcept;
    // presence (presence.cc)
    void on_mesh(kinds::member, shard_id from, std::unique_ptr<member_msg> m) noexcept;
    void on_mesh(kinds::presence_ask, shard_id from, std::unique_ptr<presence_msg> m) noexcept;
    void on_mesh(kinds::presence_answer, shard_id from, std::unique_ptr<presence_msg> m) noexcept;

    /// A backend publish; the result reaches `listener` (possibly synchronously).
    /// `data` holds req.data's bytes when the caller shares one copy among several
    /// publishes (a broadcast to a list of channels); empty: copied from req.data.
    void publish(const publish_request& req, std::string_view channel, publish_origin origin,
                 core::frame_ref data = {});
    /// False when a publish to `channel` should be refused as busy: its home shard's mesh
    /// traffic is congested (conn_io::mesh_congested).
    bool accepts_work_for(std::string_view channel) const noexcept;
    void set_listener(publish_listener* listener) noexcept { _listener = listener; }
    /// Who hears the results of publishes from publish_origin::kind::bridge (src/bridge).
    void set_bridge_listener(publish_listener* listener) noexcept { _bridge_listener = listener; }

    /// Queues `f` on every local session (broadcast); returns how many got it.
    uint64_t broadcast_local(const core::frame_ref& f, priority prio) noexcept;
    /// With a broker, hands a broadcast to every connection (the envelope `text`) to the
    /// other nodes, whose every shard delivers it (docs/scaling.md); nothing without one.
    void broadcast_to_nodes(std::string_view text, priority prio) noexcept;
    /// Closes every local connection of `user_id` with `code`; returns how many.
    uint64_t disconnect_user(std::string_view user_id, uint16_t code, std::string_view reason);
    /// Users with connections on this shard and their connection counts.
    std::vector<std::pair<std::string, uint32_t>> local_users() const;
    /// Channels with subscribers on this shard and their local subscriber counts.
    std::vector<std::pair<std::string, uint32_t>> local_channels() const;
    /// The `most` channels with the most subscribers on this shard, most first (ties by
    /// name); O(channels) time, O(most) memory beyond the answer.
    std::vector<std::pair<std::string, uint32_t>> top_local_channels(std::size_t most) const;
    /// Socket.IO connection state recovery (docs/socketio.md "Recovery"): this shard's
    /// delivery sequence now (each live channel message delivered to Socket.IO clients
    /// here takes the next number, carried as the tag "<shard instance>-<n>")...
    uint64_t socketio_seq() const noexcept;
    /// ... and where a Socket.IO client of this shard stood on `channel` when it last
    /// received the message tagged `last` (empty: none since it connected), having joined
    /// at `joined_offset` when the sequence was `joined_seq`: the offset of that channel's
    /// last message delivered here at or before `last`, else `joined_offset`. Nothing when
    /// the tag is not this shard's (instance) or the shard's log (socketio_log_entries) no
    /// longer reaches back to the join.
    std::optional<uint64_t> socketio_position(std::string_view channel, std::string_view last,
                                              uint64_t joined_offset,
                                              uint64_t joined_seq) const noexcept;
    /// For a channel whose home is this shard: some shard has subscribers (or pending
    /// ones). False for a channel homed elsewhere.
    bool watched(std::string_view channel) const noexcept;
    /// For a channel whose home is this shard: its offset and epoch, if it exists.
    bool home_info(std::string_view channel, uint64_t& offset, std::string& epoch) const;
    /// For a channel whose home is this shard: its retained messages after `since`, oldest
    /// first, at most `limit` (the frames fan-out sent). Nothing when it is not known here.
    history_page history(std::string_view channel, uint64_t since, std::size_t limit);
    /// history() for every node: with a broker the channel's stream (docs/scaling.md), read
    /// asynchronously: nothing is returned and the page reaches `to` with `token`, never
    /// before this returns. Returned at once by the embedded engine, for a namespace that
    /// keeps no history, and when the broker is down (this node's ring then).
    std::optional<history_page> read_history_page(std::string_view channel, uint64_t since,
                                                  std::size_t limit, history_listener& to,
                                                  uint64_t token);
    /// presence: true when `channel`'s namespace is marked presence (and it is not a user:
    /// channel), the same answer on every shard.
    bool tracks_presence(std::string_view channel) const noexcept;
    /// presence: for a channel whose home is this shard, its members (an empty page when it
    /// has none); `detail` members counts a query (presence_queries).
    presence_page presence_of(std::string_view channel, presence_detail detail);
    /// presence: for a channel whose home is this shard, its members on every node (a
    /// query, counted). Returned at once by the embedded engine, or with a broker that
    /// cannot be asked now (then this node's members alone: docs/scaling.md "Presence");
    /// else nothing is returned and the page reaches `to` with `token` when the broker
    /// answers, never before this returns. `to` must outlive the engine's answer.
    std::optional<presence_page> read_presence(std::string_view channel, presence_listener& to,
                                               uint64_t token);
    /// This shard's counters, gathered from the engine's parts.
    counters stats() const noexcept;
    /// The broker's figures (--engine redis); null on the embedded engine.
    const broker* node_broker() const noexcept { return _broker; }
    /// Publish-to-send latency of this shard's deliveries, µs: from a publish's acceptance
    /// on any shard to its last copy queued here, once per message (docs/decisions.md
    /// "Publish-to-send latency"). Single writer: this shard.
    const core::latency_histogram& publish_latency() const noexcept;
    /// The closes this shard's pubsub began (slow consumers, ack windows, disconnects), by
    /// code; the gateway counts the rest (admin::responder::close_stats adds them up).
    const ws::close_counts& closes() const noexcept;
    /// New settings (a reload): the namespace table and channel rules (channels created
    /// from now on get the new policies; existing ones keep theirs until they go), the
    /// per-connection limits (for connections opened from now on), the slow-consumer
    /// threshold, the ack timeout, the presence cut-off, offline messages; and `tokens`,
    /// the shard's verifier now (it must outlive the engine or the next reload). Sizes the
    /// engine's parts were built with (history budget, idle channels) stay.
    void reload(const config& cfg, auth::verifier* tokens);

private:
    // commands.cc: the command path — order, rate limit, replies, the commands.
    bool can_start(const session& s, command_op op) const noexcept;
    void run(conn_handle h, session& s, const command& cmd);
    void resume(conn_handle h, session& s);
    void defer(conn_handle h, session& s, std::string_view text);
    void refuse_over_rate(conn_handle h, session& s);
    void send_reply(conn_handle h, session& s, std::string text);
    uint32_t reserve_reply(session& s);
    void fill_reply(conn_handle h, session& s, uint32_t slot, std::string text);
    void reply(conn_handle h, session& s, const std::string& text) noexcept;
    bool take_token(session& s) noexcept;
    /// Adds what the rate earned since the last refill (nothing while in debt).
    void refill(session& s) noexcept;
    void subscribe(conn_handle h, session& s, const command& cmd, reply_mode mode);
    void unsubscribe(conn_handle h, session& s, const command& cmd);
    void confirm_interest(local_channel& ch, std::string_view epoch, uint64_t offset);
    // Recovery (commands.cc): S asks the home, the home answers, S finishes the subscribe.
    void start_recovery(conn_handle h, session& s, local_channel& ch, const recover_point& from,
                        bool has_id, uint64_t id, uint32_t slot);
    /// On the channel's home: answers `m` for `from_shard` (this one: finished here).
    void recover_at_home(unsigned from_shard, std::unique_ptr<recover_msg> m);
    void answer_recovery(recover_msg& m);
    /// broker.cc: the home's own history answers `m` (or nothing could: no history, the
    /// broker down); else the broker's is read (read_by_broker).
    bool answerable_here(const recover_msg& m) const noexcept;
    void read_by_broker(unsigned from_shard, std::unique_ptr<recover_msg> m);
    void deliver_offline(unsigned to_shard, home_channel& ch);
    void finish_recovery(recover_msg& m);
    void client_publish(conn_handle h, session& s, const command& cmd);
    void refresh(conn_handle h, session& s, const command& cmd);
    // acks.cc: acknowledged delivery (docs/protocol.md "Acks").
    void acknowledge(conn_handle h, session& s, const command& cmd);
    void note_acked(std::string_view channel, uint64_t offset) noexcept;
    // presence.cc: who is subscribed (docs/protocol.md "Presence").
    void presence(conn_handle h, session& s, const command& cmd);
    void send_member(std::string_view channel, const session& s, member_change change);
    void on_member(std::string_view channel, std::string_view user_id, member_change change);
    void finish_presence(presence_msg& m);
    /// On the channel's home: fills `m`'s page, from the broker (every node) when there
    /// is one that can be asked, and answers `from_shard` (this one: finished here).
    void ask_home_presence(unsigned from_shard, std::unique_ptr<presence_msg> m);
    /// The page this home keeps (this node's members), not counted as a query.
    presence_page local_presence(std::string_view channel) const;
    /// The join / leave event of `user` in `ch` to every interested shard, unless the
    /// channel's users (`users_with`, counting the user) are past the cut-off.
    void emit_presence(const home_channel& ch, std::string_view user, member_change change,
                       uint64_t users_with);
    void on_broker_presence(std::string_view channel, std::string_view user, bool joined,
                            uint64_t users) noexcept;
    void on_presence_page(uint64_t token, bool ok, const presence_page& page) noexcept;
    void on_members_lost() noexcept;
    void on_node_broadcast(std::string_view text, priority prio) noexcept;
    /// Arms h's expiry timer at exp + leeway (monotonic); nothing when `who` has no exp.
    void arm_expiry(conn_handle h, const auth::identity& who) noexcept;
    // engine.cc: sessions, the interest round trip between subscriptions and a home's
    // ordering, a publish's way to its home shard and back.
    struct interest_relay;
    session* find_session(conn_handle h) noexcept;
    void send_interest(std::string_view channel, uint64_t generation, interest_change change);
    void on_interest(unsigned from_shard, std::string_view channel, uint64_t generation,
                     interest_change change);
    void route(std::unique_ptr<publish_job> job);
    void order(publish_job& job);
    /// The home's part after the offset is known: stamps, frames once, fans out to the
    /// interested shards, keeps it in history.
    void fan_out_ordered(publish_job& job, home_channel& ch);
    /// offset 0: the publish failed (`failure` says why; a broker's only).
    void finish_publish(const publish_origin& origin, uint64_t offset,
                        std::string_view failure = {});
    // broker.cc: the node-wide order (--engine redis, docs/scaling.md): the home's side.
    struct broker_relay;
    /// On the home: hands `job` from `from_shard` to the broker; the answer returns to it.
    void order_by_broker(std::unique_ptr<publish_job> job, unsigned from_shard);
    void on_ordered(uint64_t token, std::string_view epoch, uint64_t offset,
                    std::string_view reason) noexcept;
    void on_broker_message(const broker_message& m) noexcept;
    void on_point(std::string_view channel, std::string_view epoch, uint64_t offset) noexcept;
    void on_point_lost(std::string_view channel) noexcept;
    void on_history(uint64_t token, bool ok, std::string_view epoch, uint64_t offset,
                    std::span<const broker_message> messages) noexcept;
    void on_range(uint64_t token, bool ok, std::string_view epoch, uint64_t offset,
                  uint64_t first, std::span<const broker_message> messages) noexcept;
    /// On the home, a gain in broker mode: confirmed now when the point is known, else
    /// when it comes (watching the channel first if nobody here did).
    void gain_by_broker(home_channel& ch, unsigned from_shard, uint64_t generation);
    /// Confirms (epoch, offset) of `ch` to the local channel `generation` of `to_shard`.
    void confirm_to(unsigned to_shard, const home_channel& ch, uint64_t generation);
    /// Sends `m`'s answer to the shard that asked (or finishes it here).
    void answer_to(unsigned to_shard, std::unique_ptr<recover_msg> m);

    core::conn_io& _io;
    config _config;
    auth::verifier* _tokens = nullptr;
    publish_listener* _listener = nullptr;
    publish_listener* _bridge_listener = nullptr;
    name_map<std::vector<conn_handle>> _users;
    std::vector<std::pair<conn_handle, session*>> _sessions;
    std::unordered_map<uint32_t, session*> _by_slot; // conn_handle::slot → open session
    counters _counters; // the command path's fields; stats() adds the parts' own
    uint32_t _start_s = 0;
    uint32_t _recover_seq = 0; // tokens of recoveries under way (never 0)
    // The parts, built in this order (fanout reads subscriptions, subscriptions tells the
    // relay); heap-held because their types are private to src/pubsub.
    std::unique_ptr<interest_relay> _relay; // subscriptions' interest_sink
    std::unique_ptr<subscriptions> _subscriptions;
    std::unique_ptr<ordering> _ordering;
    std::unique_ptr<fanout> _fanout;
    // The node-wide order (broker.cc); all empty without a broker.
    broker* _broker = nullptr;
    std::unique_ptr<broker_relay> _broker_relay;
    uint64_t _broker_seq = 0;
    std::unordered_map<uint64_t, std::unique_ptr<publish_job>> _broker_publishes;
    /// Recoveries waiting for the broker's history, with the shard that asked.
    std::unordered_map<uint64_t, std::pair<unsigned, std::unique_ptr<recover_msg>>> _broker_reads;
    /// Presence commands waiting for the broker's page, with the shard that asked; the
    /// API's reads (read_presence), with their listener, token and channel. Each answered
    /// by the broker, or failed when its connection goes: bounded by the requests waiting.
    std::unordered_map<uint64_t, std::pair<unsigned, std::unique_ptr<presence_msg>>> _presence_asks;
    struct presence_read {
        presence_listener* to;
        uint64_t token;
        std::string channel;
    };
    std::unordered_map<uint64_t, presence_read> _presence_reads;
    /// The API's history reads (read_history_page): listener, token, the page's range.
    struct history_read {
        history_listener* to;
        uint64_t token;
        std::string channel;
        uint64_t since;
        std::size_t limit;
    };
    std::unordered_map<uint64_t, history_read> _history_reads;
};

} // namespace ringcast::pubsub
