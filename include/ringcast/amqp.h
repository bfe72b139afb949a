// ringcast amqp — an AMQP 0-9-1 client on the shard's ring, for the RabbitMQ bridge
// (src/bridge/amqp.cc, docs/bridges.md).
//
//   url       amqp://[USER[:PASSWORD]@]HOST[:PORT][/VHOST], resolved before the shards start
//   frames    frame_splitter: bytes → frames (type, channel, payload), bounded by frame-max,
//             checked for the frame-end octet; pure, so tests and the fuzzer drive it alone
//   codec     method and content-header payloads decoded by librabbitmq's codec
//             (amqp_decode_method, amqp_decode_properties; Debian's librabbitmq-dev 0.11)
//             behind ringcast's own checks, and methods encoded by amqp_encode_method
//   link      one connection: protocol header, Start/Start-Ok (PLAIN), Tune/Tune-Ok, Open,
//             channel 1 open, heartbeats, deliveries assembled from deliver + header +
//             body frames, reconnect with backoff and jitter
//
// Only the codec is librabbitmq's: its connection code blocks on a socket, so the framing,
// the handshake and the heartbeats are written here, on the shard's outbound connection
// (core::outbound_client). Nothing here blocks a shard, and nothing the broker sends can
// make it buffer past frame-max (a body past max_body_bytes is counted, not kept).
#pragma once

#include <ringcast/core.h>

#include <amqp.h>
#include <amqp_framing.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::amqp {

// ---- settings -------------------------------------------------------------------------------

/// An amqp:// URL taken apart (RabbitMQ's URI spec): no user means guest/guest, no path the
/// vhost "/", and an empty path ("amqp://host/") the vhost "/" too (as pika reads it);
/// percent-escapes in user, password and vhost are decoded ("%2f" is "/").
struct amqp_url {
    std::string host;
    uint16_t port = 5672;
    std::string username = "guest";
    std::string password = "guest";
    std::string vhost = "/";
};
/// Parses `url`; the error is a sentence naming what is wrong. amqps:// is refused (no TLS
/// yet: docs/bridges.md).
result<amqp_url, std::string> parse_amqp_url(std::string_view url);

/// Where the broker is: the URL with its host resolved.
struct amqp_target {
    std::string host; ///< HOST:PORT as given (logs); `address` is what is dialled
    peer_address address;
    std::string username;
    std::string password;
    std::string vhost;
};
/// Parses `url` and resolves its host (getaddrinfo: blocking, so at start-up on the main
/// thread, never on a shard). The error is a sentence naming the host.
result<amqp_target, std::string> resolve_target(std::string_view url);

// ---- frames (AMQP 0-9-1 §2.3.5, §4.2.3) -----------------------------------------------------

/// A frame as the wire carries it: type octet, channel (short), size (long), `size` octets of
/// payload, then the frame-end octet 0xCE.
inline constexpr std::size_t frame_header_bytes = 7;
inline constexpr std::size_t frame_overhead_bytes = frame_header_bytes + 1;
inline constexpr uint8_t frame_end = 0xCE;
/// §4.2.3: frame-max is at least 4096, and until Tune says more no frame may be larger.
inline constexpr uint32_t frame_min_bytes = 4096;
/// The frame-max ringcast asks for in Tune-Ok (the broker's, if smaller): RabbitMQ's own
/// default, 128 KiB; a body is split across frames of this size, so it bounds what one read
/// holds, not how large a message may be.
inline constexpr uint32_t frame_max_bytes = 131072;

enum class frame_type : uint8_t { method = 1, header = 2, body = 3, heartbeat = 8 };

struct frame {
    frame_type type = frame_type::heartbeat;
    uint16_t channel = 0;
    std::span<const std::byte> payload; ///< valid until the splitter's next feed() or reset()
};

enum class split_status : uint8_t {
    frame,     ///< `out` holds the next frame
    need_more, ///< no whole frame buffered
    error,     ///< the stream is not AMQP (a bad type or end octet, a frame past frame-max);
               ///< sticky until reset(): the connection must go
};

/// Cuts a byte stream into frames. Buffers at most one frame (frame-max) plus the bytes of
/// one read beyond it; a frame whose size field is past frame-max is an error before any of
/// its payload is buffered.
///
///   feed(bytes) ──► next() ─► frame ─► next() ─► … ─► need_more ──► feed(…)
///                        └──► error (sticky)
class frame_splitter {
public:
    explicit frame_splitter(uint32_t max_frame_bytes = frame_min_bytes) noexcept
        : _max(max_frame_bytes) {}
    /// The frame-max Tune agreed (never below frame_min_bytes). Applies to the next frame.
    void set_max_frame_bytes(uint32_t bytes) noexcept;
    uint32_t max_frame_bytes() const noexcept { return _max; }
    /// Adds bytes (copied). Invalidates the payload of a frame next() gave before.
    void feed(std::span<const std::byte> bytes);
    /// The next whole frame; `error` is a static sentence when it answers error.
    split_status next(frame& out, std::string_view& error) noexcept;
    /// Bytes buffered and not yet given out as frames.
    std::size_t buffered() const noexcept { return _buf.size() - _start; }
    /// Drops everything (a new connection) and goes back to frame_min_bytes.
    void reset() noexcept;

private:
    std::vector<std::byte> _buf;
    std::size_t _start = 0; // the first byte not given out yet
    uint32_t _max;
    std::string_view _error; // non-empty: failed
};

// ---- codec ----------------------------------------------------------------------------------

/// Field tables nested deeper than this are refused before librabbitmq decodes them: its
/// table decoder recurses once per level, and a 128 KiB frame could otherwise nest ~26 000
/// levels (5 bytes each) on the shard's stack. Nothing RabbitMQ sends nests past 3.
inline constexpr int max_table_depth = 16;

/// Checks the field table at `bytes[at..]` (§4.2.5.5: a long size, then name/value pairs)
/// without recursion: every value well-formed and inside the table, no table or array nested
/// past `max_depth`. True when librabbitmq may decode it.
bool table_within(std::span<const std::byte> bytes, std::size_t at, int max_depth) noexcept;

/// Decoded methods and properties, allocated in pools (librabbitmq's amqp_pool_t): methods
/// in one that recycle() empties after each frame, a content header's properties in one
/// that recycle_content() empties once its delivery is handed over. One per connection.
class codec {
public:
    codec() noexcept;
    ~codec();
    codec(const codec&) = delete;
    codec& operator=(const codec&) = delete;

    /// A method frame's payload: its number (class << 16 | method) and librabbitmq's
    /// struct of its arguments (amqp_connection_start_t, amqp_basic_deliver_t, …), in the
    /// pool; its strings point into `payload`. Only methods a server sends a consumer are
    /// decoded (is_server_method); anything else, a short payload or malformed arguments
    /// give false with `error` set.
    bool decode_method(std::span<const std::byte> payload, uint32_t& id, void*& decoded,
                       std::string_view& error) noexcept;
    /// A content header frame's payload (§4.2.6.1): class, body size and, for the basic
    /// class, the properties (amqp_basic_properties_t in the content pool; its strings point
    /// into `payload`, which must live as long as they are read). False with `error` set
    /// when it is short, not the basic class, or its headers table is malformed or too deep.
    bool decode_header(std::span<const std::byte> payload, uint64_t& body_size,
                       const amqp_basic_properties_t*& properties,
                       std::string_view& error) noexcept;
    /// Frees what decode_method allocated (the pointers it gave are dead afterwards).
    void recycle() noexcept;
    /// Frees what decode_header allocated.
    void recycle_content() noexcept;

private:
    amqp_pool_t _pool;
    amqp_pool_t _content_pool;
};

/// The methods a broker sends a consuming client: connection.start/tune/open-ok/close/
/// close-ok/blocked/unblocked, channel.open-ok/flow/close/close-ok, exchange.declare-ok,
/// queue.declare-ok/bind-ok, basic.qos-ok/consume-ok/cancel/cancel-ok/deliver. The codec
/// decodes no other (a table-carrying method a broker never sends is not even looked at).
bool is_server_method(uint32_t id) noexcept;

/// Appends one method frame on `channel` (encoded by amqp_encode_method). False when the
/// arguments do not encode within frame_min_bytes (a name past 255 bytes): nothing appended.
bool append_method(std::string& out, uint16_t channel, uint32_t id, void* arguments);
/// Appends a heartbeat frame (§4.2.7: type 8, channel 0, no payload).
void append_heartbeat(std::string& out);
/// The protocol header a client opens with (§4.2.2).
inline constexpr std::string_view protocol_header{"AMQP\x00\x00\x09\x01", 8};

/// librabbitmq's bytes as a view (empty for a null pointer).
inline std::string_view view(const amqp_bytes_t& b) noexcept {
    return b.bytes == nullptr ? std::string_view{}
                              : std::string_view(static_cast<const char*>(b.bytes), b.len);
}
/// A view as librabbitmq's bytes (not owned; for encoding only).
inline amqp_bytes_t bytes_of(std::string_view s) noexcept {
    return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

// ---- link -----------------------------------------------------------------------------------

/// Timings of a link (tests shorten them).
struct link_timing {
    /// Reconnect backoff: the first retry after base_ms, doubling to cap_ms, each delay
    /// drawn uniformly from [delay/2, delay] (jitter, so nodes do not reconnect in step).
    uint32_t backoff_base_ms = 200;
    uint32_t backoff_cap_ms = 5000;
    uint32_t connect_timeout_ms = 3000;
    /// From TCP open to channel 1 open; a broker that stalls the handshake is left.
    uint32_t handshake_timeout_ms = 10000;
    /// The heartbeat ringcast asks for in Tune-Ok (the broker's, if smaller and not 0). A
    /// heartbeat goes out every half of it, and a broker silent for two of it is taken for
    /// dead (§4.2.7). 10 s: a lost broker is found within 20 s; RabbitMQ suggests 60 s.
    uint32_t heartbeat_s = 10;
};

/// Counters of one link.
struct link_stats {
    bool up = false;               ///< channel 1 open
    uint64_t connects = 0;         ///< connections that got channel 1 open
    uint64_t connect_failures = 0; ///< attempts that did not (refused, handshake failed)
    uint64_t disconnects = 0;      ///< up connections that went down
    uint64_t protocol_errors = 0;  ///< connections closed for a malformed frame or method
};

/// One message as the broker delivered it on channel 1: basic.deliver, its content header
/// and its body, whole. Views valid for the call they are given to.
struct delivery {
    uint64_t delivery_tag = 0;
    bool redelivered = false;
    std::string_view consumer_tag;
    std::string_view exchange;
    std::string_view routing_key;
    const amqp_basic_properties_t* properties = nullptr; ///< never null in on_delivery
    std::string_view body;       ///< empty when body_too_large
    uint64_t body_bytes = 0;     ///< the content header's body size
    bool body_too_large = false; ///< past max_body_bytes: counted through, not kept
};

/// What a link's owner hears; on the shard's thread.
class link_owner {
public:
    virtual ~link_owner() = default;
    /// The connection is open and channel 1 with it: declare, bind, consume.
    virtual void on_open(class link& l) noexcept = 0;
    /// The connection went down (after on_open): every delivery not acknowledged is the
    /// broker's again, and its tag means nothing on the next connection.
    virtual void on_down(class link& l) noexcept = 0;
    /// A method on channel 1 other than deliver, flow and close (a declare-ok, consume-ok,
    /// the broker's basic.cancel): `id` and librabbitmq's struct, valid for the call.
    virtual void on_method(class link& l, uint32_t id, const void* arguments) noexcept = 0;
    /// A whole delivery on channel 1.
    virtual void on_delivery(class link& l, const delivery& d) noexcept = 0;
    /// The deadline given to link::wake_at() has come (the link is still up).
    virtual void on_wake(class link& l) noexcept { (void)l; }
};

/// One connection to the broker on the shard's ring, with one channel (1).
///
///   idle ──start──► connecting ──open──► handshaking ──channel 1 open-ok──► up
///     ▲                 │ fail               │ error / close / timeout        │ close,
///     └── backoff ◄─────┴────────────────────┴────────────────────────────────┘ error
///
/// A broker's connection.close or channel.close is answered (close-ok) and the connection
/// is left: the owner starts over on the next one (a channel error means a declare its
/// owner made was refused, which retrying on the same connection would not fix).
class link final : public core::outbound_client {
public:
    link(core::conn_io& io, core::outbound_connector& connector, const amqp_target& target,
         link_owner& owner, link_timing timing = {});
    ~link() override;
    link(const link&) = delete;
    link& operator=(const link&) = delete;

    /// Starts connecting (once; afterwards it reconnects by itself until stop()).
    void start() noexcept;
    /// Closes and stays down (the shard is stopping).
    void stop() noexcept;
    bool up() const noexcept { return _state == state::up; }
    /// Sends method `id` with `arguments` (librabbitmq's struct) on channel 1. False when
    /// the link is not up, the broker is not reading (too much output queued) or the
    /// arguments do not encode: the caller treats it as a lost connection.
    bool send(uint32_t id, void* arguments) noexcept;
    /// Leaves the connection (logged with `why`) and connects again after the backoff: for
    /// an owner whose state on the broker went away (its consumer cancelled).
    void reconnect(std::string_view why) noexcept;
    /// Calls the owner's on_wake() at or soon after `deadline_ms` (conn_io's clock). Only
    /// while up; a later call replaces the deadline, and a link that goes down forgets it.
    bool wake_at(uint64_t deadline_ms) noexcept;
    /// The owner's set-up on the new connection succeeded: the next loss reconnects after
    /// the base delay again. Until then the backoff keeps growing across connections, so
    /// a broker that accepts the connection and refuses a declaration every time is not
    /// retried in a tight loop.
    void settled() noexcept { _backoff.reset(); }
    /// Bodies longer than this are counted through and handed over empty (body_too_large).
    void set_max_body_bytes(std::size_t bytes) noexcept { _max_body = bytes; }
    const link_stats& stats() const noexcept { return _stats; }
    const amqp_target& target() const noexcept { return _target; }

    // core::outbound_client
    void on_connect_result(conn_handle h, std::error_code error) noexcept override;
    void on_data(conn_handle h, std::span<std::byte> bytes) noexcept override;
    void on_timer(conn_handle h, core::conn_timer which) noexcept override;
    void on_shutdown(conn_handle h) noexcept override;
    void on_closed(conn_handle h) noexcept override;

private:
    enum class state : uint8_t { idle, connecting, handshaking, up, stopped };
    /// Where a delivery's content is (§4.2.6: deliver, then a header, then body frames).
    enum class content : uint8_t { none, want_header, want_body };

    void connect_after(uint32_t delay_ms) noexcept;
    void write_method(uint16_t channel, uint32_t id, void* arguments) noexcept;
    void flush() noexcept;
    void fail(std::string_view why, bool protocol_error) noexcept;
    bool on_frame(const frame& f) noexcept;
    bool on_connection_method(uint32_t id, const void* arguments) noexcept;
    bool on_channel_method(uint32_t id, const void* arguments) noexcept;
    bool on_content(const frame& f) noexcept;
    void deliver() noexcept;
    void arm_timer() noexcept;

    core::conn_io& _io;
    core::outbound_connector& _connector;
    amqp_target _target;
    link_owner& _owner;
    link_timing _timing;
    state _state = state::idle;
    conn_handle _h{};
    bool _have_handle = false;
    frame_splitter _splitter;
    codec _codec;
    std::size_t _max_body = std::size_t{1} << 20;
    uint32_t _heartbeat_ms = 0; // agreed; 0: none
    uint64_t _opened_ms = 0;    // TCP open: the handshake deadline counts from it
    uint64_t _last_rx_ms = 0;
    uint64_t _last_tx_ms = 0;
    core::reconnect_backoff _backoff; // across connections until reset (see settled)
    link_stats _stats;
    std::string _out; // frames of this pass not sent yet
    // The delivery being assembled.
    content _content = content::none;
    uint64_t _tag = 0;
    bool _redelivered = false;
    std::string _consumer_tag, _exchange, _routing_key;
    std::string _header; // the content header's bytes: _properties' strings point into them
    const amqp_basic_properties_t* _properties = nullptr;
    uint64_t _body_size = 0;
    uint64_t _body_seen = 0;
    std::string _body;
};

} // namespace ringcast::amqp
