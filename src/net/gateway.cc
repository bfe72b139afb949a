// The gateway: the connection state machine of include/ringcast/net.h. One instance per
// shard; every call comes from that shard's loop. A complete request goes through the route
// table (routes.h) to its handler (handlers.cc); an upgraded connection's frames come back
// here through frame_events with their frame_context.
#include "gateway.h"

#include "proxy_header.h"

#include <ringcast/bridge.h>
#include <ringcast/log.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace ringcast::net {

gateway::gateway(core::conn_io& io, const gateway_config& config)
    : _io(io), _config(config), _routes(make_routes(_config)),
      _user_slots(std::max<uint32_t>(1, config.max_connections_per_user)),
      _verifier(_config.tokens.keys
                    ? std::make_unique<auth::verifier>(*_config.tokens.keys, _config.tokens.verify)
                    : nullptr),
      _broker(config.make_broker ? config.make_broker(io, *this) : nullptr),
      _engine(io, config.pubsub, _verifier.get(), _broker.get()),
      _api(io, _engine, config.api, *this),
      _bridges(config.make_bridges ? config.make_bridges(io, *this, _engine) : nullptr) {
    auto& receivers = _io.mesh_receivers();
    receivers.on<kinds::user_claim>(*this);
    receivers.on<kinds::user_answer>(*this);
    receivers.on<kinds::user_release>(*this);
    receivers.on<kinds::sio_to_owner>(*this);
    receivers.on<kinds::sio_to_asker>(*this);
    if (_broker) {
        _broker->set_user_events(this);
    }
}

std::vector<admin::bridge_row> gateway::bridge_rows() const {
    std::vector<admin::bridge_row> rows;
    if (_bridges) {
        _bridges->rows(rows);
    }
    return rows;
}

std::unique_ptr<core::conn_handler> make_gateway(core::conn_io& io, const gateway_config& config) {
    return std::make_unique<gateway>(io, config);
}

void* gateway::on_open(conn_handle h, core::listener from, core::admission mode) noexcept {
    auto* c = new connection{std::make_unique<http::request_parser>(_config.http_limits),
                             {},
                             {},
                             {},
                             {},
                             {},
                             ws::frame_parser(ws::role::server, _config.ws_limits)};
    c->last_rx_ms = _io.now_ms();
    c->opened_ms = c->last_rx_ms;
    _io.set_timer(h, core::conn_timer::liveness, _io.now_ms() + _config.handshake_timeout_ms);
    c->listener = from;
    c->admission = mode;
    if (_io.awaits_client(h)) {
        c->state = phase::proxy_header;
    }
    return c;
}

result<conn_handle> gateway::connect(const core::outbound_target& to,
                                     core::outbound_client& client) noexcept {
    auto* c = new connection{nullptr, {}, {}, {}, {}, {}, ws::frame_parser(ws::role::client)};
    c->state = phase::outbound;
    c->client = &client;
    result<conn_handle> h = _io.connect(to, c);
    if (!h) {
        delete c; // nothing follows a refused connect
    }
    return h;
}

void gateway::on_connect_result(conn_handle h, void* user, std::error_code error) noexcept {
    auto& c = *static_cast<connection*>(user);
    RINGCAST_ASSERT(c.state == phase::outbound);
    c.client->on_connect_result(h, error);
}

void gateway::on_closed(conn_handle h, void* user) noexcept {
    auto* c = static_cast<connection*>(user);
    if (c->state == phase::outbound) {
        c->client->on_closed(h);
        delete c;
        return;
    }
    forget_inbound(*c);
    _deflate_reserved -= c->deflate_reserved;
    if (c->state == phase::websocket && !(c->session && c->session->closing())) {
        // Neither side sent a close frame: the peer went away (1006, RFC 6455 §7.1.5).
        _closes.close_received(static_cast<uint16_t>(ws::close_code::abnormal));
    }
    if (c->sio && c->session && _config.socketio.recovery_ms > 0) {
        park_socketio(*c);
    }
    if (c->session) {
        if (c->holds_user_slot) {
            release_user_slot(c->session->user_id());
        }
        _engine.close_session(h, *c->session);
    }
    delete c;
}

void gateway::on_data(conn_handle h, void* user, std::span<std::byte> bytes) noexcept {
    auto& c = *static_cast<connection*>(user);
    c.last_rx_ms = _io.now_ms();
    const bool first_read = std::exchange(c.first_read, false);
    switch (c.state) {
    case phase::outbound:
        return c.client->on_data(h, bytes);
    case phase::proxy_header:
        read_proxy_header(h, c, bytes);
        break;
    case phase::http:
        if (first_read && starts_with_proxy_preamble(bytes)) {
            // A proxy whose address is not in --proxy-protocol-from (or a client posing as
            // one): say why instead of a 400 about a strange request line, and count it so
            // an operator sees a proxy that lost its trust (docs/proxy-protocol.md).
            ++_proxy_header_untrusted;
            send_response(h, c,
                          http::make_error_response(
                              400, "PROXY protocol header from an address not trusted to send one",
                              http::keep_alive::no),
                          http::keep_alive::no, head_only::no);
            break;
        }
        read_http(h, c, bytes);
        break;
    case phase::user_slot:
        // Frames sent before the 101 (the client did not wait for it): kept for the
        // session, bounded like pipelined requests and counted as inbound held; a client
        // pushing more is dropped.
        if (c.stash.size() + bytes.size() >
            _config.http_limits.max_header_bytes + _config.http_limits.max_body_bytes) {
            ++_user_slot_early_closes;
            c.state = phase::closed;
            _io.close(h, core::close_mode::now);
            return;
        }
        c.stash.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
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

// --- PROXY protocol -----------------------------------------------------------------------

void gateway::read_proxy_header(conn_handle h, connection& c, std::span<std::byte> bytes) noexcept {
    // Usually the whole header is in the first read: it is parsed where it lies. Only a
    // header split over reads is gathered in proxy_bytes, never more of a read than a
    // header can still take, so the bytes after it stay in `bytes` for read_http.
    const std::size_t kept_before = c.proxy_bytes.size();
    proxy_parse r;
    if (kept_before == 0) {
        r = parse_proxy_header(bytes);
    } else {
        const std::size_t take = std::min(bytes.size(), proxy_header_max_bytes - kept_before);
        c.proxy_bytes.append(reinterpret_cast<const char*>(bytes.data()), take);
        r = parse_proxy_header(std::as_bytes(std::span(c.proxy_bytes)));
    }
    switch (r.status) {
    case proxy_status::need_more:
        if (kept_before == 0) {
            // need_more means fewer bytes than a header's maximum: all of them are kept.
            c.proxy_bytes.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        }
        return;
    case proxy_status::error:
        return drop_proxy_connection(h, c, _proxy_header_invalid);
    case proxy_status::done:
        break;
    }
    ++_proxy_headers;
    // What of this read the header took (the rest of it was kept from earlier reads, which
    // were a header's prefix: the reader answers need_more for every prefix of a header).
    RINGCAST_ASSERT(r.consumed > kept_before);
    const std::size_t used = r.consumed - kept_before;
    std::string().swap(c.proxy_bytes);
    peer_address client = _io.peer(h);
    switch (r.header.client) {
    case proxy_client::carried:
        client = r.header.source;
        break;
    case proxy_client::own:
        break; // LOCAL, UNKNOWN: the proxy speaks for itself
    }
    switch (_io.admit_client(h, client)) {
    case core::client_verdict::admitted:
        break;
    case core::client_verdict::refused:
        c.state = phase::closed; // the shard sent the 429 and is closing it
        return;
    }
    c.state = phase::http;
    if (used < bytes.size()) {
        read_http(h, c, bytes.subspan(used));
    }
}

void gateway::drop_proxy_connection(conn_handle h, connection& c, uint64_t& counter) noexcept {
    ++counter;
    std::string().swap(c.proxy_bytes);
    c.state = phase::closed;
    _io.close(h, core::close_mode::after_flush);
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
            // Expected peer behaviour (a scanner, a broken client): debug only.
            RINGCAST_LOG(log::level::debug, "http_refused")
                .field("status", r.http_status)
                .field("reason", r.reason)
                .msg("shard %u: bad request answered %d: %.*s", unsigned(_io.id()),
                     r.http_status, int(r.reason.size()), r.reason.data());
            send_response(h, c,
                          http::make_error_response(r.http_status, r.reason, http::keep_alive::no),
                          http::keep_alive::no, head_only::no);
            return;
        }
        bytes = bytes.subspan(r.consumed);
        if (!answer(h, c, c.http->get(), bytes)) {
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
    // A restricted connection holds one of the few spare slots: one answer, then it goes.
    const auto ka = req.keep_alive() && c.admission == core::admission::full ? http::keep_alive::yes
                                                                             : http::keep_alive::no;
    const head_only head = req.method == "HEAD" ? head_only::yes : head_only::no;
    const route_match m = find_route(_routes, req.method, req.path, c.listener, c.admission);
    // A handshake for the access log: a request asking for a WebSocket, wherever it goes.
    const bool upgrading = req.header_has_token("upgrade", "websocket");
    const bool handshake =
        log::access_log() &&
        (upgrading || (m.row != nullptr && m.row->kind == route_kind::websocket));
    switch (m.status) {
    case route_status::found:
        break;
    case route_status::restricted:
        // Full: a client that honours Retry-After comes back when connections have turned
        // over, instead of at once into the same refusal.
        send_response(h, c,
                      http::make_error_response(m.http_status, m.reason, ka, http::retry_after(5)),
                      ka, head);
        if (handshake) {
            log_handshake(h, c, req.path, _last_status);
        }
        return c.state == phase::http;
    case route_status::not_found:
    case route_status::wrong_listener:
    case route_status::method_not_allowed:
        send_response(h, c, http::make_error_response(m.http_status, m.reason, ka), ka, head);
        if (handshake) {
            log_handshake(h, c, req.path, _last_status);
        }
        return c.state == phase::http;
    }
    const route& row = *m.row;
    route_kind kind = row.kind;
    if (kind == route_kind::websocket_or_http) {
        kind = upgrading ? route_kind::websocket : route_kind::http;
    }
    switch (kind) {
    case route_kind::websocket_or_http: // resolved above
    case route_kind::http:
        // The bytes after the request are the next pipelined request: read_http's.
        (this->*row.handler)(request_context{h, c, req, ka, head, {}});
        return c.state == phase::http;
    case route_kind::websocket:
        if (_io.drain() == core::drain_phase::closing) {
            refuse_draining(h, c);
            if (handshake) {
                log_handshake(h, c, req.path, 503);
            }
            return false;
        }
        // The handler's upgrade frees the parser that req.path points into.
        char path_copy[log::value_max_bytes];
        const std::string_view path(path_copy, handshake ? std::min(req.path.size(),
                                                                     sizeof(path_copy))
                                                          : 0);
        std::memcpy(path_copy, req.path.data(), path.size());
        _last_status = 0;
        (this->*row.handler)(request_context{h, c, req, ka, head, rest});
        // phase::user_slot: answered later, and logged then (on_mesh user_answer). The
        // handler may have closed the connection already: `c` is still ours until
        // on_closed, which comes from a later completion.
        if (handshake && c.state != phase::user_slot && _last_status != 0) {
            log_handshake(h, c, path, _last_status);
        }
        return false;
    }
    return false;
}

void gateway::send_response(conn_handle h, connection& c, std::string response, http::keep_alive ka,
                            head_only head) noexcept {
    if (head == head_only::yes) {
        // RFC 9110 §9.3.2: a HEAD response carries the GET headers and no body; a body here
        // would be read as the start of the next response on a keep-alive connection.
        if (const auto end = response.find("\r\n\r\n"); end != std::string::npos) {
            response.resize(end + 4);
        }
    }
    // "HTTP/1.1 NNN ...": the status for the access log.
    _last_status = response.size() > 12 ? unsigned(response[9] - '0') * 100 +
                                              unsigned(response[10] - '0') * 10 +
                                              unsigned(response[11] - '0')
                                        : 0;
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

void gateway::reply(const request_context& ctx, std::string response) noexcept {
    send_response(ctx.h, ctx.conn, std::move(response), ctx.ka, ctx.head);
}

void gateway::respond(conn_handle h, std::string response) noexcept {
    auto* c = static_cast<connection*>(_io.user(h));
    if (c == nullptr || !c->awaiting) {
        return; // closed while the other shards answered
    }
    c->awaiting = false;
    send_response(h, *c, std::move(response), c->awaiting_ka, c->awaiting_head);
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

void gateway::upgrade(conn_handle h, connection& c, std::string_view response,
                      ws_endpoint endpoint) noexcept {
    _last_status = 101;
    _io.send(h, core::make_frame(response));
    c.state = phase::websocket;
    c.endpoint = endpoint;
    c.http.reset();
    arm_liveness_timer(h, c);
}

// --- permessage-deflate (docs/protocol.md "Compression") ----------------------------------

std::optional<ws::deflate_agreement> gateway::negotiate_deflate(const http::request& req) noexcept {
    if (!_config.permessage_deflate) {
        return std::nullopt;
    }
    const std::string offers = http::extension_offers(req);
    if (offers.empty()) {
        return std::nullopt;
    }
    const ws::deflate_negotiation n = ws::negotiate_deflate(offers);
    switch (n.verdict) {
    case ws::deflate_verdict::accepted:
        break;
    case ws::deflate_verdict::not_offered:
    case ws::deflate_verdict::malformed:
    case ws::deflate_verdict::unsupported:
        return std::nullopt; // RFC 6455 §9.1: the upgrade goes on without the extension
    }
    if (!n.agreement.client_no_context_takeover) {
        // Its inflater lives as long as the connection: decline now if the budget has no
        // room. The reservation itself is made at the upgrade (start_deflate), so a
        // handshake refused meanwhile (429, 503) holds none while its socket closes
        // (perf/attack/deflate attack 10 filled both shards' budgets that way).
        const std::size_t cost = ws::inflater_cost_bytes(n.agreement.client_max_window_bits);
        if (_deflate_reserved + cost > _config.deflate_memory_budget_bytes) {
            ++_deflate_declined_budget;
            return std::nullopt;
        }
    }
    return n.agreement;
}

std::string gateway::upgrade_response(const http::request& req,
                                      const std::optional<ws::deflate_agreement>& deflate) {
    return deflate ? http::upgrade_response(req, ws::deflate_response_value(*deflate))
                   : http::upgrade_response(req);
}

void gateway::start_deflate(connection& c,
                            const std::optional<ws::deflate_agreement>& deflate) noexcept {
    if (!deflate) {
        return;
    }
    if (!deflate->client_no_context_takeover) {
        // Reserved now that the upgrade happens. Handshakes that waited for a user slot
        // meanwhile may take the total past the budget by their few reservations.
        const std::size_t cost = ws::inflater_cost_bytes(deflate->client_max_window_bits);
        _deflate_reserved += cost;
        c.deflate_reserved += cost;
    }
    ++_deflate_negotiated;
    c.deflate = true;
    c.deflate_takeover = !deflate->client_no_context_takeover;
    c.deflate_client_window_bits = deflate->client_max_window_bits;
    c.ws.accept_compressed();
}

void gateway::on_compressed_message(const frame_context& f, ws::opcode type,
                                    std::span<const std::byte> payload) noexcept {
    if (f.conn.state != phase::websocket) {
        return;
    }
    ws::inflater* inflater = nullptr;
    try {
        if (f.conn.deflate_takeover) {
            if (!f.conn.inflate) {
                f.conn.inflate = std::make_unique<ws::inflater>(f.conn.deflate_client_window_bits,
                                                                true, &_inflate_memory);
            }
            inflater = f.conn.inflate.get();
        } else {
            if (!_shared_inflater) {
                _shared_inflater = std::make_unique<ws::inflater>(15, false);
            }
            inflater = _shared_inflater.get();
        }
    } catch (const std::bad_alloc&) {
        return close_websocket(f.h, f.conn, ws::close_code::internal_error,
                               "out of memory for decompression");
    }
    // Inflating is paid from the session's command bucket (engine::may_inflate,
    // charge_inflated): with the bucket empty the message is not inflated — refused over
    // the rate like a command, or, for a client that keeps its context (a skipped message
    // would break the next one), closed. A Socket.IO connection before its CONNECT has no
    // bucket yet: its messages may inflate to 64 KiB (a CONNECT with a token is far less).
    std::size_t limit = _config.ws_limits.max_message_bytes;
    if (f.conn.session) {
        if (!_engine.may_inflate(f.h, *f.conn.session)) {
            ++_deflate_rate_refused;
            if (f.conn.deflate_takeover) {
                f.conn.session->mark_closing();
                return close_websocket(f.h, f.conn, ws::close_code::policy_violation,
                                       "compressed messages faster than the command rate");
            }
            return;
        }
    } else if (f.conn.endpoint == ws_endpoint::socketio) {
        limit = std::min<std::size_t>(limit, std::size_t{64} << 10);
    }
    ++_compressed_messages_in;
    _compressed_bytes_in += payload.size();
    const ws::inflate_status s = inflater->inflate(payload, limit, _inflated);
    // A large message leaves no large buffer behind it (the frame parser's rule, ws.h).
    const auto release = [this]() noexcept {
        if (_inflated.capacity() > (std::size_t{64} << 10)) {
            std::vector<std::byte>().swap(_inflated);
        }
    };
    switch (s) {
    case ws::inflate_status::ok:
        break;
    case ws::inflate_status::too_big:
        ++_deflate_bomb_closes;
        release();
        return close_websocket(f.h, f.conn, ws::close_code::message_too_big,
                               "inflated message exceeds the size limit");
    case ws::inflate_status::invalid:
        ++_deflate_invalid_closes;
        release();
        return close_websocket(f.h, f.conn, ws::close_code::invalid_payload,
                               "compressed message is not valid deflate data");
    case ws::inflate_status::no_memory:
        release();
        return close_websocket(f.h, f.conn, ws::close_code::internal_error,
                               "out of memory for decompression");
    }
    _inflated_bytes_in += _inflated.size();
    if (f.conn.session) {
        _engine.charge_inflated(*f.conn.session, _inflated.size());
    }
    if (type == ws::opcode::text && !ws::is_valid_utf8(_inflated)) {
        release();
        return close_websocket(f.h, f.conn, ws::close_code::invalid_payload,
                               "text message is not valid UTF-8");
    }
    on_message(f, type, _inflated);
    release();
}

// --- WebSocket ----------------------------------------------------------------------------

/// One read's frame events, forwarded with the connection they belong to. Lives on
/// read_frames()' stack for one ws::frame_parser::feed() call.
class gateway::frame_events final : public ws::frame_sink {
public:
    frame_events(gateway& g, const frame_context& f) noexcept : _gateway(g), _frame(f) {}

    void on_message(ws::opcode type, std::span<const std::byte> payload) noexcept override {
        _gateway.on_message(_frame, type, payload);
    }
    void on_compressed_message(ws::opcode type,
                               std::span<const std::byte> payload) noexcept override {
        _gateway.on_compressed_message(_frame, type, payload);
    }
    void on_ping(std::span<const std::byte> payload) noexcept override {
        _gateway.on_ping(_frame, payload);
    }
    void on_pong(std::span<const std::byte>) noexcept override {
        // Liveness is any inbound byte (last_rx_ms); an unsolicited pong needs no answer
        // (RFC 6455 §5.5.3).
    }
    void on_close(uint16_t code, std::string_view) noexcept override {
        _gateway.on_close(_frame, code);
    }

private:
    gateway& _gateway;
    frame_context _frame;
};

void gateway::read_frames(conn_handle h, connection& c, std::span<std::byte> bytes) noexcept {
    frame_events events(*this, frame_context{h, c});
    const ws::parse_result r = c.ws.feed(bytes, events);
    if (r.status == ws::parse_status::error && c.state == phase::websocket) {
        // RFC 6455 §7.1.7: fail the connection with the code that names the violation.
        close_websocket(h, c, r.code, r.reason);
    }
}

// --- the shard's inbound budget -----------------------------------------------------------

namespace {

// Not constexpr: clang rejects libstdc++ 12's constexpr std::string() in a constant
// expression; set once at start-up instead.
const std::size_t string_inline_capacity = std::string().capacity();

/// Heap bytes a string holds: none while it fits its inline buffer (15 bytes in
/// libstdc++). Counting capacity() alone made every connection that ever sent a byte a
/// "holder" of 15 bytes: 10 idle pub/sub connections showed inbound_held_bytes 150.
std::size_t heap_bytes(const std::string& s) noexcept {
    return s.capacity() > string_inline_capacity ? s.capacity() : 0;
}

} // namespace

std::size_t gateway::inbound_held(const connection& c) noexcept {
    return c.ws.held_bytes() + (c.http ? c.http->held_bytes() : 0) + heap_bytes(c.proxy_bytes) +
           heap_bytes(c.stash);
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
        } else if (c->state == phase::proxy_header) {
            // A PROXY header still arriving: nothing to answer it with (the protocol
            // drops bad headers unanswered); its bytes go at once.
            std::string().swap(c->proxy_bytes);
            c->state = phase::closed;
            _io.close(h, core::close_mode::after_flush);
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

ws::close_counts gateway::close_stats() const noexcept {
    ws::close_counts all = _closes;
    all.merge(_engine.closes());
    return all;
}

admin::edge_counters gateway::edge_stats() const noexcept {
    admin::edge_counters e;
    e.inbound_held_bytes = _inbound_held;
    e.inbound_budget_closes = _inbound_budget_closes;
    e.refused_origin = _refused_origin;
    e.refused_user_limit = _refused_user_limit;
    e.user_slot_early_closes = _user_slot_early_closes;
    e.user_slot_users = _user_slots.users();
    e.proxy_headers = _proxy_headers;
    e.proxy_header_invalid = _proxy_header_invalid;
    e.proxy_header_timeouts = _proxy_header_timeouts;
    e.proxy_header_untrusted = _proxy_header_untrusted;
    e.refused_token_missing = _refused_tokens[std::size_t(token_refusal::missing)];
    e.refused_token_expired = _refused_tokens[std::size_t(token_refusal::expired)];
    e.refused_token_invalid = _refused_tokens[std::size_t(token_refusal::invalid)];
    e.refused_token_claims = _refused_tokens[std::size_t(token_refusal::claims)];
    e.token_expiry_closes = _token_expiry_closes;
    e.reloads = _reloads;
    e.deflate_negotiated = _deflate_negotiated;
    e.deflate_declined_budget = _deflate_declined_budget;
    e.deflate_reserved_bytes = _deflate_reserved;
    e.deflate_inflater_bytes = _inflate_memory.held_bytes;
    e.compressed_messages_in = _compressed_messages_in;
    e.compressed_bytes_in = _compressed_bytes_in;
    e.inflated_bytes_in = _inflated_bytes_in;
    e.deflate_bomb_closes = _deflate_bomb_closes;
    e.deflate_invalid_closes = _deflate_invalid_closes;
    e.deflate_rate_refused = _deflate_rate_refused;
    e.socketio_connections = _sio_connections;
    e.socketio_connects = _sio_connects;
    e.socketio_connect_errors = _sio_connect_errors;
    e.socketio_polling_sessions = _sio_polling.size();
    e.socketio_polling_refused = _sio_polling_refused;
    e.socketio_parked = _sio_parked.size();
    e.socketio_parked_dropped = _sio_parked_dropped;
    e.socketio_recovered = _sio_recovered;
    e.socketio_not_recovered = _sio_not_recovered;
    return e;
}

void gateway::on_message(const frame_context& f, ws::opcode type,
                         std::span<const std::byte> payload) noexcept {
    if (f.conn.state != phase::websocket) {
        return;
    }
    switch (f.conn.endpoint) {
    case ws_endpoint::pubsub:
        return pubsub_message(f, type, payload);
    case ws_endpoint::echo:
        return echo_message(f, type, payload);
    case ws_endpoint::socketio:
        return socketio_message(f, type, payload);
    }
}

void gateway::pubsub_message(const frame_context& f, ws::opcode type,
                             std::span<const std::byte> payload) noexcept {
    if (type != ws::opcode::text) {
        return close_websocket(f.h, f.conn, ws::close_code::unsupported_data,
                               "binary messages are not accepted");
    }
    _engine.on_text(
        f.h, *f.conn.session,
        std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()));
}

void gateway::echo_message(const frame_context& f, ws::opcode type,
                           std::span<const std::byte> payload) noexcept {
    _io.send(f.h, ws::make_server_frame(type, payload));
}

void gateway::on_ping(const frame_context& f, std::span<const std::byte> payload) noexcept {
    // RFC 6455 §5.5.2: answer with a pong carrying the same application data.
    if (f.conn.state == phase::websocket) {
        _io.send(f.h, ws::make_server_frame(ws::opcode::pong, payload));
    }
}

void gateway::on_close(const frame_context& f, uint16_t code) noexcept {
    if (f.conn.state != phase::websocket) {
        return;
    }
    f.conn.state = phase::closed;
    if (f.conn.session && f.conn.session->closing()) {
        // The echo of the close pubsub sent (slow consumer, disconnect): the close is
        // already under way, and nothing may follow our close frame (RFC 6455 §5.5.1).
        return;
    }
    _closes.close_received(code);
    // RFC 6455 §5.5.1: answer a close with a close, echoing the status code.
    if (code == static_cast<uint16_t>(ws::close_code::no_status)) {
        _io.send(f.h, ws::make_server_frame(ws::opcode::close, std::span<const std::byte>()));
    } else {
        std::array<std::byte, 2> body{std::byte(code >> 8), std::byte(code & 0xff)};
        _io.send(f.h, ws::make_server_frame(ws::opcode::close, body));
    }
    _io.close(f.h, core::close_mode::after_flush);
}

void gateway::close_websocket(conn_handle h, connection& c, ws::close_code code,
                              std::string_view reason) noexcept {
    if (c.session) {
        // Nothing may follow the close frame (RFC 6455 §5.5.1): fan-out stops queueing to
        // it, and an ack window stops counting messages that will never be sent.
        c.session->mark_closing();
    }
    // A close we start: protocol errors, limits, slow consumers, expiry. The peer caused
    // it and counters already count it; the line is for debugging one client.
    RINGCAST_LOG(log::level::debug, "ws_close")
        .field("code", uint16_t(code))
        .field("reason", reason)
        .msg("shard %u: closing a WebSocket with %u: %.*s", unsigned(_io.id()),
             unsigned(uint16_t(code)), int(reason.size()), reason.data());
    c.state = phase::closed;
    _closes.close_sent(code);
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

void gateway::on_reload(const std::shared_ptr<const core::reload_payload>& settings) noexcept {
    const auto* reloaded = dynamic_cast<const reloaded_settings*>(settings.get());
    if (reloaded == nullptr) {
        return;
    }
    // Only what may change live (net.h reloaded_settings); paths, listeners and the
    // shard layout stay as started.
    const gateway_config& next = reloaded->config;
    _config.allowed_origins = next.allowed_origins;
    _config.max_connections_per_user = next.max_connections_per_user;
    _user_slots.set_limit(std::max<uint32_t>(1, next.max_connections_per_user));
    _config.handshake_timeout_ms = next.handshake_timeout_ms;
    _config.ping_interval_ms = next.ping_interval_ms;
    _config.pong_timeout_ms = next.pong_timeout_ms;
    _config.idle_timeout_ms = next.idle_timeout_ms;
    if (_verifier && next.tokens.keys) {
        // New keys (rotated files, a new JWKS) and verify options; the old verifier goes
        // once the engine holds the new one.
        _config.tokens = next.tokens;
        auto fresh = std::make_unique<auth::verifier>(*_config.tokens.keys, _config.tokens.verify);
        _engine.reload(next.pubsub, fresh.get());
        _verifier = std::move(fresh);
    } else {
        _engine.reload(next.pubsub, _verifier.get());
    }
    _api.reload(next.api);
    ++_reloads;
}

void gateway::on_shard_timer() noexcept {
    _api.on_timer();
}

void gateway::on_timer(conn_handle h, void* user, core::conn_timer which) noexcept {
    auto& c = *static_cast<connection*>(user);
    if (c.state == phase::outbound) {
        return c.client->on_timer(h, which);
    }
    switch (which) {
    case core::conn_timer::liveness:
        break;
    case core::conn_timer::expiry:
        // Armed by the engine for an authenticated session at its token's exp + leeway,
        // and moved by each refresh: firing means no refresh came in time.
        if (c.state == phase::websocket) {
            ++_token_expiry_closes;
            if (c.session) {
                c.session->mark_closing();
            }
            close_websocket(h, c, ws::close_code::token_expired, "token expired");
        }
        return;
    case core::conn_timer::acks:
        // Armed by the engine while the session has unacknowledged messages.
        if (c.state == phase::websocket && c.session) {
            _engine.on_ack_timer(h, *c.session);
        }
        return;
    }
    const uint64_t now = _io.now_ms();
    if (c.state == phase::proxy_header) {
        // The handshake timeout, armed at accept, covers the header as well as the request.
        return drop_proxy_connection(h, c, _proxy_header_timeouts);
    }
    if (c.state == phase::http && c.awaiting && c.sio_poll_seq != 0) {
        // A long-polling GET held this long: answered "6" (noop), and the client polls
        // again (socketio_session.h). An answer from the owner after this is ignored.
        c.sio_poll_seq = 0;
        return respond(h, http::make_response(200, "text/plain; charset=UTF-8", "6",
                                              c.awaiting_ka));
    }
    if (c.state == phase::user_slot || (c.state == phase::http && c.awaiting)) {
        // The keep-alive idle clock does not run while our own answer is pending (an API
        // response, or the user's home shard deciding on a slot).
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
            http::keep_alive::no, head_only::no);
        return;
    }
    if (c.state != phase::websocket) {
        return;
    }
    if (c.endpoint == ws_endpoint::socketio) {
        return socketio_liveness(h, c); // Engine.IO's own heartbeat, not WebSocket pings
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
    if (c.state == phase::outbound) {
        return; // a broker's requests are bounded by the link (src/engine), not dropped
    }
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
    if (c.state == phase::outbound) {
        return c.client->on_shutdown(h);
    }
    if (c.state == phase::websocket) {
        close_websocket(h, c, ws::close_code::going_away, "server shutting down");
    } else if (c.state == phase::http || c.state == phase::proxy_header ||
               c.state == phase::user_slot) {
        c.state = phase::closed;
        _io.close(h, core::close_mode::now);
    }
}

void gateway::refuse_draining(conn_handle h, connection& c) noexcept {
    // Its sessions are being closed: a new one would be closed in turn. Another node behind
    // the balancer takes it (docs/operations.md "Drain").
    send_response(h, c,
                  http::make_error_response(503, "server draining; connect to another",
                                            http::keep_alive::no, http::retry_after(1)),
                  http::keep_alive::no, head_only::no);
}

bool gateway::on_drain(conn_handle h, void* user) noexcept {
    auto& c = *static_cast<connection*>(user);
    if (c.state != phase::websocket) {
        // An HTTP request or API call ends with the shard; a broker link stays until the
        // last session is gone (their publishes still need it).
        return false;
    }
    // After what is queued for it (close_websocket flushes first): a client reconnects and
    // recovers from the offset of the last message it got (docs/operations.md "Drain").
    close_websocket(h, c, ws::close_code::going_away, "server draining; reconnect");
    return true;
}

} // namespace ringcast::net
