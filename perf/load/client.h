// ringcast-bench client — many WebSocket client connections on one io_uring.
//
// What it owns: the ring (SINGLE_ISSUER | DEFER_TASKRUN, one per process), a fixed table of
// connections, and each connection's life:
//
//   idle ──start_connects()──► connecting ──CONNECT ok──► handshaking ──101 + accept ok──► open
//     │                            │ error / timeout          │ bad status / accept / EOF    │
//     │                            ▼                          ▼                              │
//     └──────────────────────► failed (counted, fd closed)                                   │
//                                                                                            ▼
//   closed ◄── all ops done, fd closed ◄── closing (close frame sent, or shutdown) ◄──
//   begin_close()
//                                          ▲ also on peer close frame, EOF, I/O error
//
// The scenario (echo, idle, ...) is a conn_handler: it sees open, each message, close, and
// one tick per loop iteration, and queues outgoing bytes with queue_data(). The client
// answers pings and close frames itself.
//
// I/O: regular fds (≤ 20 000 per process). IORING_OP_CONNECT with a linked timeout;
// one IORING_OP_RECV outstanding per connection into its own buffer (recv_buffer_bytes);
// at most one send outstanding per connection (IORING_OP_SEND for one range, WRITEV for
// several), which keeps bytes in order and gathers everything queued while it was in flight
// into the next one. Queued data is referenced, not copied: the caller keeps it alive and
// unchanged until the peer has answered it (or until the connection closes).
//
// Runs on one thread; nothing here throws after construction; every loop is bounded by a
// count and by the caller's deadline.
#pragma once

#include <ringcast/ws.h>

#include <liburing.h>
#include <netinet/in.h>
#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ringcast::bench {

/// ws://HOST:PORT/PATH, HOST a 127.0.0.0/8 address (the bench is loopback-only).
struct endpoint {
    std::string host;
    uint16_t port = 0;
    std::string path = "/";
    sockaddr_in addr{};
};

/// Parses `url`; false with a sentence in `error` when it is not ws://127.x.y.z:PORT/PATH.
bool parse_url(const std::string& url, endpoint& out, std::string& error);

enum class conn_state : uint8_t { idle, connecting, handshaking, open, closing, closed, failed };

/// Why a connection ended; the scenario decides which ones are errors for it.
enum class close_cause : uint8_t {
    none,
    connect_failed,   ///< CONNECT returned an error (refused, no ports, ...)
    connect_timeout,  ///< the linked timeout fired first
    handshake_failed, ///< not a 101, bad Sec-WebSocket-Accept, EOF or too large a response
    local,            ///< we closed it (end of run)
    peer_close,       ///< the server sent a close frame
    peer_eof,         ///< the server closed TCP without a close frame
    io_error,         ///< recv/send error (reset, ...)
    protocol_error,   ///< the server's frames broke RFC 6455 (frame_parser said so)
};

enum class queue_status : uint8_t { queued, full, not_open };

/// Per-process counters kept by the client itself (plain integers: one thread).
struct client_counters {
    uint64_t connects_started = 0;
    uint64_t opened = 0;
    uint64_t connect_failed = 0;
    uint64_t connect_timeout = 0;
    uint64_t handshake_failed = 0;
    uint64_t protocol_errors = 0;
    uint64_t peer_closes = 0;
    uint64_t peer_eofs = 0;
    uint64_t io_errors = 0;
    uint64_t pings_answered = 0;
    uint64_t send_calls = 0;
    uint64_t recv_calls = 0;
    uint64_t bytes_sent = 0;
    uint64_t bytes_received = 0;
    uint64_t compressed_received = 0; ///< messages that came compressed (permessage-deflate)
    uint64_t deflate_opened = 0;      ///< connections whose 101 accepted permessage-deflate
    uint64_t sqe_starved = 0; ///< SQ full even after a submit (should stay 0)
    uint64_t loop_iterations = 0;
    uint64_t cqes = 0;
};

class conn_handler {
public:
    virtual ~conn_handler() = default;
    /// The upgrade completed; the connection may send.
    virtual void on_open(uint32_t conn, uint64_t now) noexcept = 0;
    /// A complete data message; `payload` is valid during the call only.
    virtual void on_message(uint32_t conn, ws::opcode type, std::span<const std::byte> payload,
                            uint64_t now) noexcept = 0;
    /// The connection is finished (failed before opening or closed after); fd released.
    virtual void on_closed(uint32_t conn, close_cause cause) noexcept = 0;
    /// Once per loop iteration, after completions were handled.
    virtual void on_tick(uint64_t now) noexcept = 0;
};

struct client_config {
    endpoint target;
    uint32_t connections = 1;
    /// Global index of this process's first connection (--procs splits the range); picks
    /// the source address so that all workers together spread over 127.0.0.1..K.
    uint32_t first_global_index = 0;
    /// Connections per source address: the ephemeral port range minus a margin for
    /// TIME_WAIT leftovers of earlier runs.
    uint32_t per_source_address = 27000;
    uint32_t recv_buffer_bytes = 4096;
    uint32_t connect_concurrency = 512;
    uint32_t connect_timeout_ms = 10'000;
    std::string extra_headers; ///< appended to the upgrade request, each line ending CRLF
    /// extra_headers offers permessage-deflate: a 101 that accepts it makes the connection
    /// take compressed messages (inflated here, then handed on like any other).
    bool deflate = false;
    /// Per-connection request paths (peers with a path per channel: /sub/bench-3, or
    /// ringcast with a token each: /ws?token=...):
    /// connection i < path_slots asks for paths[(first_global_index + i) % paths.size()],
    /// the others (publisher connections) for target.path. Empty: target.path for all.
    std::vector<std::string> paths;
    uint32_t path_slots = 0;
};

class client {
public:
    /// Sets up the ring and the connection table. Setup errors (ring, memory) are returned
    /// through `error` and ok() is false; nothing is thrown.
    client(client_config config, conn_handler& handler);
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    bool ok() const noexcept { return _ok; }
    const std::string& setup_error() const noexcept { return _setup_error; }
    /// Which ring flags were accepted (for the report: a fallback is worth knowing).
    const char* ring_mode() const noexcept { return _ring_mode; }

    /// Runs the loop until `stop()` returns true or `deadline_ns` passes. `stop` is called
    /// once per iteration; the loop also ends after max_iterations (a safety bound).
    template <typename Stop> void run_until(uint64_t deadline_ns, Stop stop) noexcept {
        for (uint64_t i = 0; i < max_iterations; ++i) {
            if (!run_once(deadline_ns) || stop()) {
                return;
            }
        }
    }

    /// Queues `bytes` (caller-owned, unchanged until answered) on an open connection;
    /// merged with the previous range when contiguous. Sent now if no send is in flight.
    [[nodiscard]] queue_status queue_data(uint32_t conn, std::span<const std::byte> bytes) noexcept;

    /// Nothing queued and no send in flight: every range queue_data() took on `conn` has
    /// been written to the socket, so its bytes may be reused.
    bool send_idle(uint32_t conn) const noexcept {
        const connection& c = _conns[conn];
        return !c.send_in_flight && c.pending_count == 0;
    }

    /// Starts a clean close: masked close frame (1000), then wait for the server's close
    /// or EOF. Connections not open yet are aborted.
    void begin_close(uint32_t conn) noexcept;
    void begin_close_all() noexcept;
    /// Tears down what is left without waiting (shutdown + close); for the final deadline.
    void abort_all() noexcept;

    /// Connections that were started and have not yet opened or failed.
    uint32_t pending_opens() const noexcept { return _pending_opens; }
    uint32_t open_count() const noexcept { return _open; }
    /// Connections not yet closed or failed (includes idle ones never started).
    uint32_t live_count() const noexcept { return _live; }
    uint32_t size() const noexcept { return uint32_t(_conns.size()); }
    conn_state state(uint32_t conn) const noexcept { return _conns[conn].state; }
    const client_counters& counters() const noexcept { return _counters; }
    /// Connect + handshake time of an opened connection (0 before it opened).
    uint64_t open_latency_ns(uint32_t conn) const noexcept { return _conns[conn].open_latency_ns; }
    /// When the connection's connect was started (0 before).
    uint64_t started_ns(uint32_t conn) const noexcept { return _conns[conn].started_ns; }
    /// Stop starting new connections (idle → failed with connect_timeout at phase end).
    void stop_connecting() noexcept { _next_to_connect = size(); }

    /// A fresh 4-byte masking key from the client's PRNG (RFC 6455 §5.3).
    std::array<std::byte, 4> random_mask() noexcept;

    /// 2^40 iterations: unreachable in practice; the deadline ends every phase.
    static constexpr uint64_t max_iterations = uint64_t(1) << 40;

    /// Gathered ranges per send: the echo window wraps at most once, so 8 is plenty; a
    /// full list makes queue_data() answer `full` rather than grow.
    static constexpr std::size_t max_iov = 8;
    /// Control frames queued between two sends: a pong (6 + 125 bytes masked) and our
    /// close frame (6 + 2) fit with room to spare.
    static constexpr std::size_t control_bytes = 256;

private:
    class sink;

    /// One client connection. Owned by the client, touched by its thread only. Output:
    ///
    ///   queue_data()/queue_control() ──► pending (iovecs + control[control_pending])
    ///        kick_send() when no send is in flight: pending ──► flight, one SEND/WRITEV
    ///        on_send(): partial → resubmit the rest of flight; done → kick_send() again
    struct connection {
        ws::frame_parser parser{ws::role::client};
        std::string request; ///< the upgrade request; released once the connection opens
        std::array<iovec, max_iov> pending{};
        std::array<iovec, max_iov + 1> flight{};
        std::array<std::array<std::byte, control_bytes>, 2> control{};
        std::array<uint16_t, 2> control_len{};
        std::array<char, 24> key{}; ///< Sec-WebSocket-Key, base64 of 16 random bytes
        uint64_t started_ns = 0;
        uint64_t open_latency_ns = 0;
        int fd = -1;
        uint32_t generation = 0;
        uint32_t recv_used = 0; ///< handshake bytes gathered so far
        uint8_t pending_count = 0;
        uint8_t flight_count = 0;
        uint8_t flight_first = 0;
        uint8_t control_pending = 0; ///< which control buffer collects the next frames
        uint8_t ops = 0;             ///< connect + recv + send outstanding (≤ 3)
        conn_state state = conn_state::idle;
        close_cause cause = close_cause::none;
        bool was_open = false;
        bool send_in_flight = false;
        bool close_sent = false;
        bool close_received = false;
        bool shut = false; ///< shutdown() called: no new ops; finish when ops reach 0
    };

    /// aux: linked connect timeouts and cancels, whose completions carry nothing we need.
    enum class op : uint8_t { connect = 1, aux, recv, send };

    bool run_once(uint64_t deadline_ns) noexcept;
    void start_connects(uint64_t now) noexcept;
    void reap_completions(uint64_t now) noexcept;
    void dispatch(const io_uring_cqe& cqe, uint64_t now) noexcept;
    void on_connect(uint32_t slot, int res, uint64_t now) noexcept;
    void on_recv(uint32_t slot, int res, uint64_t now) noexcept;
    void on_send(uint32_t slot, int res) noexcept;
    void on_handshake_bytes(uint32_t slot, uint64_t now) noexcept;
    void on_peer_close(uint32_t slot, uint16_t code) noexcept;
    void maybe_shutdown(uint32_t slot) noexcept;
    void do_shutdown(uint32_t slot) noexcept;
    void submit_flight(uint32_t slot) noexcept;
    void feed_frames(uint32_t slot, std::span<std::byte> bytes, uint64_t now) noexcept;

    void prep_recv(uint32_t slot) noexcept;
    void kick_send(uint32_t slot) noexcept;
    void queue_control(uint32_t slot, ws::opcode type, std::span<const std::byte> payload) noexcept;
    void fail(uint32_t slot, close_cause cause) noexcept;
    void finish_if_done(uint32_t slot) noexcept;

    io_uring_sqe* get_sqe() noexcept;
    static uint64_t encode(op o, uint32_t slot, uint32_t generation) noexcept {
        return uint64_t(o) << 56 | uint64_t(generation & 0xffffff) << 32 | slot;
    }

    client_config _config;
    conn_handler& _handler;
    io_uring _ring{};
    bool _ring_ready = false;
    bool _ok = false;
    std::string _setup_error;
    const char* _ring_mode = "";
    std::vector<connection> _conns;
    uint32_t _batching_slot = UINT32_MAX; ///< recv being handled: its sends wait for the end
    std::unique_ptr<std::byte[]> _recv_arena;
    /// The upgrade requests up to the key header: one per config path, then target.path.
    std::vector<std::string> _request_heads;
    __kernel_timespec _connect_timeout{};
    uint32_t _next_to_connect = 0;
    uint32_t _pending_opens = 0;
    uint32_t _open = 0;
    uint32_t _live = 0;
    uint64_t _rng = 0;
    client_counters _counters;
    /// permessage-deflate: the server keeps no context (server_no_context_takeover), so one
    /// inflater serves every connection of this client; null until the first accepts it.
    std::unique_ptr<ws::inflater> _inflater;
    std::vector<std::byte> _inflated;
};

} // namespace ringcast::bench
