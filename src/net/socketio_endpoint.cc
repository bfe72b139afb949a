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
    const std::string_view polling_sid = req.query_param("sid");
    if (transport == "polling") {
        return serve_polling(ctx, polling_sid);
    }
    if (transport != "websocket") {
        return refuse(400, "unknown transport");
    }
    if (!polling_sid.empty() && !sid_owner(polling_sid, _io.shards())) {
        return refuse(400, "unknown session id");
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
    auto sid = polling_sid.empty() ? make_owned_sid(_io.id())
                                   : result<std::string, std::string_view>(std::string(polling_sid));
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
    const std::optional<ws::deflate_agreement> deflate = negotiate_deflate(req);
    upgrade(ctx.h, c, upgrade_response(req, deflate), ws_endpoint::socketio);
    start_deflate(c, deflate);
    c.sio = std::move(state);
    ++_sio_connections;
    sio_connection& s = *c.sio;
    s.upgraded_ms = _io.now_ms();
    s.next_ping_ms = s.upgraded_ms + _config.socketio.ping_interval_ms;
    if (!polling_sid.empty()) {
        // An upgrade: the session was opened over polling; "2probe" comes first.
        s.polling_sid = s.sid;
        arm_socketio_timer(ctx.h, c);
        if (!ctx.rest.empty()) {
            read_frames(ctx.h, c, ctx.rest);
        }
        return;
    }
    // The open packet: a WebSocket-only client gets no upgrades.
    socketio::eio_handshake open;
    open.sid = s.sid;
    open.websocket_upgrade = false;
    open.ping_interval_ms = _config.socketio.ping_interval_ms;
    open.ping_timeout_ms = _config.socketio.ping_timeout_ms;
    open.max_payload_bytes = static_cast<uint32_t>(
        std::min<std::size_t>(_config.ws_limits.max_message_bytes, UINT32_MAX));
    _io.send(ctx.h, ws::make_server_frame(ws::opcode::text, socketio::encode_open(open)));
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
    if (!s.polling_sid.empty()) {
        return sio_upgrading(f, type, bytes);
    }
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
        ++_sio_connect_errors;
        return send_sio(f.h, socketio::encode_connect_error(nsp, "Invalid namespace"));
    }
    auto auth = socketio::parse_connect_auth(p.data);
    if (!auth) {
        ++_sio_connect_errors;
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
            ++_sio_connect_errors;
            return send_sio(f.h, socketio::encode_connect_error(nsp, "not authorized", data));
        }
        if (f.conn.session && verified->user_id != f.conn.session->user_id()) {
            ++_sio_connect_errors;
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
    if (_config.socketio.recovery_ms > 0 && auth->pid && !s.connected(nsp)) {
        for (const auto& r : s.recovering) {
            if (r.nsp == nsp) {
                return; // a second CONNECT while the first recovers: the first answers
            }
        }
        // Where the pid was parked is not in it (a recovered pid moves with its client):
        // every shard is asked, and the one that has it answers with the rooms.
        s.recovering.push_back(sio_connection::recovering_connect{
            std::string(nsp), *auth->pid, 0, true, _io.shards(), false});
        for (unsigned shard = 0; shard < _io.shards(); ++shard) {
            auto m = std::make_unique<sio_msg>();
            m->what = sio_msg::op::restore;
            m->sid = *auth->pid;
            m->body = auth->offset.value_or("");
            m->headers = f.conn.session->user_id();
            m->packets.emplace_back(nsp);
            m->conn = f.h;
            to_owner(shard_id(static_cast<uint16_t>(shard)), std::move(m));
            if (_io.user(f.h) != &f.conn) {
                return;
            }
        }
        return;
    }
    sio_connected(f.h, f.conn, nsp, {});
}

void gateway::sio_connected(conn_handle h, connection& c, std::string_view nsp,
                            std::string pid) noexcept {
    sio_connection& s = *c.sio;
    auto sid = socketio::make_sid();
    if (!sid) {
        return send_sio(h, socketio::encode_connect_error(nsp, "no session id"));
    }
    if (!s.connected(nsp)) {
        s.namespaces.emplace_back(nsp);
        ++_sio_connects;
    }
    if (_config.socketio.recovery_ms == 0) {
        send_sio(h, socketio::encode_connect(nsp, *sid));
    } else {
        if (pid.empty()) {
            auto fresh = socketio::make_sid();
            if (!fresh) {
                return send_sio(h, socketio::encode_connect_error(nsp, "no session id"));
            }
            pid = std::move(*fresh);
        }
        send_sio(h, socketio::encode_connect(nsp, *sid, pid));
        std::erase_if(s.pids, [nsp](const auto& p) { return p.first == nsp; });
        s.pids.emplace_back(std::string(nsp), std::move(pid));
    }
    arm_socketio_timer(h, c);
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
    sio_command(f, id, p.nsp, p.ack_id, command,
                join    ? sio_connection::purpose::join
                : p.event == _config.socketio.leave_event ? sio_connection::purpose::leave
                                                          : sio_connection::purpose::other,
                channel);
}

void gateway::sio_command(const frame_context& f, uint64_t id, std::string_view nsp,
                          std::optional<uint64_t> ack_id, std::string_view command,
                          sio_connection::purpose why, std::string_view channel) noexcept {
    sio_connection& s = *f.conn.sio;
    if (why == sio_connection::purpose::restore) {
        // Ours, at most one per parked room: neither the client's rate nor its bounds.
        s.awaiting_bytes += command.size();
        s.awaiting.emplace(id, sio_connection::awaiting_reply{std::string(nsp), ack_id, why,
                                                              std::string(channel),
                                                              command.size()});
        return _engine.on_own_text(f.h, *f.conn.session, command);
    }
    if (_engine.over_rate(*f.conn.session)) {
        return sio_refuse(f, nsp, ack_id, 429,
                          "too many commands; slow down (over the command rate)");
    }
    if (s.awaiting.size() >= sio_max_awaiting ||
        s.awaiting_bytes + command.size() > sio_max_awaiting_bytes) {
        return sio_refuse(f, nsp, ack_id, 429, "too many commands waiting for their replies");
    }
    s.awaiting_bytes += command.size();
    s.awaiting.emplace(id, sio_connection::awaiting_reply{std::string(nsp), ack_id, why,
                                                          std::string(channel), command.size()});
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
    sio_connection::purpose why = sio_connection::purpose::other;
    std::string channel;
    if (numbered) {
        if (auto it = s.awaiting.find(id); it != s.awaiting.end()) {
            nsp = std::move(it->second.nsp);
            ack_id = it->second.ack_id;
            why = it->second.why;
            channel = std::move(it->second.channel);
            s.awaiting_bytes -= it->second.bytes;
            s.awaiting.erase(it);
        }
    }
    const bool ok = body.starts_with("{\"ok\":true");
    switch (why) {
    case sio_connection::purpose::other:
        break;
    case sio_connection::purpose::join:
    case sio_connection::purpose::restore:
        if (ok) {
            // Where the room starts for a later recovery: the reply's epoch and offset.
            std::string_view epoch;
            if (const auto at = body.find("\"epoch\":\""); at != std::string::npos) {
                const std::size_t from = at + 9;
                epoch = std::string_view(body).substr(from, body.find('"', from) - from);
            }
            uint64_t offset = 0;
            if (const auto at = body.find("\"offset\":"); at != std::string::npos) {
                std::from_chars(body.data() + at + 9, body.data() + body.size(), offset);
            }
            std::erase_if(s.rooms, [&](const sio_room& r) {
                return r.nsp == nsp && r.channel == channel;
            });
            s.rooms.push_back(
                sio_room{nsp, channel, std::string(epoch), offset, _engine.socketio_seq()});
        }
        if (why == sio_connection::purpose::restore) {
            for (auto it = s.recovering.begin(); it != s.recovering.end(); ++it) {
                if (it->nsp != nsp) {
                    continue;
                }
                it->recovered &= ok && body.find("\"recovered\":true") != std::string::npos;
                if (--it->outstanding == 0 && it->shards_waiting == 0) {
                    std::string pid = it->recovered && it->found ? std::move(it->pid) : std::string();
                    ++(pid.empty() ? _sio_not_recovered : _sio_recovered);
                    s.recovering.erase(it);
                    sio_connected(h, *c, nsp, std::move(pid));
                }
                break;
            }
            return; // a resubscription of ours: no ACK
        }
        break;
    case sio_connection::purpose::leave:
        if (ok) {
            std::erase_if(s.rooms, [&](const sio_room& r) {
                return r.nsp == nsp && r.channel == channel;
            });
        }
        break;
    }
    if (ack_id) {
        return send_sio(h, socketio::encode_ack(nsp, *ack_id, body));
    }
    if (!ok) {
        send_sio(h, socketio::encode_event(nsp, "ringcast:error", body));
    }
}

// --- connection state recovery ----------------------------------------------------------------

void gateway::park_socketio(connection& c) noexcept {
    sio_connection& s = *c.sio;
    const uint64_t expires = _io.now_ms() + _config.socketio.recovery_ms;
    for (auto& [nsp, pid] : s.pids) {
        sio_parked parked{c.session->user_id(), nsp, {}, expires};
        for (const sio_room& r : s.rooms) {
            if (r.nsp == nsp) {
                parked.rooms.push_back(r);
            }
        }
        if (_sio_parked.size() >= sio_max_parked ||
            _sio_parked_rooms + parked.rooms.size() > sio_max_parked_rooms) {
            _sio_swept_ms = 0; // the expired go first
            sweep_polling();
        }
        while (!_sio_parked.empty() &&
               (_sio_parked.size() >= sio_max_parked ||
                _sio_parked_rooms + parked.rooms.size() > sio_max_parked_rooms)) {
            // Full of live ones: the one that would expire soonest goes. O(parked), only
            // when full.
            auto oldest = std::min_element(_sio_parked.begin(), _sio_parked.end(),
                                           [](const auto& a, const auto& b) {
                                               return a.second.expires_ms < b.second.expires_ms;
                                           });
            _sio_parked_rooms -= oldest->second.rooms.size();
            _sio_parked.erase(oldest);
            ++_sio_parked_dropped;
        }
        _sio_parked_rooms += parked.rooms.size();
        if (auto old = _sio_parked.find(pid); old != _sio_parked.end()) {
            _sio_parked_rooms -= old->second.rooms.size();
            old->second = std::move(parked);
        } else {
            _sio_parked.emplace(std::move(pid), std::move(parked));
        }
    }
}

void gateway::restore_parked(shard_id asker, sio_msg& m) noexcept {
    auto r = std::make_unique<sio_msg>();
    r->what = sio_msg::op::restored;
    r->conn = m.conn;
    r->sid = m.sid;
    auto it = _sio_parked.find(m.sid);
    if (it != _sio_parked.end() && it->second.expires_ms > _io.now_ms() &&
        it->second.user == m.headers && !m.packets.empty() && it->second.nsp == m.packets[0]) {
        r->found = true;
        for (const sio_room& room : it->second.rooms) {
            r->rooms.push_back(sio_room_position{
                room.nsp, room.channel, room.epoch,
                _engine.socketio_position(room.channel, m.body, room.joined_offset,
                                          room.joined_seq)});
        }
        _sio_parked_rooms -= it->second.rooms.size();
        _sio_parked.erase(it);
        ++_sio_restored;
    }
    to_asker(asker, std::move(r));
}

void gateway::sio_restored(conn_handle h, connection& c, sio_msg& m) noexcept {
    sio_connection& s = *c.sio;
    const auto find = [&s, &m] {
        return std::find_if(s.recovering.begin(), s.recovering.end(),
                            [&](const auto& r) { return r.pid == m.sid; });
    };
    auto it = find();
    if (it == s.recovering.end()) {
        return;
    }
    --it->shards_waiting;
    if (m.found) {
        // Counted before the first is sent: a resubscription can be answered inside
        // sio_command (a channel homed here), and the CONNECT must wait for all of them.
        it->found = true;
        it->outstanding += static_cast<uint32_t>(m.rooms.size());
        const frame_context f{h, c};
        for (const sio_room_position& room : m.rooms) {
            const uint64_t id = s.next_command++;
            std::string command = "{\"op\":\"subscribe\"";
            append_field(command, "channel", room.channel);
            if (room.position) {
                command += ",\"recover\":{\"epoch\":";
                socketio::append_json_string(command, room.epoch);
                command += ",\"offset\":" + std::to_string(*room.position) + "}";
            } else if (auto r = find(); r != s.recovering.end()) {
                r->recovered = false; // resubscribed, but from now
            }
            command += ",\"id\":" + std::to_string(id) + "}";
            sio_command(f, id, room.nsp, std::nullopt, command, sio_connection::purpose::restore,
                        room.channel);
            if (_io.user(h) != &c || c.state != phase::websocket) {
                return;
            }
        }
        it = find();
        if (it == s.recovering.end()) {
            return; // every resubscription answered already, and the CONNECT with them
        }
    }
    if (it->shards_waiting == 0 && it->outstanding == 0) {
        std::string pid = it->recovered && it->found ? std::move(it->pid) : std::string();
        ++(pid.empty() ? _sio_not_recovered : _sio_recovered);
        const std::string nsp = it->nsp;
        s.recovering.erase(it);
        sio_connected(h, c, nsp, std::move(pid));
    }
}

// --- long-polling (socketio_session.h) ------------------------------------------------------

std::optional<shard_id> sid_owner(std::string_view sid, unsigned shards) noexcept {
    if (sid.size() != 3 + 20) {
        return std::nullopt;
    }
    unsigned owner = 0;
    const auto [end, ec] = std::from_chars(sid.data(), sid.data() + 3, owner, 16);
    if (ec != std::errc() || end != sid.data() + 3 || owner >= shards) {
        return std::nullopt;
    }
    return shard_id(static_cast<uint16_t>(owner));
}

result<std::string, std::string_view> make_owned_sid(shard_id owner) {
    auto random = socketio::make_sid();
    if (!random) {
        return random;
    }
    constexpr char hex[] = "0123456789abcdef";
    const auto n = unsigned(owner);
    std::string sid{hex[(n >> 8) & 0xf], hex[(n >> 4) & 0xf], hex[n & 0xf]};
    sid += *random;
    return sid;
}

void gateway::serve_polling(const request_context& ctx, std::string_view sid) noexcept {
    const http::request& req = ctx.req;
    connection& c = ctx.conn;
    // A page on another origin polls with XMLHttpRequest: it may read the answers when its
    // origin is allowed (--allowed-origins; any when unset).
    const std::string_view origin = req.header_value("origin");
    std::string headers;
    if (!origin.empty()) {
        if (!origin_allowed(origin, _config.allowed_origins)) {
            ++_refused_origin;
            return reply(ctx, http::make_error_response(403, "origin not allowed", ctx.ka));
        }
        headers = "Access-Control-Allow-Origin: " + std::string(origin) +
                  "\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n";
    }
    if (req.method == "OPTIONS") {
        headers += "Access-Control-Allow-Methods: GET, POST\r\n"
                   "Access-Control-Allow-Headers: content-type\r\n";
        return reply(ctx, http::make_response(204, "text/plain", "", ctx.ka, headers));
    }
    const bool get = req.method == "GET" || req.method == "HEAD";
    if (!get && req.method != "POST") {
        return reply(ctx, http::make_error_response(405, "use GET or POST", ctx.ka));
    }
    if (sid.empty()) {
        // The handshake: the session is this shard's.
        if (!get) {
            return reply(ctx, http::make_error_response(400, "a session starts with a GET", ctx.ka));
        }
        sweep_polling();
        if (_sio_polling.size() >= sio_max_polling_sessions) {
            ++_sio_polling_refused;
            return reply(ctx, http::make_error_response(503, "too many sessions opening; retry",
                                                        ctx.ka, http::retry_after(1)));
        }
        auto made = make_owned_sid(_io.id());
        if (!made) {
            return reply(ctx, http::make_error_response(503, made.error(), ctx.ka));
        }
        socketio::eio_handshake open;
        open.sid = *made;
        open.websocket_upgrade = true;
        open.ping_interval_ms = _config.socketio.ping_interval_ms;
        open.ping_timeout_ms = _config.socketio.ping_timeout_ms;
        open.max_payload_bytes = static_cast<uint32_t>(
            std::min<std::size_t>(_config.http_limits.max_body_bytes, UINT32_MAX));
        sio_polling session;
        session.expires_ms = _io.now_ms() + _config.handshake_timeout_ms;
        _sio_polling.emplace(*made, std::move(session));
        return reply(ctx, http::make_response(200, "text/plain; charset=UTF-8",
                                              socketio::encode_open(open), ctx.ka, headers));
    }
    const std::optional<shard_id> owner = sid_owner(sid, _io.shards());
    if (!owner) {
        return reply(ctx, http::make_response(400, "application/json",
                                              "{\"code\":1,\"message\":\"Session ID unknown\"}",
                                              ctx.ka, headers));
    }
    auto m = std::make_unique<sio_msg>();
    m->what = get ? sio_msg::op::get : sio_msg::op::post;
    m->sid = std::string(sid);
    m->conn = ctx.h;
    m->seq = ++_sio_poll_seq == 0 ? ++_sio_poll_seq : _sio_poll_seq;
    m->headers = std::move(headers);
    if (!get) {
        m->body = std::string(req.body);
    }
    // The connection waits as for an /api/ answer (respond), at most the hold time.
    c.awaiting = true;
    c.awaiting_ka = ctx.ka;
    c.awaiting_head = ctx.head;
    c.sio_poll_seq = m->seq;
    _io.set_timer(ctx.h, core::conn_timer::liveness,
                  _io.now_ms() + std::min(_config.handshake_timeout_ms,
                                          _config.socketio.ping_interval_ms));
    // An answer from this shard comes back inside this call: respond() must not replay
    // pipelined bytes from here (read_http goes on with them).
    _in_api = true;
    to_owner(*owner, std::move(m));
    _in_api = false;
}

void gateway::to_owner(shard_id owner, std::unique_ptr<sio_msg> m) noexcept {
    if (owner == _io.id()) {
        return on_mesh(kinds::sio_to_owner{}, owner, std::move(m));
    }
    _io.post<kinds::sio_to_owner>(owner, std::move(m));
}

void gateway::to_asker(shard_id asker, std::unique_ptr<sio_msg> m) noexcept {
    if (asker == _io.id()) {
        return on_mesh(kinds::sio_to_asker{}, asker, std::move(m));
    }
    _io.post<kinds::sio_to_asker>(asker, std::move(m));
}

void gateway::answer_poll(shard_id asker, const sio_msg& m, int status, std::string body) noexcept {
    auto a = std::make_unique<sio_msg>();
    a->what = sio_msg::op::answer;
    a->conn = m.conn;
    a->seq = m.seq;
    a->status = status;
    a->headers = m.headers;
    a->response = std::move(body);
    to_asker(asker, std::move(a));
}

void gateway::sweep_polling() noexcept {
    const uint64_t now = _io.now_ms();
    if (now < _sio_swept_ms + 1000) {
        return;
    }
    _sio_swept_ms = now;
    std::erase_if(_sio_polling, [now](const auto& entry) { return entry.second.expires_ms <= now; });
    std::erase_if(_sio_parked, [this, now](const auto& entry) {
        if (entry.second.expires_ms > now) {
            return false;
        }
        _sio_parked_rooms -= entry.second.rooms.size();
        return true;
    });
}

void gateway::on_mesh(kinds::sio_to_owner, shard_id from, std::unique_ptr<sio_msg> m) noexcept {
    sweep_polling();
    auto it = _sio_polling.find(m->sid);
    if (it != _sio_polling.end() && it->second.expires_ms <= _io.now_ms()) {
        _sio_polling.erase(it);
        it = _sio_polling.end();
    }
    constexpr std::string_view unknown = "{\"code\":1,\"message\":\"Session ID unknown\"}";
    switch (m->what) {
    case sio_msg::op::post: {
        if (it == _sio_polling.end()) {
            return answer_poll(from, *m, 400, std::string(unknown));
        }
        sio_polling& session = it->second;
        socketio::eio_limits limits;
        limits.max_payload_bytes = _config.http_limits.max_body_bytes;
        auto packets = socketio::decode_payload(m->body, limits);
        if (!packets) {
            _sio_polling.erase(it);
            return answer_poll(from, *m, 400, "{\"code\":3,\"message\":\"Bad request\"}");
        }
        for (const socketio::eio_packet& p : *packets) {
            switch (p.type) {
            case socketio::eio_type::message:
                if (p.encoding == socketio::eio_encoding::binary ||
                    session.packets.size() >= sio_max_polling_packets ||
                    session.bytes + p.text.size() > sio_max_polling_bytes) {
                    _sio_polling.erase(it);
                    return answer_poll(from, *m, 400,
                                       "{\"code\":3,\"message\":\"Bad request\"}");
                }
                session.bytes += p.text.size();
                session.packets.emplace_back(p.text);
                break;
            case socketio::eio_type::close:
                _sio_polling.erase(it);
                return answer_poll(from, *m, 200, "ok");
            case socketio::eio_type::open:
            case socketio::eio_type::ping:
            case socketio::eio_type::pong:
            case socketio::eio_type::upgrade:
            case socketio::eio_type::noop:
                break; // nothing for a session that is about to move to its WebSocket
            }
        }
        return answer_poll(from, *m, 200, "ok");
    }
    case sio_msg::op::get: {
        if (it == _sio_polling.end()) {
            return answer_poll(from, *m, 400, std::string(unknown));
        }
        sio_polling& session = it->second;
        if (session.probed) {
            return answer_poll(from, *m, 200, "6");
        }
        if (session.poll_seq != 0) {
            // A GET still held means the client gave up on it: it asks only one at a time.
            sio_msg old;
            old.conn = session.poll_conn;
            old.seq = session.poll_seq;
            answer_poll(session.poll_shard, old, 200, "6");
        }
        session.poll_shard = from;
        session.poll_conn = m->conn;
        session.poll_seq = m->seq;
        return; // held by the asker
    }
    case sio_msg::op::probe:
        if (it != _sio_polling.end()) {
            sio_polling& session = it->second;
            session.probed = true;
            if (session.poll_seq != 0) {
                sio_msg held;
                held.conn = session.poll_conn;
                held.seq = session.poll_seq;
                session.poll_seq = 0;
                answer_poll(session.poll_shard, held, 200, "6");
            }
        }
        return;
    case sio_msg::op::take: {
        auto t = std::make_unique<sio_msg>();
        t->what = sio_msg::op::taken;
        t->conn = m->conn;
        if (it != _sio_polling.end()) {
            t->found = true;
            t->packets = std::move(it->second.packets);
            _sio_polling.erase(it);
        }
        return to_asker(from, std::move(t));
    }
    case sio_msg::op::restore:
        return restore_parked(from, *m);
    case sio_msg::op::answer:
    case sio_msg::op::taken:
    case sio_msg::op::restored:
        return; // the asker's kinds
    }
}

void gateway::on_mesh(kinds::sio_to_asker, shard_id, std::unique_ptr<sio_msg> m) noexcept {
    auto* c = static_cast<connection*>(_io.user(m->conn));
    if (c == nullptr) {
        return; // closed meanwhile
    }
    switch (m->what) {
    case sio_msg::op::answer: {
        if (!c->awaiting || c->sio_poll_seq != m->seq) {
            return; // the request was answered already (held too long) or is gone
        }
        c->sio_poll_seq = 0;
        const std::string_view type = m->status == 200 ? "text/plain; charset=UTF-8"
                                                       : "application/json";
        return respond(m->conn,
                       http::make_response(m->status, type, m->response, c->awaiting_ka, m->headers));
    }
    case sio_msg::op::taken:
        if (c->state == phase::websocket && c->sio && c->sio->taking) {
            sio_taken(m->conn, *c, *m);
        }
        return;
    case sio_msg::op::restored:
        if (c->state == phase::websocket && c->sio) {
            sio_restored(m->conn, *c, *m);
        }
        return;
    case sio_msg::op::post:
    case sio_msg::op::get:
    case sio_msg::op::probe:
    case sio_msg::op::take:
    case sio_msg::op::restore:
        return; // the owner's kinds
    }
}

void gateway::sio_upgrading(const frame_context& f, ws::opcode type, std::string_view bytes) noexcept {
    sio_connection& s = *f.conn.sio;
    if (s.taking) {
        if (s.early.size() >= sio_max_early_messages) {
            return close_websocket(f.h, f.conn, ws::close_code::policy_violation,
                                   "too many messages during the upgrade");
        }
        // A binary message is kept with a leading 'b', a text one with 't'.
        std::string kept(1, type == ws::opcode::binary ? 'b' : 't');
        kept += bytes;
        s.early.push_back(std::move(kept));
        return;
    }
    const std::optional<shard_id> owner = sid_owner(s.polling_sid, _io.shards());
    if (type == ws::opcode::text && !s.probed && bytes == socketio::probe_ping && owner) {
        s.probed = true;
        _io.send(f.h, ws::make_server_frame(ws::opcode::text, socketio::probe_pong));
        auto m = std::make_unique<sio_msg>();
        m->what = sio_msg::op::probe;
        m->sid = s.polling_sid;
        m->conn = f.h;
        return to_owner(*owner, std::move(m));
    }
    if (type == ws::opcode::text && s.probed && bytes == socketio::upgrade_packet && owner) {
        s.taking = true;
        auto m = std::make_unique<sio_msg>();
        m->what = sio_msg::op::take;
        m->sid = s.polling_sid;
        m->conn = f.h;
        return to_owner(*owner, std::move(m));
    }
    close_websocket(f.h, f.conn, ws::close_code::protocol_error,
                    "an upgrade from polling starts with 2probe, then 5");
}

void gateway::sio_taken(conn_handle h, connection& c, sio_msg& m) noexcept {
    if (!m.found) {
        return close_websocket(h, c, ws::close_code::policy_violation, "session unknown or expired");
    }
    sio_connection& s = *c.sio;
    s.polling_sid.clear();
    s.taking = false;
    const frame_context f{h, c};
    // What the client POSTed (its CONNECTs), then what it sent here meanwhile, as if all
    // had come over this WebSocket.
    for (const std::string& packet : m.packets) {
        if (c.state != phase::websocket || _io.user(h) != &c) {
            return;
        }
        const std::string text = "4" + packet;
        socketio_message(f, ws::opcode::text, std::as_bytes(std::span(text)));
    }
    std::vector<std::string> early = std::move(s.early);
    for (const std::string& kept : early) {
        if (c.state != phase::websocket || _io.user(h) != &c) {
            return;
        }
        const auto type = kept.front() == 'b' ? ws::opcode::binary : ws::opcode::text;
        socketio_message(f, type, std::as_bytes(std::span(kept).subspan(1)));
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
