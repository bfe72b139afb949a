// The gateway: the connection state machine of include/ringcast/net.h. One instance per
// shard; every call comes from that shard's loop.
#include "gateway.h"

#include <algorithm>
#include <cstring>

namespace ringcast::net {

gateway::gateway(core::conn_io& io, const gateway_config& config)
    : _io(io), _config(config), _engine(io, config.pubsub), _api(io, _engine, config.api, *this) {}

std::unique_ptr<core::conn_handler> make_gateway(core::conn_io& io, const gateway_config& config) {
    return std::make_unique<gateway>(io, config);
}

void* gateway::on_open(conn_handle h, core::listener from, core::admission mode) noexcept {
    auto* c = new connection{std::make_unique<http::request_parser>(_config.http_limits),
                             {},
                             {},
                             ws::frame_parser(ws::role::server, _config.ws_limits)};
    c->last_rx_ms = _io.now_ms();
    _io.set_timer(h, core::conn_timer::liveness, _io.now_ms() + _config.handshake_timeout_ms);
    c->api_listener = from == core::listener::api;
    c->restricted = mode == core::admission::restricted;
    return c;
}

void gateway::on_closed(conn_handle h, void* user) noexcept {
    auto* c = static_cast<connection*>(user);
    forget_inbound(*c);
    if (c->session) {
        _engine.close_session(h, *c->session);
    }
    delete c;
}

void gateway::on_data(conn_handle h, void* user, std::span<std::byte> bytes) noexcept {
    auto& c = *static_cast<connection*>(user);
    c.last_rx_ms = _io.now_ms();
    switch (c.state) {
    case phase::http:
        read_http(h, c, bytes);
        break;
    case phase::websocket:
        read_frames(h, c, bytes);
        break;
    case phase::closed:
        return;
    }
    // `c` may be gone (a close that released at once); a closing one is forgotten in
    // on_closed(). Otherwise its parsers' holdings changed only here.
    if (_io.user(h) == &c && c.held_in != inbound_held(c)) {
        account_inbound(h, c);
    }
}

// --- HTTP ---------------------------------------------------------------------------------

void gateway::read_http(conn_handle h, connection& c, std::span<std::byte> bytes) noexcept {
    // A loop because one read may hold several pipelined requests.
    while (c.state == phase::http) {
        if (c.awaiting) {
            // HTTP/1.1 answers in order: hold pipelined bytes until the pending response
            // is out. Bounded like a request head plus body.
            if (c.stash.size() + bytes.size() >
                _config.http_limits.max_header_bytes + _config.http_limits.max_body_bytes) {
                c.state = phase::closed;
                _io.close(h, core::close_mode::now);
                return;
            }
            c.stash.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
            return;
        }
        const auto text =
            std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        const http::feed_result r = c.http->feed(text);
        if (r.status == http::parse_status::need_more) {
            return;
        }
        if (r.status == http::parse_status::error) {
            send_response(h, c,
                          http::make_error_response(r.http_status, r.reason, http::keep_alive::no),
                          http::keep_alive::no);
            return;
        }
        bytes = bytes.subspan(r.consumed);
        const bool stays_http = answer(h, c, c.http->get(), bytes);
        _head_only = false;
        if (!stays_http) {
            return;
        }
        c.http->reset();
        if (bytes.empty()) {
            return;
        }
    }
}

bool gateway::answer(conn_handle h, connection& c, const http::request& req,
                     std::span<std::byte> rest) noexcept {
    const bool is_get = req.method == "GET" || req.method == "HEAD";
    _head_only = req.method == "HEAD";
    // A restricted connection holds one of the few spare slots: one answer, then it goes.
    const auto ka =
        req.keep_alive() && !c.restricted ? http::keep_alive::yes : http::keep_alive::no;
    // With --api-listen the API lives on its own socket and nothing else does.
    const bool api_here = _config.separate_api == c.api_listener;
    if (c.restricted && req.path != "/healthz" && !(api_here && req.path.starts_with("/api/"))) {
        // Over the connection cap: what keeps the server observable is answered above and
        // below; a client (an upgrade included) is told to come back.
        send_response(
            h, c,
            http::make_error_response(503, "too many connections on this server; retry later", ka),
            ka);
        return false;
    }
    if (c.api_listener && !req.path.starts_with("/api/") && req.path != "/healthz") {
        send_response(h, c,
                      http::make_error_response(404, "the API listener serves /api/ only", ka), ka);
        return c.state == phase::http;
    }
    if (req.path.starts_with("/api/")) {
        if (!api_here) {
            send_response(h, c, http::make_error_response(404, "the API is on --api-listen", ka),
                          ka);
            return c.state == phase::http;
        }
        return call_api(h, c, req, ka);
    }
    if (req.path == _config.ws_path) {
        return upgrade_pubsub(h, c, req, rest);
    }
    if (!_config.echo_path.empty() && req.path == _config.echo_path) {
        const http::upgrade_check check = http::check_upgrade(req);
        if (check.status != 101) {
            send_response(
                h, c, http::make_error_response(check.status, check.reason, http::keep_alive::no),
                http::keep_alive::no);
            return false;
        }
        upgrade(h, c, req);
        // Frames the client sent right behind its request arrived in the same read.
        if (!rest.empty()) {
            read_frames(h, c, rest);
        }
        return false;
    }
    if (req.path == "/healthz") {
        if (!is_get) {
            send_response(h, c, http::make_error_response(405, "use GET", ka), ka);
        } else {
            send_response(h, c,
                          http::make_response(200, "application/json", "{\"status\":\"ok\"}\n", ka),
                          ka);
        }
    } else if (req.path == "/") {
        if (!is_get) {
            send_response(h, c, http::make_error_response(405, "use GET", ka), ka);
        } else {
            send_response(
                h, c, http::make_response(200, "text/html; charset=utf-8", demo_page(), ka), ka);
        }
    } else {
        send_response(h, c, http::make_error_response(404, "no such path", ka), ka);
    }
    return c.state == phase::http;
}

void gateway::send_response(conn_handle h, connection& c, std::string response,
                            http::keep_alive ka) noexcept {
    if (_head_only) {
        // RFC 9110 §9.3.2: a HEAD response carries the GET headers and no body; a body here
        // would be read as the start of the next response on a keep-alive connection.
        if (const auto end = response.find("\r\n\r\n"); end != std::string::npos) {
            response.resize(end + 4);
        }
    }
    _io.send(h, core::make_frame(std::string_view(response)));
    if (ka == http::keep_alive::no) {
        c.state = phase::closed;
        _io.close(h, core::close_mode::after_flush);
    } else {
        // The handshake timeout doubles as the keep-alive idle timeout.
        c.kept_alive = true;
        _io.set_timer(h, core::conn_timer::liveness, _io.now_ms() + _config.handshake_timeout_ms);
    }
}

bool gateway::upgrade_pubsub(conn_handle h, connection& c, const http::request& req,
                             std::span<std::byte> rest) noexcept {
    const std::string_view user = _config.insecure ? req.query_param("user") : std::string_view();
    if (!user.empty() && !pubsub::valid_user_id(user)) {
        send_response(h, c,
                      http::make_error_response(400,
                                                "user must be 1-64 characters of A-Za-z0-9_.@-",
                                                http::keep_alive::no),
                      http::keep_alive::no);
        return false;
    }
    const http::upgrade_check check = http::check_upgrade(req);
    if (check.status != 101) {
        send_response(h, c,
                      http::make_error_response(check.status, check.reason, http::keep_alive::no),
                      http::keep_alive::no);
        return false;
    }
    // A backend feed: the API key as a bearer token, only when a key is configured. Never
    // from the query string: URLs end up in proxy and access logs, browser history and
    // Referer headers (a backend is not a browser and can set the header).
    const bool backend = admin::bearer_matches(req, _config.api.api_key);
    // upgrade() frees the HTTP parser and with it `req`'s views: copy what we keep first.
    const std::string user_id(user);
    upgrade(h, c, req);
    c.session = std::make_unique<pubsub::session>();
    _engine.open_session(h, *c.session, user_id, backend);
    if (!rest.empty()) {
        read_frames(h, c, rest);
    }
    return false;
}

bool gateway::call_api(conn_handle h, connection& c, const http::request& req,
                       http::keep_alive ka) {
    c.awaiting = true;
    c.awaiting_ka = ka;
    _in_api = true;
    auto response = _api.handle(h, req, ka);
    _in_api = false;
    if (response) {
        c.awaiting = false;
        send_response(h, c, std::move(*response), ka);
    }
    return c.state == phase::http;
}

void gateway::respond(conn_handle h, std::string response) noexcept {
    auto* c = static_cast<connection*>(_io.user(h));
    if (c == nullptr || !c->awaiting) {
        return; // closed while the other shards answered
    }
    c->awaiting = false;
    send_response(h, *c, std::move(response), c->awaiting_ka);
    if (!_in_api && c->state == phase::http && !c->stash.empty()) {
        std::string stash = std::move(c->stash);
        c->stash.clear();
        c->http->reset();
        read_http(h, *c, std::as_writable_bytes(std::span(stash.data(), stash.size())));
    }
    if (_io.user(h) == c && c->held_in != inbound_held(*c)) {
        account_inbound(h, *c);
    }
}

void gateway::upgrade(conn_handle h, connection& c, const http::request& req) noexcept {
    _io.send(h, core::make_frame(std::string_view(http::upgrade_response(req))));
    c.state = phase::websocket;
    c.http.reset();
    arm_liveness_timer(h, c);
}

// --- WebSocket ----------------------------------------------------------------------------

void gateway::read_frames(conn_handle h, connection& c, std::span<std::byte> bytes) noexcept {
    _current_handle = h;
    _current = &c;
    const ws::parse_result r = c.ws.feed(bytes, *this);
    _current = nullptr;
    if (r.status == ws::parse_status::error && c.state == phase::websocket) {
        // RFC 6455 §7.1.7: fail the connection with the code that names the violation.
        close_websocket(h, c, r.code, r.reason);
    }
}

// --- the shard's inbound budget -----------------------------------------------------------

std::size_t gateway::inbound_held(const connection& c) noexcept {
    return c.ws.held_bytes() + (c.http ? c.http->held_bytes() : 0);
}

void gateway::account_inbound(conn_handle h, connection& c) noexcept {
    const std::size_t now_held = inbound_held(c);
    _inbound_held = _inbound_held - c.held_in + now_held;
    if (c.held_in == 0 && now_held > 0) {
        c.holder_index = static_cast<uint32_t>(_holders.size());
        _holders.emplace_back(h, &c);
    }
    c.held_in = now_held;
    if (now_held == 0) {
        forget_inbound(c);
    }
    if (_inbound_held > _config.inbound_budget_bytes) {
        enforce_inbound_budget();
    }
}

void gateway::forget_inbound(connection& c) noexcept {
    _inbound_held -= c.held_in;
    c.held_in = 0;
    if (c.holder_index < _holders.size() && _holders[c.holder_index].second == &c) {
        _holders[c.holder_index] = _holders.back();
        _holders[c.holder_index].second->holder_index = c.holder_index;
        _holders.pop_back();
    }
    c.holder_index = 0;
}

void gateway::enforce_inbound_budget() noexcept {
    // Largest first until the shard is back under 7/8 of its budget: one pass frees real
    // room. O(holders log holders), and only when a read pushed the total over.
    auto by_size = _holders;
    std::sort(by_size.begin(), by_size.end(),
              [](const auto& a, const auto& b) { return a.second->held_in > b.second->held_in; });
    const std::size_t target = _config.inbound_budget_bytes / 8 * 7;
    for (const auto& [h, c] : by_size) {
        if (_inbound_held <= target) {
            break;
        }
        ++_inbound_budget_closes;
        c->ws.abandon();
        forget_inbound(*c);
        if (c->state == phase::websocket) {
            if (c->session) {
                c->session->mark_closing();
            }
            close_websocket(h, *c, ws::close_code::message_too_big,
                            "server inbound budget exceeded; send smaller messages");
        } else if (c->state == phase::http) {
            // A request still arriving: its buffer goes at once, with a 503 that says why.
            c->http->reset();
            c->state = phase::closed;
            _io.send(h, core::make_frame(std::string_view(http::make_error_response(
                            503, "server busy: too many unfinished requests; retry",
                            http::keep_alive::no))));
            _io.close(h, core::close_mode::after_flush);
        }
    }
}

admin::edge_counters gateway::edge_stats() const noexcept {
    admin::edge_counters e;
    e.inbound_held_bytes = _inbound_held;
    e.inbound_budget_closes = _inbound_budget_closes;
    return e;
}

void gateway::on_message(ws::opcode type, std::span<const std::byte> payload) noexcept {
    if (_current->state != phase::websocket) {
        return;
    }
    if (_current->session) {
        if (type != ws::opcode::text) {
            return close_websocket(_current_handle, *_current, ws::close_code::unsupported_data,
                                   "binary messages are not accepted");
        }
        _engine.on_text(
            _current_handle, *_current->session,
            std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()));
        return;
    }
    // The echo endpoint is the only WebSocket route until pubsub lands.
    _io.send(_current_handle, ws::make_server_frame(type, payload));
}

void gateway::on_ping(std::span<const std::byte> payload) noexcept {
    // RFC 6455 §5.5.2: answer with a pong carrying the same application data.
    if (_current->state == phase::websocket) {
        _io.send(_current_handle, ws::make_server_frame(ws::opcode::pong, payload));
    }
}

void gateway::on_pong(std::span<const std::byte>) noexcept {
    // Liveness is any inbound byte (last_rx_ms); an unsolicited pong needs no answer
    // (RFC 6455 §5.5.3).
}

void gateway::on_close(uint16_t code, std::string_view) noexcept {
    if (_current->state != phase::websocket) {
        return;
    }
    // RFC 6455 §5.5.1: answer a close with a close, echoing the status code.
    _current->state = phase::closed;
    if (code == static_cast<uint16_t>(ws::close_code::no_status)) {
        _io.send(_current_handle,
                 ws::make_server_frame(ws::opcode::close, std::span<const std::byte>()));
    } else {
        std::array<std::byte, 2> body{std::byte(code >> 8), std::byte(code & 0xff)};
        _io.send(_current_handle, ws::make_server_frame(ws::opcode::close, body));
    }
    _io.close(_current_handle, core::close_mode::after_flush);
}

void gateway::close_websocket(conn_handle h, connection& c, ws::close_code code,
                              std::string_view reason) noexcept {
    c.state = phase::closed;
    _io.send(h, ws::make_close_frame(code, reason));
    _io.close(h, core::close_mode::after_flush);
}

// --- timers -------------------------------------------------------------------------------

void gateway::arm_liveness_timer(conn_handle h, const connection& c) noexcept {
    uint64_t deadline = UINT64_MAX;
    if (_config.ping_interval_ms > 0) {
        deadline = c.ping_sent_ms != 0 ? c.ping_sent_ms + _config.pong_timeout_ms
                                       : c.last_rx_ms + _config.ping_interval_ms;
    }
    if (_config.idle_timeout_ms > 0) {
        deadline = std::min(deadline, c.last_rx_ms + _config.idle_timeout_ms);
    }
    if (deadline != UINT64_MAX) {
        _io.set_timer(h, core::conn_timer::liveness, deadline);
    }
}

void gateway::on_timer(conn_handle h, void* user, core::conn_timer which) noexcept {
    switch (which) {
    case core::conn_timer::liveness:
        break;
    case core::conn_timer::expiry:
        // Not armed by any endpoint yet; token expiry (authentication) will arm it.
        return;
    }
    auto& c = *static_cast<connection*>(user);
    const uint64_t now = _io.now_ms();
    if (c.state == phase::http && c.awaiting) {
        // The keep-alive idle clock does not run while our own answer is pending.
        _io.set_timer(h, core::conn_timer::liveness, now + _config.handshake_timeout_ms);
        return;
    }
    if (c.state == phase::http && c.kept_alive && c.http->buffered_bytes() == 0) {
        // An idle keep-alive connection: close it without a word. A 408 here would sit in
        // the client's socket and be read as the answer to its next request (RFC 9112
        // §9.3.1: a client may send on a connection the server is closing).
        c.state = phase::closed;
        _io.close(h, core::close_mode::after_flush);
        return;
    }
    if (c.state == phase::http) {
        send_response(
            h, c,
            http::make_error_response(408, "request not received in time", http::keep_alive::no),
            http::keep_alive::no);
        return;
    }
    if (c.state != phase::websocket) {
        return;
    }
    if (c.ping_sent_ms != 0 && c.last_rx_ms >= c.ping_sent_ms) {
        c.ping_sent_ms = 0; // the peer spoke since our ping: alive
    }
    if (_config.idle_timeout_ms > 0 && now >= c.last_rx_ms + _config.idle_timeout_ms) {
        return close_websocket(h, c, ws::close_code::going_away, "idle timeout");
    }
    if (c.ping_sent_ms != 0 && now >= c.ping_sent_ms + _config.pong_timeout_ms) {
        return close_websocket(h, c, ws::close_code::going_away, "ping timeout");
    }
    if (_config.ping_interval_ms > 0 && c.ping_sent_ms == 0 &&
        now >= c.last_rx_ms + _config.ping_interval_ms) {
        _io.send(h, ws::make_server_frame(ws::opcode::ping, std::span<const std::byte>()));
        c.ping_sent_ms = now;
    }
    arm_liveness_timer(h, c);
}

void gateway::on_output_budget(conn_handle h, void* user) noexcept {
    auto& c = *static_cast<connection*>(user);
    _io.discard_queued(h);
    if (c.state == phase::websocket) {
        if (c.session) {
            c.session->mark_closing();
        }
        close_websocket(h, c, ws::close_code::policy_violation, "server output budget exceeded");
    } else {
        c.state = phase::closed;
        _io.close(h, core::close_mode::now);
    }
}

void gateway::on_shutdown(conn_handle h, void* user) noexcept {
    auto& c = *static_cast<connection*>(user);
    if (c.state == phase::websocket) {
        close_websocket(h, c, ws::close_code::going_away, "server shutting down");
    } else if (c.state == phase::http) {
        c.state = phase::closed;
        _io.close(h, core::close_mode::now);
    }
}

} // namespace ringcast::net
