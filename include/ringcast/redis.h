// ringcast redis — the Redis engine (--engine redis): a shard's connections to Redis, and
// the broker that orders channels for every node through them (docs/scaling.md).
//
//   resp        RESP2 requests written here; replies parsed by hiredis's reader (Debian's
//               libhiredis-dev 0.14: RESP2 only, hence two connections, below)
//   link        one connection on the shard's ring: connect, AUTH / SELECT, pipelined
//               requests answered in order, reconnect with backoff and jitter, a deadline
//               per request, keep-alive PINGs
//   make_broker per shard: a command link (scripts: publish, point, history) and a
//               subscriber link (SUBSCRIBE per channel watched by a home shard here)
//
// Nothing here blocks a shard: names are resolved before the shards start (redis_target
// holds an address), and every socket is an outbound connection of the shard's ring.
#pragma once

#include <ringcast/core.h>
#include <ringcast/pubsub.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;
struct redisReply;

namespace ringcast::redis {

// ---- settings -------------------------------------------------------------------------------

/// Where Redis is and how to talk to it: --redis-url, resolved.
struct redis_target {
    std::string host = "127.0.0.1"; ///< as given (logs); `address` is what is dialled
    peer_address address;
    std::string username; ///< AUTH username (Redis 6 ACL); empty: AUTH with the password only
    std::string password; ///< empty: no AUTH
    uint32_t db = 0;      ///< SELECT db when not 0
    /// Key and channel prefix (--redis-prefix): every key and pub/sub channel ringcast uses
    /// starts with it and ':' (docs/scaling.md "Keys").
    std::string prefix = "ringcast";
};

/// A redis:// URL taken apart: redis://[[user]:password@]host[:port][/db]. Percent-escapes
/// in user and password are decoded. The host is not resolved here.
struct redis_url {
    std::string host;
    uint16_t port = 6379;
    std::string username;
    std::string password;
    uint32_t db = 0;
};
/// Parses `url`; the error is a sentence naming what is wrong ("redis:// URL has no host").
result<redis_url, std::string> parse_redis_url(std::string_view url);

/// --redis-url and --redis-prefix into a target: parses the URL and resolves its host
/// (getaddrinfo: blocking, so at start-up on the main thread, never on a shard). The error
/// is a sentence naming the URL (its password masked).
result<redis_target, std::string> resolve_target(std::string_view url, std::string prefix);

/// Timings of a link (tests shorten them).
struct link_timing {
    /// Reconnect backoff: the first retry after base_ms, doubling to cap_ms, each delay
    /// drawn uniformly from [delay/2, delay] (jitter, so nodes do not reconnect in step).
    uint32_t backoff_base_ms = 100;
    uint32_t backoff_cap_ms = 5000;
    uint32_t connect_timeout_ms = 3000;
    /// A request unanswered this long closes the link (Redis stuck or the path gone).
    uint32_t reply_timeout_ms = 5000;
    /// Idle this long → PING, so a dead peer is found within idle + reply timeout.
    uint32_t ping_idle_ms = 5000;
};

// ---- RESP -----------------------------------------------------------------------------------

/// Appends one request as a RESP array of bulk strings (the unified request protocol).
void append_command(std::string& out, std::span<const std::string_view> args);

/// One reply as hiredis built it, owned (freeReplyObject on destruction).
struct reply_deleter {
    void operator()(redisReply* r) const noexcept;
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

/// Views into a reply: what the broker reads, without hiredis's struct in its code.
enum class reply_type : uint8_t { string, array, integer, nil, status, error };
reply_type type_of(const redisReply& r) noexcept;
std::string_view text_of(const redisReply& r) noexcept; ///< string, status, error
long long integer_of(const redisReply& r) noexcept;
std::span<redisReply* const> elements_of(const redisReply& r) noexcept; ///< array

/// Incremental reply parser over hiredis's redisReader, with a bound on what it buffers
/// for one unfinished reply.
class reply_reader {
public:
    explicit reply_reader(std::size_t max_buffered_bytes = std::size_t{256} << 20);
    ~reply_reader();
    reply_reader(const reply_reader&) = delete;
    reply_reader& operator=(const reply_reader&) = delete;
    /// Adds bytes; false when the reader refuses them (out of memory or over the bound).
    bool feed(std::span<const std::byte> bytes) noexcept;
    /// The next complete reply, or null when more bytes are needed. `error` is set (and
    /// null returned) when the stream is not RESP: the connection must go.
    reply_ptr next(std::string& error) noexcept;
    /// Drops everything buffered (a new connection).
    void reset() noexcept;

private:
    redisReader* _reader;
    std::size_t _max;
};

// ---- link -----------------------------------------------------------------------------------

/// Counters of one link (gathered into /api/stats and /metrics as ringcast_redis_*).
struct link_stats {
    bool up = false;
    uint64_t connects = 0;        ///< connections that came up (AUTH/SELECT done)
    uint64_t connect_failures = 0; ///< attempts that did not
    uint64_t disconnects = 0;     ///< up links that went down
    uint64_t requests = 0;
    uint64_t errors = 0;          ///< error replies
    uint64_t pending = 0;         ///< requests sent and not answered (gauge)
    uint64_t pushes = 0;          ///< pub/sub messages received
};

/// What a link's owner hears; on the shard's thread.
class link_owner {
public:
    virtual ~link_owner() = default;
    /// The link came up (handshake done): requests may be sent.
    virtual void on_up(class link& l) noexcept = 0;
    /// The link went down: every pending request was answered with null first.
    virtual void on_down(class link& l) noexcept = 0;
    /// The reply to the request sent with `tag`, or null when the link went down first.
    virtual void on_reply(class link& l, uint64_t tag, const redisReply* r) noexcept = 0;
    /// A reply no request waits for: a pub/sub "message" on a subscriber link.
    virtual void on_push(class link& l, const redisReply& r) noexcept = 0;
    /// Once a second while the link is up. Nothing by default.
    virtual void on_tick(class link& l) noexcept { (void)l; }
    /// The deadline given to link::wake_at() has come (the link is still up). Nothing by
    /// default.
    virtual void on_wake(class link& l) noexcept { (void)l; }
};

/// One connection to Redis on the shard's ring (see the file comment).
///
///   idle ──start──► connecting ──open──► handshaking ──replies ok──► up
///     ▲                 │ fail               │ error / close           │ close, timeout,
///     └── backoff ◄─────┴────────────────────┴─────────────────────────┘ protocol error
///
/// Requests are sent only while up (send() refuses otherwise) and answered in order; the
/// link never queues a request across a reconnect (its owner re-sends what still matters).
class link final : public core::outbound_client {
public:
    link(core::conn_io& io, core::outbound_connector& connector, const redis_target& target,
         std::string name, link_owner& owner, link_timing timing = {});
    ~link() override;
    link(const link&) = delete;
    link& operator=(const link&) = delete;

    /// Starts connecting (once; afterwards it reconnects by itself until stop()).
    void start() noexcept;
    /// Closes and stays down (the shard is stopping).
    void stop() noexcept;
    bool up() const noexcept { return _state == state::up; }
    /// Sends one request answered to on_reply(`tag`). False when the link is not up or is
    /// over its bound of pending requests (`max_pending`): the caller answers failure.
    bool send(std::span<const std::string_view> args, uint64_t tag) noexcept;
    /// The most requests one link keeps in flight.
    static constexpr std::size_t max_pending = 65536;
    const link_stats& stats() const noexcept { return _stats; }
    const std::string& name() const noexcept { return _name; }
    /// Calls the owner's on_wake() at or soon after `deadline_ms` (monotonic, conn_io's
    /// clock): a retry's delay without a timer of the owner's own. Only while up (false
    /// otherwise: on_up comes first then); a later call replaces the deadline, and a link
    /// that goes down forgets it.
    bool wake_at(uint64_t deadline_ms) noexcept;

    // core::outbound_client
    void on_connect_result(conn_handle h, std::error_code error) noexcept override;
    void on_data(conn_handle h, std::span<std::byte> bytes) noexcept override;
    void on_timer(conn_handle h, core::conn_timer which) noexcept override;
    void on_shutdown(conn_handle h) noexcept override;
    void on_closed(conn_handle h) noexcept override;

private:
    enum class state : uint8_t { idle, connecting, handshaking, up, stopped };
    /// Tags of the link's own requests (handshake, keep-alive PING), never an owner's.
    static constexpr uint64_t handshake_tag = ~uint64_t{0};
    static constexpr uint64_t ping_tag = ~uint64_t{0} - 1;
    void connect_after(uint32_t delay_ms) noexcept;
    void write(std::span<const std::string_view> args, uint64_t tag) noexcept;
    void fail(std::string_view why) noexcept;
    void arm_timer() noexcept;

    core::conn_io& _io;
    core::outbound_connector& _connector;
    redis_target _target;
    std::string _name;
    link_owner& _owner;
    link_timing _timing;
    state _state = state::idle;
    conn_handle _h{};
    bool _have_handle = false;
    reply_reader _reader;
    struct sent {
        uint64_t tag;
        uint64_t at_ms;
    };
    std::deque<sent> _pending;
    uint32_t _handshake_left = 0;
    core::reconnect_backoff _backoff; // reset once a connection is up
    uint64_t _last_rx_ms = 0;
    link_stats _stats;
    std::string _out; // one request being written (reused)
};

// ---- broker ---------------------------------------------------------------------------------

/// Builds the broker of the shard that owns `io`, connecting through `connector`. Starts
/// connecting at once.
std::unique_ptr<pubsub::broker> make_broker(core::conn_io& io, core::outbound_connector& connector,
                                         const redis_target& target, link_timing timing = {});

} // namespace ringcast::redis
