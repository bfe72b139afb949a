// ringcast core — the vocabulary every module shares.
//
// What it owns: the small value types that cross module boundaries (result<T>, handles,
// ids), the always-on invariant check, the framed-message buffer (frame once, deliver by
// reference) and the two interfaces between the shard runtime and the protocol code above
// it: conn_io (what a protocol may ask of its shard) and conn_handler (what the shard tells
// the protocol). The runtime itself (io_uring loop, buffer ring, connection slots, send
// queues, timer wheel) is private to src/core; start it with core::run_shards().
//
// Data path: core reaps a receive → conn_handler::on_data (src/net) → ws/http parsers →
// the protocol answers with conn_io::send(frame_ref) → core gathers queued frames into one
// sendmsg. Everything here runs on one shard's thread unless it says otherwise.
// Never: throw or block on the data path.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <concepts>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

/// Always-on invariant check: continuing after a broken invariant (ring index, slot
/// generation, refcount underflow) would corrupt state, so it aborts with the location.
#define RINGCAST_ASSERT(cond)                                                                      \
    do {                                                                                           \
        if (!(cond)) [[unlikely]] {                                                                \
            ::ringcast::detail::assert_failed(#cond, __FILE__, __LINE__);                          \
        }                                                                                          \
    } while (0)

#ifdef NDEBUG
#define RINGCAST_DEBUG_ASSERT(cond) ((void)0)
#else
#define RINGCAST_DEBUG_ASSERT(cond) RINGCAST_ASSERT(cond)
#endif

namespace ringcast {

namespace detail {
[[noreturn, gnu::cold]] inline void assert_failed(const char* what, const char* file,
                                                  int line) noexcept {
    // Raw, not through log.h: the last words before abort must not depend on the log's
    // state (a line half-built on this thread, a format); operations.md "Logs" says so.
    std::fprintf(stderr, "ringcast: invariant broken: %s at %s:%d\n", what, file, line);
    std::abort();
}
} // namespace detail

/// The error side of a result<T>, spelled like std::unexpected.
template <typename E> struct unexpected { E error; };
template <typename E> unexpected(E) -> unexpected<E>;

/// A value or an error, shaped like C++23 std::expected so it can become an alias when the
/// toolchain moves past g++ 12 (whose <expected> needs -std=c++2b). No exceptions: value()
/// on an error is an invariant violation.
template <typename T, typename E = std::error_code> class [[nodiscard]] result {
public:
    using value_type = T;
    using error_type = E;

    template <typename U = T>
    requires std::is_constructible_v<T, U&&> result(U&& v)
    noexcept(std::is_nothrow_constructible_v<T, U&&>) // NOLINT: implicit by design
        : _has_value(true) {
        ::new (&_value) T(std::forward<U>(v));
    }
    result(unexpected<E> e) noexcept : _has_value(false) { ::new (&_error) E(std::move(e.error)); }

    result(const result& o) : _has_value(o._has_value) {
        if (_has_value) {
            ::new (&_value) T(o._value);
        } else {
            ::new (&_error) E(o._error);
        }
    }
    result(result&& o) noexcept : _has_value(o._has_value) {
        if (_has_value) {
            ::new (&_value) T(std::move(o._value));
        } else {
            ::new (&_error) E(std::move(o._error));
        }
    }
    result& operator=(result o) noexcept {
        this->~result();
        ::new (this) result(std::move(o));
        return *this;
    }
    ~result() {
        if (_has_value) {
            _value.~T();
        } else {
            _error.~E();
        }
    }

    bool has_value() const noexcept { return _has_value; }
    explicit operator bool() const noexcept { return _has_value; }

    T& value() & noexcept {
        RINGCAST_ASSERT(_has_value);
        return _value;
    }
    const T& value() const& noexcept {
        RINGCAST_ASSERT(_has_value);
        return _value;
    }
    T&& value() && noexcept {
        RINGCAST_ASSERT(_has_value);
        return std::move(_value);
    }
    const E& error() const noexcept {
        RINGCAST_ASSERT(!_has_value);
        return _error;
    }
    template <typename U> T value_or(U&& fallback) const& {
        return _has_value ? _value : static_cast<T>(std::forward<U>(fallback));
    }

    T& operator*() & noexcept { return value(); }
    const T& operator*() const& noexcept { return value(); }
    T* operator->() noexcept { return &value(); }
    const T* operator->() const noexcept { return &value(); }

private:
    union {
        T _value;
        E _error;
    };
    bool _has_value;
};

/// result<void>: success or an error.
template <typename E> class [[nodiscard]] result<void, E> {
public:
    result() noexcept : _has_value(true) {}
    result(unexpected<E> e) noexcept : _error(std::move(e.error)), _has_value(false) {}

    bool has_value() const noexcept { return _has_value; }
    explicit operator bool() const noexcept { return _has_value; }
    void value() const noexcept { RINGCAST_ASSERT(_has_value); }
    const E& error() const noexcept {
        RINGCAST_ASSERT(!_has_value);
        return _error;
    }

private:
    E _error{};
    bool _has_value;
};

/// Builds the error side of a result from a positive errno value.
inline unexpected<std::error_code> errno_error(int err) noexcept {
    return unexpected{std::error_code(err, std::system_category())};
}

/// Index of a shard: 0 .. shards-1. Shard i runs on the i-th CPU of the affinity mask.
enum class shard_id : uint16_t {};

/// Address family of a connection's peer.
enum class ip_family : uint8_t { unknown, v4, v6 };

/// Where a connection came from, as its accept reported it: a plain value, copied freely.
/// An IPv4 peer of a dual-stack IPv6 listener is reported as IPv4 (::ffff:a.b.c.d becomes
/// a.b.c.d), so one client has one address whatever the listener. A closed handle's peer
/// (and a peer accept could not describe) is ip_family::unknown, which is not loopback.
struct peer_address {
    ip_family family = ip_family::unknown;
    uint16_t port = 0;               ///< host byte order
    std::array<uint8_t, 16> bytes{}; ///< network byte order; IPv4 uses the first 4

    /// 127.0.0.0/8 or ::1: the peer is on this host. What the backend API trusts when no
    /// API key is configured.
    bool loopback() const noexcept {
        switch (family) {
        case ip_family::v4:
            return bytes[0] == 127;
        case ip_family::v6:
            return std::all_of(bytes.begin(), bytes.begin() + 15,
                               [](uint8_t b) { return b == 0; }) &&
                   bytes[15] == 1;
        case ip_family::unknown:
            return false;
        }
        return false;
    }
    /// "192.0.2.7" or "2001:db8::1" (no port), for log lines; allocates.
    std::string text() const;
};

/// Reads a numeric address as written: IPv4 as exactly four decimal numbers 0-255 joined
/// by '.', without leading zeros ("010.0.0.1" could mean octal); IPv6 in RFC 4291 text form
/// (hex groups of 1-4 digits, one "::", a trailing dotted quad allowed). The port is 0, and
/// an IPv4-mapped IPv6 address stays IPv6 (peer_address's rule is for accepted peers).
/// Nothing else: no spaces, brackets, zone ids ("%eth0"), names or shorthand ("127.1").
std::optional<peer_address> parse_ip_address(std::string_view text) noexcept;

/// An IPv4 or IPv6 network: the leading `bits` of `network` (its port unused). What
/// --proxy-protocol-from lists: the addresses trusted to name their clients' addresses.
struct address_prefix {
    peer_address network; ///< host bits beyond `bits` are zero (parse_address_prefix)
    uint8_t bits = 0;     ///< 0-32 for IPv4, 0-128 for IPv6

    /// True when `a` is of the network's family and its first `bits` bits match. An IPv4
    /// network never contains an IPv6 address (IPv4-mapped peers are IPv4 already: see
    /// peer_address), and nothing contains ip_family::unknown.
    bool contains(const peer_address& a) const noexcept;
    /// "10.0.0.0/8", "2001:db8::/32"; allocates.
    std::string text() const;
};

/// Reads "ADDRESS/BITS" or a lone ADDRESS (all its bits: /32, /128), ADDRESS a numeric IPv4
/// (dotted quad, no leading zeros) or IPv6 address. Refused: another form, BITS past the
/// family's width or with a sign or leading zero, and host bits set beyond BITS
/// ("10.0.0.1/8": a trust list must say exactly what it means). The error is a sentence
/// naming the text.
result<address_prefix, std::string> parse_address_prefix(std::string_view text);

/// A connection slot on its shard plus the slot's generation when the handle was taken.
/// A handle whose generation no longer matches the slot's refers to a closed connection:
/// every use checks it, so a stale completion or timer can never touch a reused slot.
struct conn_handle {
    uint32_t slot = 0;
    uint32_t generation = 0;
    friend bool operator==(conn_handle, conn_handle) = default;
};

namespace core {

/// An immutable, reference-counted buffer holding one complete wire message (a WebSocket
/// frame with its header, or an HTTP response). Built once by its producer, then shared by
/// every connection that sends it: a send queue holds a frame_ref, never a copy.
///
///   make_frame(n) ──fill data()──► frame_ref (refs=1) ──copies──► refs=k ──last release──► freed
///
/// A frame may splice another frame's bytes into its own (make_spliced_frame): its wire
/// bytes are then own[0, split) + body + own[split, own_size), and it holds a reference to
/// the body. That is how one large payload published to many channels is held once: each
/// channel's frame owns only its header and envelope fields, all of them share the body.
///
///   own:  [ ws header | {"id":…,"data": ][ ,"priority":…,"offset":N} ]
///                                        ▲ split
///   body:                     [ payload bytes, shared by every channel's frame ]
///
/// The count is atomic so a frame may be shared across shards (pubsub fan-out); within a
/// shard the increments are uncontended.
class frame_ref;
frame_ref make_frame(std::size_t size);

class frame {
public:
    /// Wire bytes: own bytes plus the spliced body's, if any.
    std::size_t size() const noexcept { return _size + (_body != nullptr ? _body->_size : 0); }
    /// Bytes in this allocation (the wire bytes minus the spliced body).
    std::size_t own_size() const noexcept { return _size; }
    // The own bytes follow the header in the same allocation.
    const std::byte* data() const noexcept { return reinterpret_cast<const std::byte*>(this + 1); }
    /// Writable only while the producer holds the single reference (before sharing).
    std::byte* mutable_data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
    /// The spliced body (never itself spliced), or nullptr, and where it goes in own bytes.
    const frame* body() const noexcept { return _body; }
    std::size_t split() const noexcept { return _split; }

private:
    friend class frame_ref;
    friend frame_ref make_frame(std::size_t size);
    friend frame_ref make_spliced_frame(std::size_t own_size, std::size_t split, frame_ref body);
    frame() = default;
    ~frame();
    std::atomic<uint32_t> _refs{1};
    uint32_t _size = 0;
    frame* _body = nullptr; // one reference owned, released with this frame
    uint32_t _split = 0;
    uint32_t _unused = 0;
};
// 24 B: refcount, own size, body reference and split point, then the own bytes; the
// payload stays 8-byte aligned.
static_assert(sizeof(frame) == 24, "frame header: refcount, size, body, split");

/// Splits a frame's wire bytes into at most three pieces, skipping the first `skip` bytes
/// (already sent): own[0, split), body, own[split, own_size). Returns the pieces filled.
struct frame_piece {
    const std::byte* data;
    std::size_t size;
};
unsigned frame_pieces(const frame& f, std::size_t skip, frame_piece (&out)[3]) noexcept;

/// Owning reference to a frame. Copy adds a reference, destruction releases one.
class frame_ref {
public:
    frame_ref() noexcept = default;
    frame_ref(const frame_ref& o) noexcept : _frame(o._frame) { retain(); }
    frame_ref(frame_ref&& o) noexcept : _frame(std::exchange(o._frame, nullptr)) {}
    frame_ref& operator=(frame_ref o) noexcept {
        std::swap(_frame, o._frame);
        return *this;
    }
    ~frame_ref() { release(); }

    explicit operator bool() const noexcept { return _frame != nullptr; }
    frame* get() const noexcept { return _frame; }
    frame* operator->() const noexcept { return _frame; }
    /// The wire bytes of a frame without a spliced body (responses, control frames).
    std::span<const std::byte> bytes() const noexcept {
        RINGCAST_ASSERT(_frame->body() == nullptr);
        return {_frame->data(), _frame->size()};
    }

    /// Gives up ownership without releasing: the caller now owns one reference and must
    /// hand it back with adopt().
    frame* leak() noexcept { return std::exchange(_frame, nullptr); }
    static frame_ref adopt(frame* f) noexcept {
        frame_ref r;
        r._frame = f;
        return r;
    }

private:
    friend frame_ref make_frame(std::size_t size);
    friend frame_ref make_spliced_frame(std::size_t own_size, std::size_t split, frame_ref body);
    void retain() noexcept {
        if (_frame) {
            // relaxed: a new reference is made from an existing one, which already keeps
            // the frame alive; no data is published by the increment.
            _frame->_refs.fetch_add(1, std::memory_order_relaxed);
        }
    }
    void release() noexcept;

    frame* _frame = nullptr;
};

/// Allocates a frame of `size` bytes (contents uninitialised) with one reference.
/// Allocates; the only allocation a published or echoed message costs.
frame_ref make_frame(std::size_t size);

/// Builds a frame holding a copy of `bytes` (responses, control frames).
frame_ref make_frame(std::span<const std::byte> bytes);
frame_ref make_frame(std::string_view text);

/// A frame of `own_size` own bytes (contents uninitialised) whose wire bytes splice `body`'s
/// in at `split` (0 ≤ split ≤ own_size). `body` must not itself be spliced. Allocates once.
frame_ref make_spliced_frame(std::size_t own_size, std::size_t split, frame_ref body);

/// Cross-shard messages. A module that talks to other shards declares one *kind* per
/// message: a tag type naming its payload type and a name for diagnostics,
///
///   struct publish_request { using payload = publish_job; static constexpr std::string_view name = "pubsub.publish"; };
///
/// registers a handler for every kind it receives on every shard (mesh_handlers::on), and
/// sends with conn_io::post<Kind>(to, std::unique_ptr<payload>). Ownership is in the types:
/// the sender owns the payload until post(), the mesh while it travels, the handler once
/// it is called (it receives the unique_ptr and may keep, forward or drop it). Messages
/// still travelling when the shards stop (in a ring or a producer's overflow queue) are
/// destroyed by the mesh itself, with the payload's destructor: no module frees payloads
/// by hand and none has to tell a final drain apart from normal work. Kinds need no
/// numbers: a kind's identity is its mesh_kind_info, made once per process.
template <typename K>
concept mesh_kind = requires {
    typename K::payload;
    { K::name } -> std::convertible_to<std::string_view>;
} && std::is_nothrow_destructible_v<typename K::payload>;

/// Kinds one process may declare (the handler table of each shard is an array of them).
inline constexpr uint32_t mesh_max_kinds = 32;

/// What the mesh knows of a kind: its name, how to destroy an unhandled payload, and a
/// dense index into each shard's handler table. One per kind per process.
struct mesh_kind_info {
    std::string_view name;
    void (*destroy)(void* payload) noexcept;
    uint32_t index;
};

namespace detail {
/// The next free handler-table index; asserts that fewer than mesh_max_kinds exist.
uint32_t next_mesh_kind_index() noexcept;
template <typename P> void destroy_payload(void* payload) noexcept {
    delete static_cast<P*>(payload);
}
} // namespace detail

/// The descriptor of kind K (initialised before main, in no particular order between kinds).
template <mesh_kind K>
inline const mesh_kind_info mesh_kind_info_of{K::name,
                                              &detail::destroy_payload<typename K::payload>,
                                              detail::next_mesh_kind_index()};

/// One message in a mesh ring: the kind and the payload it owns. 16 bytes, trivially
/// copyable (a ring slot is a plain copy); built only by conn_io::post().
struct mesh_message {
    const mesh_kind_info* kind = nullptr;
    void* payload = nullptr;
};
static_assert(sizeof(mesh_message) == 16);

/// One shard's handler table: which function takes each kind arriving at this shard.
/// Filled by the modules while their shard's handler is built (before messages flow),
/// used by the shard's thread only.
class mesh_handlers {
public:
    /// Makes `target.on_mesh(K{}, from, std::unique_ptr<K::payload>)` the handler of K on
    /// this shard. One handler per kind: registering a kind twice is an invariant violation.
    template <mesh_kind K, typename C> void on(C& target) noexcept {
        const mesh_kind_info& kind = mesh_kind_info_of<K>;
        RINGCAST_ASSERT(_entries[kind.index].call == nullptr);
        _entries[kind.index] = {&target, [](void* t, shard_id from, void* payload) noexcept {
                                    static_cast<C*>(t)->on_mesh(
                                        K{}, from,
                                        std::unique_ptr<typename K::payload>(
                                            static_cast<typename K::payload*>(payload)));
                                }};
    }
    /// True when this shard has a handler for `kind`.
    bool handles(const mesh_kind_info& kind) const noexcept {
        return _entries[kind.index].call != nullptr;
    }
    /// Hands `msg` and its payload to the handler of its kind. Every shard registers the
    /// same kinds, so a kind without a handler here is an invariant violation (checked at
    /// post() on the sender already; aborts naming the kind).
    void dispatch(shard_id from, const mesh_message& msg) const noexcept;
    /// Destroys `msg`'s payload unhandled: how the mesh drops what is left at exit.
    static void discard(const mesh_message& msg) noexcept {
        if (msg.kind != nullptr) {
            msg.kind->destroy(msg.payload);
        }
    }

private:
    struct entry {
        void* target = nullptr;
        void (*call)(void* target, shard_id from, void* payload) noexcept = nullptr;
    };
    std::array<entry, mesh_max_kinds> _entries{};
};

/// How a connection ends.
enum class close_mode : uint8_t {
    /// Send what is queued, then shut down our side (FIN) and wait for the peer's EOF, or
    /// the close timeout, before releasing the socket: the peer reads our last frames (a
    /// WebSocket close frame, an HTTP error) instead of a reset.
    after_flush,
    /// Release at once; queued output is dropped (dead peer, shutdown deadline).
    now,
};

/// Per-shard counters, readable after the shards stop (and later by the stats API).
struct shard_counters {
    uint64_t accepted = 0;
    uint64_t accept_errors = 0;
    /// Over --max-connections / --max-connections-total on the main listener: served in
    /// restricted mode (GET /healthz and /api/ only; an upgrade is answered 503), or, with
    /// every spare slot in use, closed unanswered (then counted in refused_unanswered too).
    uint64_t refused = 0;
    /// Closed at once without an answer: no spare slot left for one (or a reserved listener's
    /// own slots are all in use), so a flood cannot take the slots kept for answers.
    uint64_t refused_unanswered = 0;
    uint64_t refused_address_cap = 0;  ///< over --max-connections-per-ip: 429
    uint64_t refused_address_rate = 0; ///< over --connect-rate-per-ip / burst: 429
    /// Per-address entries dropped to make room while their connect bucket still refilled.
    uint64_t address_evictions = 0;
    uint64_t closed = 0; ///< accepted connections released (outbound ones: outbound_closed)
    /// conn_io::connect() calls that returned a handle (each ends in outbound_closed).
    uint64_t outbound_connects = 0;
    /// Outbound connections that never opened: refused, unreachable, past their connect
    /// timeout, cancelled by a stopping shard or abandoned by their handler.
    uint64_t outbound_connect_failures = 0;
    /// Outbound connections released, failed ones included: open ones are
    /// outbound_connects - outbound_closed.
    uint64_t outbound_closed = 0;
    uint64_t bytes_received = 0;
    uint64_t bytes_sent = 0;
    uint64_t sends = 0;
    uint64_t frames_sent = 0;
    uint64_t recv_enobufs = 0;
    uint64_t recv_rearms = 0;
    uint64_t read_pauses = 0;
    uint64_t budget_closes = 0; ///< connections closed because the shard's output was over budget
    uint64_t drain_closes = 0;  ///< client sessions closed 1001 by a drain (conn_handler::on_drain)
    /// Closes (close_mode::after_flush) cut short by --close-timeout-ms: the peer neither
    /// took the rest of the output (a slow consumer behind a full socket buffer) nor closed
    /// its side in time, so the connection was torn down as by close_mode::now.
    uint64_t close_timeouts = 0;
    /// Teardowns whose operations had not all finished --close-timeout-ms (at least 1 s)
    /// after they began (a cancel that could not stop an op): the socket was shut down
    /// both ways to end them. Expected 0; a rise means an op the cancels miss (logged:
    /// teardown_overdue).
    uint64_t teardown_overdue = 0;
    uint64_t cq_overflows = 0;
    uint64_t loop_iterations = 0;
    /// Log lines this shard left out over their call site's limit (log.h): copied from the
    /// shard thread's own count once a loop pass.
    uint64_t log_suppressed = 0;
};

/// A distribution of values over fixed bucket bounds, for the latency and queue-depth
/// histograms of GET /metrics and /api/stats (src/admin/stats.h renders it).
///
///   bounds:   b0      b1      b2   …   bN-1
///   counts: [ ≤b0 ][ ≤b1 ][ ≤b2 ] … [ ≤bN-1 ][ >bN-1 ]     (N + 1 buckets, not cumulative)
///
/// `counts[i]` holds the values v with bounds[i-1] < v ≤ bounds[i] (Prometheus' `le`), the
/// last one every value above the last bound. Plain integers: one writer, the shard that
/// owns it; another shard sees a copy (a gather answer), never the original. record() is
/// branch-light, never allocates or locks (a linear scan of ≤ 20 bounds beats a binary
/// search on this size), so it may sit on the data path; merge() adds another shard's copy.
template <const auto& Bounds> struct histogram {
    static constexpr std::size_t buckets = std::size(Bounds) + 1;
    static constexpr std::span<const uint64_t> bounds() noexcept { return Bounds; }

    std::array<uint64_t, buckets> counts{};
    uint64_t count = 0;
    uint64_t sum = 0;

    void record(uint64_t value) noexcept {
        std::size_t i = 0;
        while (i < std::size(Bounds) && value > Bounds[i]) {
            ++i;
        }
        ++counts[i];
        ++count;
        sum += value;
    }
    void merge(const histogram& other) noexcept {
        for (std::size_t i = 0; i < buckets; ++i) {
            counts[i] += other.counts[i];
        }
        count += other.count;
        sum += other.sum;
    }
};

/// Publish-to-send latency buckets in microseconds, log-spaced 1-2.5-5 from 10 µs to
/// 2.5 s: a loop pass on an idle shard is ~10 µs, a mesh hop tens of µs, and past seconds
/// the number matters less than that it is an outlier (the +Inf bucket).
inline constexpr uint64_t latency_bounds_us[] = {10,     25,     50,     100,     250,    500,
                                                 1000,   2500,   5000,   10000,   25000,  50000,
                                                 100000, 250000, 500000, 1000000, 2500000};
/// Queued output of one connection in bytes (send_queue::cost_bytes, so an empty queue is
/// 0 and one small frame ~100 B), by fours from 1 KiB to 16 MiB: the slow-consumer default
/// (4 MiB) and its drop marks (½, ¾) fall on or between bounds.
inline constexpr uint64_t queue_depth_bounds_bytes[] = {0,         1u << 10,   4u << 10, 16u << 10,
                                                        64u << 10, 256u << 10, 1u << 20, 2u << 20,
                                                        3u << 20,  4u << 20,   16u << 20};
using latency_histogram = histogram<latency_bounds_us>;
using queue_depth_histogram = histogram<queue_depth_bounds_bytes>;

/// CLOCK_MONOTONIC in microseconds: one clock for every thread of the host, so a stamp
/// taken on one shard may be subtracted from a reading on another (the publish latency).
/// A vDSO call, ~20 ns; the loop's cached now_ms() is too coarse for latencies.
uint64_t monotonic_us() noexcept;

/// The timers of a connection: independent deadlines, each on_timer() call says which one
/// expired. Kept in the shard's timer wheel (10 ms ticks), 16 B per timer per slot, no
/// kernel timer. Once a connection is closing, its timers are the shard's: liveness then
/// bounds the close (close_timeout_ms) and the others are disarmed.
enum class conn_timer : uint8_t {
    /// The protocol's clock: handshake, keep-alive, ping, pong and idle deadlines.
    liveness,
    /// A deadline after which the connection may not stay open (a token's expiry), kept
    /// apart so that the liveness clock, re-armed on every read, does not move it.
    expiry,
    /// When a message the connection has not acknowledged is due to be sent again.
    acks,
};
inline constexpr uint32_t conn_timer_count = 3;

/// Where conn_io::connect() goes: an address already resolved, because a shard never
/// resolves names (getaddrinfo blocks; resolve before the shards start, or on another
/// thread, and hand the result over).
struct outbound_target {
    /// ip_family::v4 or ip_family::v6 with its port (host byte order): the value
    /// conn_io::peer() reports for the connection.
    peer_address address;
    /// From connect() to an open connection, the kernel's SYN retransmissions included
    /// (Linux resends at 1 s and 3 s, so 5 s allows two); past it the connect fails with
    /// std::errc::timed_out. Kept on the shard's timer wheel (10 ms ticks); 0 counts as
    /// one tick. Counted from the start (after delay_ms).
    uint32_t connect_timeout_ms = 5000;
    /// The connect starts this long after connect() (a reconnect's backoff and jitter,
    /// without a timer of the handler's own): the handle is connecting and holds its slot
    /// meanwhile, and close() or a stopping shard ends it as any connect. 0: at once.
    uint32_t delay_ms = 0;
};

/// What conn_io::admit_client() decided for a proxy's connection.
enum class client_verdict : uint8_t {
    admitted, ///< within the per-address limits of the client's address (or none apply)
    refused,  ///< over one: its 429 is queued and the connection is closing
};

/// Where the process is in a drain (docs/operations.md "Drain"). A closed set: every
/// switch on it lists all three.
enum class drain_phase : uint8_t {
    serving,   ///< no drain
    announced, ///< drain begun: /readyz and the agent check say so; still accepting clients
    closing,   ///< new WebSocket sessions refused (503); open ones closed 1001, paced over
               ///< the window (conn_handler::on_drain)
};

/// What a connection handler may ask of its shard. Implemented by the shard runtime; every
/// call is made on the shard's own thread, with a handle the shard gave to this handler.
/// Calls on a handle whose connection is already closing are ignored.
class conn_io {
public:
    virtual ~conn_io() = default;
    /// Queues a reference to `f` for the connection; goes out with the next batched send.
    virtual void send(conn_handle h, frame_ref f) noexcept = 0;
    /// Starts closing; the handler's on_closed() follows once the socket is released.
    virtual void close(conn_handle h, close_mode mode) noexcept = 0;
    /// Arms timer `which` of the connection: on_timer(which) runs at or soon after
    /// `deadline_ms` (monotonic, see now_ms()); replaces that timer's earlier deadline and
    /// leaves the other timers alone. Ignored once the connection is closing.
    virtual void set_timer(conn_handle h, conn_timer which, uint64_t deadline_ms) noexcept = 0;
    /// Disarms timer `which` (nothing happens if it was not armed).
    virtual void cancel_timer(conn_handle h, conn_timer which) noexcept = 0;
    /// Arms the shard's own timer, which belongs to no connection: the handler's
    /// on_shard_timer() runs at or soon after `deadline_ms` (monotonic, now_ms()), once;
    /// replaces an earlier deadline. On the same wheel as the connections' timers, so a
    /// shard that has it armed still sleeps until it is due, and one without it pays nothing.
    virtual void set_shard_timer(uint64_t deadline_ms) noexcept = 0;
    /// Opens a TCP connection from this shard to `to` (TCP_NODELAY set), asynchronously on
    /// the shard's ring; for a handler that talks to a server of its own (a broker). The
    /// handle comes back at once, connecting; `user` (not null) is what every later call
    /// for it carries. Then, always later and on this thread, exactly one of:
    ///   * on_connect_result(h, user, {}): open, an ordinary connection from here on
    ///     (on_data, send, close, timers, on_shutdown, budgets; on_closed ends it);
    ///   * on_connect_result(h, user, why), then on_closed(h, user): it never opened. `why`
    ///     is the connect's errno (connection_refused, network_unreachable,
    ///     connection_reset, …), timed_out past outbound_target::connect_timeout_ms, or
    ///     operation_canceled when the shard began stopping first;
    ///   * on_closed(h, user) alone, when the handler called close(h) while connecting.
    /// While connecting, every other call on `h` is ignored (send, set_timer, …; user(h)
    /// is nullptr, peer(h) is the target). Each connection holds one of
    /// runtime_config::outbound_slots, free again when on_closed runs. On an error nothing
    /// follows and `user` stays the caller's: EMFILE when every outbound slot is in use,
    /// ESHUTDOWN once the shard is stopping, EAFNOSUPPORT for an address neither IPv4 nor
    /// IPv6, or what socket() or installing it in the descriptor table failed with.
    virtual result<conn_handle> connect(const outbound_target& to, void* user) noexcept = 0;
    /// Monotonic milliseconds, read once per loop iteration.
    virtual uint64_t now_ms() const noexcept = 0;
    virtual shard_id id() const noexcept = 0;
    /// Bytes queued for the connection and not yet sent, plus a fixed per-frame overhead
    /// (send_queue::cost_bytes; 0 for a closed handle): the input of the backpressure
    /// policy, which lives with the protocol (pubsub).
    virtual std::size_t queued_bytes(conn_handle h) const noexcept = 0;
    /// Bytes queued for every connection of this shard (references, not copies).
    virtual std::size_t shard_queued_bytes() const noexcept = 0;
    /// Adds every open connection's queued_bytes() to `out`, one value each, by walking this
    /// shard's slot table: O(slots in use so far), no lock, no allocation. For GET /metrics
    /// and /api/stats, answered on the shard's own thread; never on the data path.
    virtual void queue_depths(queue_depth_histogram& out) const noexcept = 0;
    /// The shard's queued output is over runtime_config::output_budget_bytes.
    virtual bool output_over_budget() const noexcept = 0;
    /// Drops queued frames not yet started on the wire (the one being sent stays whole, so
    /// framing survives); used before a slow-consumer close frame.
    /// Nothing once the connection is closing (its queue ends with its close frame).
    virtual void discard_queued(conn_handle h) noexcept = 0;
    /// The per-connection state on_open() returned, or nullptr when `h` has closed: how an
    /// asynchronous completion (a reply from another shard) finds its connection safely.
    virtual void* user(conn_handle h) noexcept = 0;
    /// Number of shards in this process.
    virtual unsigned shards() const noexcept = 0;
    /// This shard's runtime counters (for the stats API).
    virtual const shard_counters& counters() const noexcept = 0;
    /// The address `h` connected from, or the target of an outbound connection
    /// (ip_family::unknown once it has closed); for a proxy's connection, the client
    /// admit_client() named, once it has.
    virtual peer_address peer(conn_handle h) const noexcept = 0;
    /// True while `h` came from a runtime_config::proxy_from network and admit_client() has
    /// not named its client yet: its first bytes must be a PROXY header (src/net), and
    /// peer(h) is still the proxy's address. False for a closed handle.
    virtual bool awaits_client(conn_handle h) const noexcept = 0;
    /// Names the client of a connection that awaits_client(): `client` becomes peer(h) for
    /// everything after (log lines, the API's loopback check), and the per-address limits
    /// are applied to it now, as accept applies them to other connections (on capped
    /// listeners, counted and logged the same way). refused: over a limit; the connection's
    /// 429 (runtime_config::refusal_address_*) is queued and it is closing, so the handler
    /// treats it as closed (on_closed follows). Called at most once per connection, and
    /// only while awaits_client(h).
    virtual client_verdict admit_client(conn_handle h, const peer_address& client) noexcept = 0;
    /// This shard's mesh handler table: a module registers the kinds it receives while
    /// the shard's handler is built (handler_factory), before any message flows.
    virtual mesh_handlers& mesh_receivers() noexcept = 0;
    /// Hands `payload` to shard `to` (not this one) as a K; never blocks or drops. It
    /// arrives in the handler registered for K on `to`, in order per (from, to) pair across
    /// all kinds. A kind this shard has no handler for is an invariant violation: every
    /// shard registers the same kinds, so the target would have none either.
    template <mesh_kind K>
    void post(shard_id to, std::unique_ptr<typename K::payload> payload) noexcept {
        const mesh_kind_info& kind = mesh_kind_info_of<K>;
        RINGCAST_ASSERT(mesh_receivers().handles(kind));
        send_to_shard(to, mesh_message{&kind, payload.release()});
    }
    /// This shard or shard `s` has more mesh messages waiting for a full ring than
    /// mesh_congestion_mark: new work that would travel through `s` (a publish homed there,
    /// a subscribe's round trip) should be refused with "busy" until it drains. This is the
    /// mesh's back-pressure: post() itself never refuses, so the overflow stays
    /// bounded by the mark plus what was already under way.
    virtual bool mesh_congested(shard_id s) const noexcept = 0;
    /// Where the process is in a drain, now.
    virtual drain_phase drain() const noexcept = 0;
    /// Asks the process to drain as on SIGTERM (POST /api/drain): raises drain_signal, and
    /// the main thread runs the drain (docs/operations.md "Drain"). Any number of calls
    /// make one drain.
    virtual void ask_drain() noexcept = 0;

protected:
    /// The untyped send under post(): `msg` owns its payload from here on.
    virtual void send_to_shard(shard_id to, mesh_message msg) noexcept = 0;
};

/// The events of one outbound connection (conn_io::connect), for a client that is not the
/// shard's handler: a broker link (src/engine). The shard's handler routes them here
/// (outbound_connector), on the shard's thread; the calls keep conn_io::connect()'s order.
class outbound_client {
public:
    virtual ~outbound_client() = default;
    /// Open (`error` empty) or failed; after a failure on_closed follows.
    virtual void on_connect_result(conn_handle h, std::error_code error) noexcept = 0;
    virtual void on_data(conn_handle h, std::span<std::byte> bytes) noexcept = 0;
    virtual void on_timer(conn_handle h, conn_timer which) noexcept = 0;
    /// The shard is stopping: close now (on_closed follows).
    virtual void on_shutdown(conn_handle h) noexcept = 0;
    /// Gone: the handle is dead from here on.
    virtual void on_closed(conn_handle h) noexcept = 0;
};

/// Opens outbound connections whose events go to an outbound_client: what the shard's
/// handler offers to the clients it builds (conn_io::connect carries the handler's own
/// per-connection state, so a client asks the handler). The result is conn_io::connect's.
class outbound_connector {
public:
    virtual ~outbound_connector() = default;
    virtual result<conn_handle> connect(const outbound_target& to, outbound_client& client) noexcept = 0;
};

/// The retry delays of an outbound connection (a broker link): exponential from `base_ms`,
/// doubling per failed attempt up to `cap_ms`, each drawn uniformly from [d/2, d] ("equal
/// jitter", so many nodes restarted together do not reconnect in step, and no retry comes
/// sooner than half its step). reset() after a connection proved healthy starts over.
/// Owned by one link on one shard thread; the generator is xorshift64, seeded per object.
class reconnect_backoff {
public:
    reconnect_backoff(uint32_t base_ms, uint32_t cap_ms, uint64_t seed) noexcept;
    /// The delay before the next attempt; counts the attempt.
    uint32_t next_ms() noexcept;
    void reset() noexcept { _attempt = 0; }
    uint32_t attempts() const noexcept { return _attempt; }

private:
    uint32_t _base_ms;
    uint32_t _cap_ms;
    uint32_t _attempt = 0;
    uint64_t _rng;
};

/// The parts of a broker URL, `SCHEME://[USER[:PASSWORD]@]HOST[:PORT][/PATH]`, as the
/// Redis and AMQP URI schemes share them: user and password %-decoded, HOST a name or an
/// address (IPv6 only in brackets, which are removed), PATH raw (after the first '/'; its
/// meaning is the scheme's). Nothing here resolves names.
struct service_url {
    std::string user;
    std::string password;
    bool has_userinfo = false; ///< an '@' was there
    bool has_colon = false;    ///< the userinfo had a ':' (USER:PASSWORD, not one word)
    std::string host;
    uint16_t port = 0;         ///< the scheme's default unless the URL named one
    bool has_path = false;     ///< a '/' followed the authority
    std::string path;          ///< raw, not decoded
};

/// Splits what follows the scheme of a URL (the caller checks the scheme, whose variants
/// it knows). `what` names the URL in errors ("Redis URL" gives "the Redis URL has no
/// host"). An error is a sentence for the operator with no secret in it.
result<service_url, std::string> parse_service_url(std::string_view after_scheme,
                                                   std::string_view what,
                                                   uint16_t default_port);

/// Appends `text` as the inside of a JSON string (RFC 8259 §7), without the quotes: '"',
/// '\' and every control character U+0000-U+001F escaped, \b \f \n \r \t by name and
/// the others as \u00XX in lowercase hex, as JSON.stringify writes them. Every other byte
/// (DEL, UTF-8) passes through unchecked: valid UTF-8 in gives a valid JSON string out.
/// The one JSON string escaper: http's error bodies, the backend API's answers, the
/// bridges' messages, the cli and socketio::append_json_string all write with it.
/// Allocates only as `out` grows.
void append_json_escaped(std::string& out, std::string_view text);

/// %XX-decodes `in` into `out`; false on a malformed escape.
bool percent_decode(std::string_view in, std::string& out);

/// Resolves `host` (a name or a literal address) with getaddrinfo — blocking, so before the
/// shards start — to its first address with `port`. `what` names the host in errors.
result<peer_address, std::string> resolve_host(const std::string& host, uint16_t port,
                                               std::string_view what);

/// "host:port", or "[v6]:port", for logs and stats.
std::string host_and_port(const std::string& host, uint16_t port);

/// The role of the listening socket that accepted a connection: what the handler serves
/// there (core treats every role alike; listener_config says how its connections take slots).
enum class listener : uint8_t {
    main,    ///< --listen: WebSocket clients, the demo page, health, and the API unless api is set
    api,     ///< --api-listen: the backend API only
    metrics, ///< --metrics-listen: GET /metrics and /healthz only
};

/// How a listener's connections take descriptor slots on each shard.
enum class listener_slots : uint8_t {
    /// From the connection cap (--max-connections, --max-connections-total), with the
    /// per-address limits; beyond the cap the refusal slots answer (admission::restricted).
    capped,
    /// From the listener's own `reserved_slots`, outside the cap and without per-address
    /// limits: a backend's or an operator's port that a client flood cannot fill.
    reserved,
};

/// One listening address, opened once per shard (SO_REUSEPORT).
struct listener_config {
    listener role = listener::main;
    listener_slots slots = listener_slots::capped;
    /// listener_slots::reserved: slots of each shard only this listener uses.
    uint32_t reserved_slots = 0;
    /// One bound, listening socket per shard (the shard closes it when it ends).
    std::vector<int> fds;
};

/// What a new connection may do (decided at accept, before the handler sees it).
enum class admission : uint8_t {
    /// Every route.
    full,
    /// Accepted beyond the connection cap into a spare slot: only what keeps the server
    /// observable (GET /healthz, and /api/ when the API is on this listener), each answer
    /// closing the connection; anything else, an upgrade included, is refused with 503.
    restricted,
};

/// Descriptor slots kept beyond the connection cap on each shard, shared by connections in
/// restricted mode and by per-address refusals being answered: enough for a health checker
/// and an operator's API calls while a flood is refused, few enough that the flood cannot
/// hold much (each lasts one request, bounded by the handshake and close timeouts).
inline constexpr uint32_t refusal_slots = 64;

/// Single-shot accepts kept armed per listener, each with its own address buffer (the peer
/// address is why they are not one multishot accept: docs/decisions.md "Edge hardening").
/// It is also the most connections one listener hands over per loop pass: 16 drains a
/// backlog in a few passes (each pass re-arms what completed) while bounding the slots a
/// pass can take only to close them (descriptor_slots()).
inline constexpr uint32_t accepts_per_listener = 16;

/// Direct-descriptor slots a shard's table needs: the cap, the spare slots, each reserved
/// listener's own, one per armed accept (a connection accepted only to be closed holds
/// its slot until the close is submitted in the next pass), and the outbound slots
/// (runtime_config::outbound_slots), which sit at the top of the table where the kernel
/// never places an accepted connection.
constexpr uint32_t descriptor_slots(uint32_t max_connections,
                                    std::span<const listener_config> listeners,
                                    uint32_t outbound_slots) noexcept {
    uint32_t slots = max_connections + refusal_slots + outbound_slots;
    for (const listener_config& l : listeners) {
        slots += accepts_per_listener + (l.slots == listener_slots::reserved ? l.reserved_slots : 0);
    }
    return slots;
}

/// Limits per client address, process-wide (--max-connections-per-ip,
/// --connect-rate-per-ip, --connect-burst-per-ip); 0 disables one. Each shard enforces
/// ⌈N / shards⌉ of each, because SO_REUSEPORT spreads an address's connections over the
/// shards. IPv6 addresses are grouped by /64. Only the main listener is limited: the
/// --api-listen listener is the backend's (keep it off public networks).
struct per_address_limits {
    /// A large office or carrier NAT puts hundreds of users behind one address; 1024 lets
    /// them in and still stops one host from filling a 65 536-connection table.
    uint32_t max_connections = 1024;
    /// New connections per second once the burst is spent: a reconnect storm of one NAT's
    /// users drains over seconds, a connect/close loop is held to this.
    uint32_t connect_rate = 100;
    /// As many as the cap, so everyone behind one address can reconnect at once after a
    /// restart.
    uint32_t connect_burst = 1024;
};

/// The protocol side of a shard (src/net implements it): one instance per shard, called
/// only from that shard's thread. `user` is the pointer on_open() returned.
class reload_payload;

class conn_handler {
public:
    virtual ~conn_handler() = default;
    /// A new connection; returns the per-connection state handed back in later calls.
    /// conn_io::peer(h) already knows its address.
    virtual void* on_open(conn_handle h, listener from, admission mode) noexcept = 0;
    /// Received bytes, valid only during the call (the buffer returns to the kernel after).
    /// The span is writable so parsers can unmask in place.
    virtual void on_data(conn_handle h, void* user, std::span<std::byte> bytes) noexcept = 0;
    /// The deadline of timer `which` set with conn_io::set_timer() has passed (the timer is
    /// disarmed; the handler may arm it again).
    virtual void on_timer(conn_handle h, void* user, conn_timer which) noexcept = 0;
    /// The deadline of conn_io::set_shard_timer() has passed (the timer is disarmed; the
    /// handler may arm it again). Nothing by default.
    virtual void on_shard_timer() noexcept {}
    /// The shard is stopping: say goodbye (e.g. close 1001) and close the connection.
    virtual void on_shutdown(conn_handle h, void* user) noexcept = 0;
    /// The process is draining (drain_phase::closing) and the shard's pacing reached this
    /// connection of the main listener: if it is a client session, say goodbye (close
    /// 1001 after what is queued for it) and return true; return false to leave it open
    /// until the shard stops (an HTTP request, an API call). Never called once stopping.
    virtual bool on_drain(conn_handle h, void* user) noexcept = 0;
    /// The shard's queued output is over its budget and this connection holds the most:
    /// drop what it has not started sending and close it (a WebSocket with 1008). If the
    /// connection is still open afterwards, the shard closes it at once.
    virtual void on_output_budget(conn_handle h, void* user) noexcept = 0;
    /// How a conn_io::connect() ended: `error` is empty when the connection is open (it
    /// is then an ordinary connection), else why it never opened, and on_closed follows.
    /// Not called for accepted connections, nor for a connect the handler closed first.
    virtual void on_connect_result(conn_handle h, void* user, std::error_code error) noexcept = 0;
    /// The connection is gone (closed by either side, or an outbound one that failed);
    /// free `user`. Last call for `h`.
    virtual void on_closed(conn_handle h, void* user) noexcept = 0;
    /// New settings published with reload_shards(), on the shard's thread, between two
    /// loop passes; the handler takes what it can change live. Nothing by default.
    virtual void on_reload(const std::shared_ptr<const reload_payload>& settings) noexcept {
        (void)settings;
    }
};

/// Settings the main thread hands every shard's handler at run time (a SIGHUP reload):
/// core carries them without knowing what they are; the handler knows its own kind.
class reload_payload {
public:
    virtual ~reload_payload() = default;
};

/// How ringcastd's shards are laid out; filled by src/app from flags.
struct runtime_config {
    /// The listening addresses, each with one socket per shard; at least one, all with the
    /// same number of sockets, which is the number of shards.
    std::vector<listener_config> listeners;
    unsigned shards() const noexcept {
        return listeners.empty() ? 0 : static_cast<unsigned>(listeners.front().fds.size());
    }
    /// CPU for each shard (pinned); -1 leaves a shard unpinned.
    std::vector<int> cpus;
    /// Connections per shard in full mode (src/app fills it: --max-connections, or 65536
    /// capped by RLIMIT_NOFILE, which limits each descriptor table; descriptor_slots()).
    uint32_t max_connections_per_shard = 65536;
    /// Connections across all shards (--max-connections-total); 0: only the per-shard cap.
    uint32_t max_connections_total = 0;
    /// Per-address limits (see per_address_limits); shards divide them.
    per_address_limits per_address;
    /// --proxy-protocol-from: networks whose connections come from a trusted proxy and begin
    /// with a PROXY protocol header naming the client. Such a connection (on any listener)
    /// skips the per-address limits at accept, since its address is the proxy's and all of
    /// that proxy's clients share it, and waits for the handler to name its client
    /// (conn_io::admit_client), which applies the limits to the client's address. Empty:
    /// no connection is a proxy's.
    std::vector<address_prefix> proxy_from;
    /// Complete HTTP responses sent before closing a connection over a per-address limit
    /// (the cap, the connect rate), using one of the refusal_slots; empty: close at once.
    std::string refusal_address_cap;
    std::string refusal_address_rate;
    /// Output queued for one connection (send_queue cost: bytes plus per-frame overhead)
    /// above which the shard stops reading from it. 256 KiB holds ~2,500 replies: far more
    /// than a client that reads ever has waiting, and what a client that never reads can
    /// make the shard hold before its commands stop being read.
    std::size_t read_pause_bytes = 256u << 10;
    /// Output queued on the whole shard (the same cost, references counted per connection)
    /// above which priorities 3-4 are dropped for everyone and the largest holders are
    /// closed with 1008 until it is back under 7/8 (--output-budget-bytes).
    std::size_t output_budget_bytes = std::size_t(1) << 30;
    /// Hold queued output up to this long after the first frame of a batch was queued,
    /// so more frames join the same sendmsg (--linger-us); 0 sends every loop pass.
    uint32_t linger_us = 0;
    /// How long close_mode::after_flush waits for the flush and the peer's EOF.
    uint32_t close_timeout_ms = 2000;
    /// How long a stopping shard waits for goodbyes before closing what is left.
    uint32_t shutdown_timeout_ms = 2000;
    /// Descriptor slots of each shard for conn_io::connect(), outside the connection cap
    /// and apart from every listener's: a client flood cannot take them, and they never
    /// take a client's (descriptor_slots()). A connect beyond them fails at once (EMFILE).
    /// 16 is a few broker connections each with room to spare; a table entry costs 8 B
    /// until used.
    uint32_t outbound_slots = 16;
};

/// Builds a shard's handler, bound to that shard's conn_io; called on the shard's own
/// thread before its loop starts.
using handler_factory = std::function<std::unique_ptr<conn_handler>(conn_io&)>;

/// Set by a signal or by the operator: every shard stops at its next loop iteration.
/// A flag only, publishing no data: set with a relaxed store, read by each shard's relaxed
/// load at the end of its loop pass (shard::run); what follows the stop is ordered by
/// joining the threads (wait_shards).
struct stop_token {
    std::atomic<bool> requested{false};
    /// The drain (docs/operations.md "Drain"), driven by the main thread: it stores
    /// drain_window_ms and drain_since_ms, then `drain` with release; a shard loads `drain` with acquire at
    /// the end of each loop pass (shard::run) and when its handler asks (conn_io::drain),
    /// so the window it reads is the one stored before. Only moves forward: serving →
    /// announced → closing.
    std::atomic<drain_phase> drain{drain_phase::serving};
    std::atomic<uint32_t> drain_window_ms{0};
    /// When the closing phase began (monotonic_us() / 1000), stored with the window: every
    /// shard paces from the same instant, so the main thread knows when all are done.
    std::atomic<uint64_t> drain_since_ms{0};
};

/// The signal conn_io::ask_drain raises for the main thread (POST /api/drain): a drain
/// begins if none has, and nothing else happens (a second SIGTERM would stop at once).
inline constexpr int drain_signal = SIGUSR2;

/// Starts one pinned thread per shard (config.shards()), each with its own io_uring, and
/// returns when all of them have set up their rings (or one failed: the error names the shard and reason).
/// The shards run until `stop` is requested; join with wait_shards().
class shard_group;
struct shard_group_deleter {
    void operator()(shard_group* group) const noexcept;
};
using shard_group_ptr = std::unique_ptr<shard_group, shard_group_deleter>;

result<shard_group_ptr, std::string> start_shards(const runtime_config& config,
                                                  handler_factory factory, stop_token& stop);
/// A running group as the process's main thread sees it, read at any time.
struct group_status {
    /// Per shard: its loop passes so far. A turning loop passes at least ten times a second
    /// (its wait is at most 100 ms), so a count that stops says the shard is stuck.
    std::vector<uint64_t> loop_passes;
    uint32_t connections = 0; ///< open connections in the process
    uint64_t frames_sent = 0; ///< WebSocket frames sent so far, all shards (as of each
                              ///< shard's last loop pass)
};
group_status status_of(const shard_group& group);
/// Hands `settings` to every shard's handler (conn_handler::on_reload), each on its own
/// thread at its next loop pass; a later call before a shard looked replaces the earlier
/// one (it gets only the latest). Any thread.
void reload_shards(shard_group& group, std::shared_ptr<const reload_payload> settings);
/// Joins every shard thread; returns each shard's counters. Shard threads are named
/// "ringcast-s<N>".
std::vector<shard_counters> wait_shards(shard_group_ptr group);

} // namespace core

} // namespace ringcast
