// Private to src/net: the gateway's per-connection state and the handler class.
#pragma once

#include <ringcast/net.h>

#include <memory>

namespace ringcast::net {

enum class phase : uint8_t {
    http,      ///< reading an HTTP request (handshake timeout armed)
    websocket, ///< upgraded: frames in, frames out (ping/idle timers armed)
    closed,    ///< we asked the shard to close; input is ignored
};

/// One connection's protocol state; allocated at accept, freed in on_closed().
struct connection {
    /// Present only while reading HTTP: an upgraded connection keeps no HTTP buffer.
    std::unique_ptr<http::request_parser> http;
    /// Present on /ws connections: the pubsub side (subscriptions, user, rate bucket).
    std::unique_ptr<pubsub::session> session;
    /// Bytes that arrived while an API response was pending (pipelining), replayed after.
    std::string stash;
    ws::frame_parser ws;
    uint64_t last_rx_ms = 0;   ///< last inbound bytes (any), the liveness clock
    uint64_t ping_sent_ms = 0; ///< when the outstanding ping left; 0: none outstanding
    phase state = phase::http;
    /// An /api/ request is waiting for other shards; nothing else may be answered first.
    bool awaiting = false;
    /// A response went out and the connection stayed open: it is a keep-alive connection.
    bool kept_alive = false;
    /// Accepted on the --api-listen socket: serves /api/ and /healthz only.
    bool api_listener = false;
    /// What the parsers held at the last count (the shard's inbound budget), and this
    /// connection's place in gateway::_holders while that is not zero.
    std::size_t held_in = 0;
    uint32_t holder_index = 0;
    /// Accepted beyond the connection cap (core::admission::restricted): GET /healthz and
    /// /api/ (where the API lives on this listener) are answered, each closing the
    /// connection; anything else gets 503.
    bool restricted = false;
    http::keep_alive awaiting_ka = http::keep_alive::yes;
};

/// The page served at "/": a live channel a person can watch and publish to.
std::string_view demo_page() noexcept;

class gateway final : public core::conn_handler, private ws::frame_sink, private admin::responder {
public:
    gateway(core::conn_io& io, const gateway_config& config);

    void* on_open(conn_handle h, core::listener from, core::admission mode) noexcept override;
    void on_data(conn_handle h, void* user, std::span<std::byte> bytes) noexcept override;
    void on_timer(conn_handle h, void* user, core::conn_timer which) noexcept override;
    void on_shutdown(conn_handle h, void* user) noexcept override;
    void on_output_budget(conn_handle h, void* user) noexcept override;
    void on_closed(conn_handle h, void* user) noexcept override;

private:
    // ws::frame_sink: events for the connection in _current / _current_handle.
    void on_message(ws::opcode type, std::span<const std::byte> payload) noexcept override;
    void on_ping(std::span<const std::byte> payload) noexcept override;
    void on_pong(std::span<const std::byte> payload) noexcept override;
    void on_close(uint16_t code, std::string_view reason) noexcept override;

    // admin::responder: an API answer that waited for other shards.
    void respond(conn_handle h, std::string response) noexcept override;
    admin::edge_counters edge_stats() const noexcept override;

    /// Counts what `c`'s parser holds now against the shard's inbound budget and, past the
    /// budget, closes the largest holders (1009).
    void account_inbound(conn_handle h, connection& c) noexcept;
    /// Heap held by `c`'s parsers for input not yet complete (HTTP request, WebSocket message).
    static std::size_t inbound_held(const connection& c) noexcept;
    void enforce_inbound_budget() noexcept;
    void forget_inbound(connection& c) noexcept;

    void read_http(conn_handle h, connection& c, std::span<std::byte> bytes) noexcept;
    /// Answers one complete request; returns true when the connection stays in HTTP.
    bool answer(conn_handle h, connection& c, const http::request& req,
                std::span<std::byte> rest) noexcept;
    void upgrade(conn_handle h, connection& c, const http::request& req) noexcept;
    bool upgrade_pubsub(conn_handle h, connection& c, const http::request& req,
                        std::span<std::byte> rest) noexcept;
    bool call_api(conn_handle h, connection& c, const http::request& req, http::keep_alive ka);
    void read_frames(conn_handle h, connection& c, std::span<std::byte> bytes) noexcept;
    void send_response(conn_handle h, connection& c, std::string response,
                       http::keep_alive ka) noexcept;
    void close_websocket(conn_handle h, connection& c, ws::close_code code,
                         std::string_view reason) noexcept;
    void arm_liveness_timer(conn_handle h, const connection& c) noexcept;

    core::conn_io& _io;
    gateway_config _config;
    conn_handle _current_handle{};
    connection* _current = nullptr;
    bool _head_only = false; // answering a HEAD request: responses lose their body
    bool _in_api = false;    // inside api::handle(): a respond() now is synchronous
    /// Connections whose parser holds heap (held_in > 0), for the budget's eviction.
    std::vector<std::pair<conn_handle, connection*>> _holders;
    std::size_t _inbound_held = 0;
    uint64_t _inbound_budget_closes = 0;
    pubsub::engine _engine;
    admin::api _api;
};

} // namespace ringcast::net
