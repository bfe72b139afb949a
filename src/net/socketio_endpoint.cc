// /socket.io/: unchanged socket.io-client applications on ringcast (docs/socketio.md).
// socketio_session.h has the model: Socket.IO packets become docs/protocol.md commands for
// the engine, whose replies come back through on_reply as ACKs; channel messages reach the
// connection re-framed by fan-out (src/pubsub/socketio_wire.h).
#include "gateway.h"

#include <ringcast/log.h>

#include <simdjson.h>

#include <algorithm>
#include <charconv>

namespace ringcast::net {

namespace {

/// An EVENT's arguments read as (room, data): the room a JSON string, unescaped; the data
/// the raw JSON of the second argument, empty when there is none.
struct room_args {
    std::string room;
    std::string_view data;
};

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' ||
                          s.front() == '\r')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' ||
                          s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

/// `args`: sio_packet::args, the validated JSON between the array's brackets after the
/// event name. The reason on failure is the text of the refusal.
result<room_args, std::string_view> read_room_args(std::string_view args) {
    args = trim(args);
    if (args.empty() || args.front() != '"') {
        return unexpected{std::string_view("the first argument must be the room (a string)")};
    }
    // The string's end: the first quote not escaped (the packet is valid JSON).
    std::size_t end = 1;
    while (end < args.size() && args[end] != '"') {
        end += args[end] == '\\' ? 2 : 1;
    }
    if (end >= args.size()) {
        return unexpected{std::string_view("the first argument must be the room (a string)")};
    }
    thread_local simdjson::dom::parser parser;
    const simdjson::padded_string first(args.substr(0, end + 1));
    std::string_view room;
    if (parser.parse(first).get(room) != simdjson::SUCCESS) {
        return unexpected{std::string_view("the first argument must be the room (a string)")};
    }
    room_args out{std::string(room), {}};
    std::string_view rest = trim(args.substr(end + 1));
    if (rest.empty()) {
        return out;
    }
    rest = trim(rest.substr(1)); // the ',' between the arguments
    // One value only: "1,2" is not one JSON text.
    const simdjson::padded_string second(rest);
    simdjson::dom::element ignored;
    if (parser.parse(second).get(ignored) != simdjson::SUCCESS) {
        return unexpected{std::string_view("emit (room, data): one data argument after the room")};
    }
    out.data = rest;
    return out;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out += ",\"";
    out += name;
    out += "\":";
    socketio::append_json_string(out, value);
}

} // namespace

void gateway::serve_socketio(const request_context& ctx) noexcept {
    const http::request& req = ctx.req;
    const auto refuse = [&](int status, std::string_view reason) {
        send_response(ctx.h, ctx.conn,
                      http::make_error_response(status, reason, http::keep_alive::no),
                      http::keep_alive::no, ctx.head);
    };
    if (req.query_param("EIO") != "4") {
        return refuse(400, "unsupported Engine.IO version: EIO=4 (socket.io-client 3 and 4) only");
    }
    const std::string_view transport = req.query_param("transport");
    if (transport == "polling") {
        return refuse(400, "the polling transport is not served: connect with "
                           "transports: [\"websocket\"]");
    }
    if (transport != "websocket") {
        return refuse(400, "unknown transport");
    }
    if (!req.query_param("sid").empty()) {
        return refuse(400, "unknown session id: there is no polling session to upgrade");
    }
    const std::string_view user = _config.insecure ? req.query_param("user") : std::string_view();
    if (!user.empty() && !pubsub::valid_user_id(user)) {
        return refuse(400, "user must be 1-64 characters of A-Za-z0-9_.@-");
    }
    const http::upgrade_check check = http::check_upgrade(req);
    if (check.status != 101) {
        return refuse(check.status, check.reason);
    }
    if (!origin_allowed(req.header_value("origin"), _config.allowed_origins)) {
        ++_refused_origin;
        return refuse(403, "origin not allowed");
    }
    auto sid = socketio::make_sid();
    if (!sid) {
        return refuse(503, "no session id: the random source failed");
    }
    connection& c = ctx.conn;
    socketio::sio_limits limits;
    limits.max_packet_bytes = _config.ws_limits.max_message_bytes;
    limits.max_attachment_bytes = _config.ws_limits.max_message_bytes;
    auto state = std::make_unique<sio_connection>(limits);
    state->sid = std::move(*sid);
    state->user = std::string(user);
    const std::optional<ws::deflate_agreement> deflate = negotiate_deflate(c, req);
    upgrade(ctx.h, c, upgrade_response(req, deflate), ws_endpoint::socketio);
    start_deflate(c, deflate);
    c.sio = std::move(state);
    sio_connection& s = *c.sio;
    // The open packet: a WebSocket-only client gets no upgrades.
    socketio::eio_handshake open;
    open.sid = s.sid;
    open.websocket_upgrade = false;
    open.ping_interval_ms = _config.socketio.ping_interval_ms;
    open.ping_timeout_ms = _config.socketio.ping_timeout_ms;
    open.max_payload_bytes = static_cast<uint32_t>(
        std::min<std::size_t>(_config.ws_limits.max_message_bytes, UINT32_MAX));
    _io.send(ctx.h, ws::make_server_frame(ws::opcode::text, socketio::encode_open(open)));
    s.upgraded_ms = _io.now_ms();
    s.next_ping_ms = s.upgraded_ms + _config.socketio.ping_interval_ms;
    arm_socketio_timer(ctx.h, c);
    if (!ctx.rest.empty()) {
        read_frames(ctx.h, c, ctx.rest);
    }
}

void gateway::send_sio(conn_handle h, std::string_view packet) noexcept {
    std::string message;
    message.reserve(packet.size() + 1);
    message += '4'; // Engine.IO "message"
    message += packet;
    _io.send(h, ws::make_server_frame(ws::opcode::text, message));
}

void gateway::socketio_message(const frame_context& f, ws::opcode type,
                               std::span<const std::byte> payload) noexcept {
    sio_connection& s = *f.conn.sio;
    const std::string_view bytes(reinterpret_cast<const char*>(payload.data()), payload.size());
    if (type == ws::opcode::binary) {
        // An attachment of a BINARY_EVENT / BINARY_ACK (the only binary Engine.IO message).
        auto r = s.decoder.feed_binary(bytes);
        if (!r) {
            return close_websocket(f.h, f.conn, ws::close_code::invalid_payload,
                                   socketio::describe(r.error()));
        }
        if (*r == socketio::sio_decoder::status::ready) {
            sio_packet(f, s.decoder.packet());
        }
        return;
    }
    auto eio = socketio::decode_eio_text(bytes);
    if (!eio) {
        return close_websocket(f.h, f.conn, ws::close_code::invalid_payload,
                               socketio::describe(eio.error()));
    }
    switch (eio->type) {
    case socketio::eio_type::message: {
        auto r = s.decoder.feed_text(eio->data);
        if (!r) {
            return close_websocket(f.h, f.conn, ws::close_code::invalid_payload,
                                   socketio::describe(r.error()));
        }
        if (*r == socketio::sio_decoder::status::ready) {
            sio_packet(f, s.decoder.packet());
        }
        return;
    }
    case socketio::eio_type::pong:
        s.ping_sent_ms = 0;
        s.next_ping_ms = _io.now_ms() + _config.socketio.ping_interval_ms;
        return;
    case socketio::eio_type::ping:
        // Engine.IO 3 clients pinged; a 4 client pings only "2probe" on an upgrade.
        return _io.send(f.h, ws::make_server_frame(
                                 ws::opcode::text,
                                 socketio::encode_eio_text(socketio::eio_type::pong, eio->data)));
    case socketio::eio_type::close:
        if (f.conn.session) {
            f.conn.session->mark_closing();
        }
        return close_websocket(f.h, f.conn, ws::close_code::normal, "");
    case socketio::eio_type::open:
    case socketio::eio_type::upgrade:
    case socketio::eio_type::noop:
        return close_websocket(f.h, f.conn, ws::close_code::protocol_error,
                               "unexpected Engine.IO packet on a WebSocket session");
    }
}

void gateway::sio_packet(const frame_context& f, const socketio::sio_packet& p) noexcept {
    switch (p.type) {
    case socketio::sio_type::connect:
        return sio_connect(f, p);
    case socketio::sio_type::disconnect: {
        // The namespace's socket is gone on the client; its rooms stay subscribed until
        // the connection ends (docs/socketio.md "Not supported").
        auto& names = f.conn.sio->namespaces;
        names.erase(std::remove(names.begin(), names.end(), p.nsp), names.end());
        return;
    }
    case socketio::sio_type::event:
        return sio_event(f, p);
    case socketio::sio_type::ack:
    case socketio::sio_type::binary_ack:
        return; // the server asks for no ACK (its events carry no ack id)
    case socketio::sio_type::binary_event:
        return sio_refuse(f, p.nsp, p.ack_id, 415,
                          "binary attachments are not accepted: ringcast data is JSON");
    case socketio::sio_type::connect_error:
        return close_websocket(f.h, f.conn, ws::close_code::protocol_error,
                               "CONNECT_ERROR comes from the server only");
    }
}

void gateway::sio_connect(const frame_context& f, const socketio::sio_packet& p) noexcept {
    sio_connection& s = *f.conn.sio;
    const std::string_view nsp = p.nsp;
    const auto& configured = _config.pubsub.socketio.namespaces;
    const bool known = nsp == "/" || std::find(configured.begin(), configured.end(),
                                               nsp.substr(1)) != configured.end();
    if (!known) {
        return send_sio(f.h, socketio::encode_connect_error(nsp, "Invalid namespace"));
    }
    auto auth = socketio::parse_connect_auth(p.data);
    if (!auth) {
        return send_sio(f.h, socketio::encode_connect_error(nsp, "invalid auth payload"));
    }
    std::optional<auth::identity> who;
    if (_verifier) {
        auto verified = auth->token ? verify_token(*auth->token)
                                    : result<auth::identity, std::string_view>(
                                          unexpected{std::string_view("token required")});
        if (!auth->token) {
            ++_refused_tokens[std::size_t(token_refusal::missing)];
        }
        if (!verified) {
            std::string data = "{\"reason\":";
            socketio::append_json_string(data, verified.error());
            data += '}';
            return send_sio(f.h, socketio::encode_connect_error(nsp, "not authorized", data));
        }
        if (f.conn.session && verified->user_id != f.conn.session->user_id()) {
            return send_sio(f.h, socketio::encode_connect_error(
                                     nsp, "not authorized", "{\"reason\":\"token for another user\"}"));
        }
        who = std::move(*verified);
    }
    if (!f.conn.session) {
        f.conn.session = std::make_unique<pubsub::session>();
        f.conn.session->speak_socketio(*this);
        if (f.conn.deflate) {
            f.conn.session->enable_deflate(15);
        }
        if (who) {
            _engine.open_session(f.h, *f.conn.session, std::move(*who));
        } else {
            _engine.open_session(f.h, *f.conn.session, s.user, false, sys_access_of(f.h, nullptr));
        }
    }
    auto sid = socketio::make_sid();
    if (!sid) {
        return send_sio(f.h, socketio::encode_connect_error(nsp, "no session id"));
    }
    if (!s.connected(nsp)) {
        s.namespaces.emplace_back(nsp);
    }
    send_sio(f.h, socketio::encode_connect(nsp, *sid));
    arm_socketio_timer(f.h, f.conn);
}

void gateway::sio_event(const frame_context& f, const socketio::sio_packet& p) noexcept {
    sio_connection& s = *f.conn.sio;
    if (!f.conn.session || !s.connected(p.nsp)) {
        return; // socket.io drops packets of a namespace the client has not connected
    }
    auto args = read_room_args(p.args);
    if (!args) {
        return sio_refuse(f, p.nsp, p.ack_id, 400, args.error());
    }
    // The room's channel: on "/" the room is the channel; in /NAME it is NAME:<room>.
    std::string channel;
    if (p.nsp == "/") {
        const std::string home = pubsub::socketio_namespace_of(args->room, _config.pubsub.socketio);
        if (home != "/") {
            return sio_refuse(f, p.nsp, p.ack_id, 403,
                              "this room belongs to the Socket.IO namespace " + home +
                                  ": connect there and use the room name after the ':'");
        }
        channel = args->room;
    } else {
        channel.assign(p.nsp.substr(1));
        channel += ':';
        channel += args->room;
    }
    const uint64_t id = s.next_command++;
    std::string command;
    command.reserve(96 + channel.size() + args->data.size());
    const bool join = p.event == _config.socketio.join_event;
    if (join || p.event == _config.socketio.leave_event) {
        command = join ? "{\"op\":\"subscribe\"" : "{\"op\":\"unsubscribe\"";
        append_field(command, "channel", channel);
    } else {
        command = "{\"op\":\"publish\"";
        append_field(command, "channel", channel);
        append_field(command, "event", p.event);
        command += ",\"data\":";
        command += args->data.empty() ? std::string_view("null") : args->data;
    }
    command += ",\"id\":";
    command += std::to_string(id);
    command += '}';
    sio_command(f, id, p.nsp, p.ack_id, command);
}

void gateway::sio_command(const frame_context& f, uint64_t id, std::string_view nsp,
                          std::optional<uint64_t> ack_id, std::string_view command) noexcept {
    sio_connection& s = *f.conn.sio;
    s.awaiting.emplace(id, sio_connection::awaiting_reply{std::string(nsp), ack_id});
    if (s.awaiting.size() > sio_max_awaiting) {
        s.awaiting.erase(s.awaiting.begin());
    }
    _engine.on_text(f.h, *f.conn.session, command);
}

void gateway::sio_refuse(const frame_context& f, std::string_view nsp,
                         std::optional<uint64_t> ack_id, int code,
                         std::string_view message) noexcept {
    std::string body = "{\"ok\":false,\"error\":{\"code\":";
    body += std::to_string(code);
    append_field(body, "message", message);
    body += "}}";
    send_sio(f.h, ack_id ? socketio::encode_ack(nsp, *ack_id, body)
                         : socketio::encode_event(nsp, "ringcast:error", body));
}

void gateway::on_reply(conn_handle h, std::string_view text) noexcept {
    auto* c = static_cast<connection*>(_io.user(h));
    if (c == nullptr || !c->sio || c->state != phase::websocket) {
        return;
    }
    sio_connection& s = *c->sio;
    // Replies are {"op":"reply","id":N|null,"ok":…}: the same object without op and id
    // answers the command's ACK.
    constexpr std::string_view reply_head = "{\"op\":\"reply\",\"id\":";
    if (!text.starts_with(reply_head)) {
        // A notice ({"op":"notice",…}): an event on "/".
        return send_sio(h, socketio::encode_event("/", "ringcast:notice", text));
    }
    std::string_view rest = text.substr(reply_head.size());
    uint64_t id = 0;
    bool numbered = false;
    if (const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), id);
        ec == std::errc()) {
        numbered = true;
        rest.remove_prefix(std::size_t(end - rest.data()));
    } else if (rest.starts_with("null")) {
        rest.remove_prefix(4);
    }
    if (!rest.starts_with(',')) {
        return;
    }
    std::string body = "{";
    body += rest.substr(1);
    std::string nsp = "/";
    std::optional<uint64_t> ack_id;
    if (numbered) {
        if (auto it = s.awaiting.find(id); it != s.awaiting.end()) {
            nsp = std::move(it->second.nsp);
            ack_id = it->second.ack_id;
            s.awaiting.erase(it);
        }
    }
    if (ack_id) {
        return send_sio(h, socketio::encode_ack(nsp, *ack_id, body));
    }
    if (body.starts_with("{\"ok\":false")) {
        send_sio(h, socketio::encode_event(nsp, "ringcast:error", body));
    }
}

// --- heartbeat ------------------------------------------------------------------------------

void gateway::arm_socketio_timer(conn_handle h, const connection& c) noexcept {
    const sio_connection& s = *c.sio;
    uint64_t deadline = s.ping_sent_ms != 0 ? s.ping_sent_ms + _config.socketio.ping_timeout_ms
                                            : s.next_ping_ms;
    if (s.namespaces.empty() && !c.session) {
        deadline = std::min(deadline, s.upgraded_ms + _config.handshake_timeout_ms);
    }
    _io.set_timer(h, core::conn_timer::liveness, deadline);
}

void gateway::socketio_liveness(conn_handle h, connection& c) noexcept {
    sio_connection& s = *c.sio;
    const uint64_t now = _io.now_ms();
    if (!c.session && now >= s.upgraded_ms + _config.handshake_timeout_ms) {
        return close_websocket(h, c, ws::close_code::policy_violation,
                               "no Socket.IO CONNECT in time");
    }
    if (s.ping_sent_ms != 0 && now >= s.ping_sent_ms + _config.socketio.ping_timeout_ms) {
        return close_websocket(h, c, ws::close_code::going_away, "ping timeout");
    }
    if (s.ping_sent_ms == 0 && now >= s.next_ping_ms) {
        _io.send(h, ws::make_server_frame(ws::opcode::text, socketio::ping_packet));
        s.ping_sent_ms = now;
    }
    arm_socketio_timer(h, c);
}

} // namespace ringcast::net
