// The route handlers: one gateway member per row of make_routes() (routes.cc), each given
// its request_context by gateway::answer() after the lookup let the request through. Their
// contracts are in gateway.h; what they share is in routes.h (route_handler).
#include "gateway.h"

#include <ringcast/log.h>

#include <arpa/inet.h>
#include <time.h>

namespace ringcast::net {

void gateway::serve_api(const request_context& ctx) noexcept {
    connection& c = ctx.conn;
    c.awaiting = true;
    c.awaiting_ka = ctx.ka;
    c.awaiting_head = ctx.head;
    _in_api = true;
    auto response = _api.handle(ctx.h, ctx.req, ctx.ka);
    _in_api = false;
    if (response) {
        c.awaiting = false;
        reply(ctx, std::move(*response));
    }
}

void gateway::serve_pubsub(const request_context& ctx) noexcept {
    const http::request& req = ctx.req;
    const std::string_view user = _config.insecure ? req.query_param("user") : std::string_view();
    if (!user.empty() && !pubsub::valid_user_id(user)) {
        send_response(ctx.h, ctx.conn,
                      http::make_error_response(400,
                                                "user must be 1-64 characters of A-Za-z0-9_.@-",
                                                http::keep_alive::no),
                      http::keep_alive::no, ctx.head);
        return;
    }
    const http::upgrade_check check = http::check_upgrade(req);
    if (check.status != 101) {
        send_response(ctx.h, ctx.conn,
                      http::make_error_response(check.status, check.reason, http::keep_alive::no),
                      http::keep_alive::no, ctx.head);
        return;
    }
    // No exception for the server's own origin: the Host header that would name it is the
    // client's to write, so a DNS-rebinding page could claim it. An operator who restricts
    // origins lists the server's own for its pages (docs/security.md "Origins").
    const std::string_view origin = req.header_value("origin");
    if (!origin_allowed(origin, _config.allowed_origins)) {
        ++_refused_origin;
        send_response(ctx.h, ctx.conn,
                      http::make_error_response(403, "origin not allowed", http::keep_alive::no),
                      http::keep_alive::no, ctx.head);
        return;
    }
    // A backend feed: an API key with the publish scope as a bearer token, only when keys
    // are configured. Never from the query string: URLs end up in proxy and access logs,
    // browser history and Referer headers (a backend is not a browser and can set the
    // header). A key without the scope makes an ordinary client session.
    const admin::api_key* key = admin::bearer_key(req, _config.api.keys);
    const bool backend = key != nullptr && key->allows(admin::api_scope::publish);
    // A key with the admin scope (what GET /api/stats needs) may watch sys:stats, so it
    // opens a session too: a monitor, not a feed, unless it has the publish scope as well.
    const bool monitor = key != nullptr && key->allows(admin::api_scope::admin);
    // With JWT keys every other client proves who it is, before any WebSocket exists. A
    // bearer that is an API key with neither scope is no token either: refused.
    std::optional<auth::identity> who;
    if (_verifier && !backend && !monitor) {
        auto verified = authenticate(req);
        if (!verified) {
            send_response(ctx.h, ctx.conn,
                          http::make_error_response(401, verified.error(), http::keep_alive::no),
                          http::keep_alive::no, ctx.head);
            return;
        }
        who = std::move(*verified);
    }
    // The request goes with the HTTP parser at the upgrade: keep what the session needs.
    std::optional<ws::deflate_agreement> deflate = negotiate_deflate(req);
    admit_pubsub(ctx, pubsub_start{upgrade_response(req, deflate), std::move(who),
                                   std::string(user), backend, sys_access_of(ctx.h, key),
                                   deflate});
}

pubsub::sys_access gateway::sys_access_of(conn_handle h, const admin::api_key* key) const noexcept {
    if (key != nullptr) {
        return key->allows(admin::api_scope::admin) ? pubsub::sys_access::yes
                                                    : pubsub::sys_access::no;
    }
    // No credential anywhere on this server: what /api/stats shows to this host, sys:stats
    // shows to it too, and to no one else.
    const bool open_server = !_verifier && _config.api.keys.empty();
    return open_server && _io.peer(h).loopback() ? pubsub::sys_access::yes
                                                 : pubsub::sys_access::no;
}

void gateway::admit_pubsub(const request_context& ctx, pubsub_start start) noexcept {
    const std::string_view user = start.who ? std::string_view(start.who->user_id)
                                            : std::string_view(start.user_id);
    if (start.backend || user.empty() || _config.max_connections_per_user == 0) {
        return open_pubsub(ctx.h, ctx.conn, std::move(start), ctx.rest);
    }
    const auto home = shard_id(static_cast<uint16_t>(pubsub::home_shard(user, _io.shards())));
    if (home == _io.id() && !_broker) {
        if (!_user_slots.take(user)) {
            return refuse_user_limit(ctx.h, ctx.conn);
        }
        ctx.conn.holds_user_slot = true;
        return open_pubsub(ctx.h, ctx.conn, std::move(start), ctx.rest);
    }
    // The home shard counts this user (and with an engine asks every node's count): the
    // handshake waits for its answer (finish_claim). The rest of the read is at most one
    // read's bytes.
    auto claim = std::make_unique<user_slot_msg>(user_slot_msg{std::string(user), ctx.h});
    ctx.conn.stash.assign(reinterpret_cast<const char*>(ctx.rest.data()), ctx.rest.size());
    ctx.conn.pending = std::make_unique<pubsub_start>(std::move(start));
    ctx.conn.http.reset();
    ctx.conn.state = phase::user_slot;
    if (home == _io.id()) {
        return claim_at_home(home, std::move(claim));
    }
    _io.post<kinds::user_claim>(home, std::move(claim));
}

void gateway::claim_at_home(shard_id from, std::unique_ptr<user_slot_msg> m) noexcept {
    if (!_user_slots.take(m->user)) {
        m->granted = false;
        return answer_claim(from, std::move(m));
    }
    if (!_broker) {
        m->granted = true;
        return answer_claim(from, std::move(m));
    }
    const uint64_t token = ++_claim_seq;
    const uint32_t held = _user_slots.held(m->user);
    const std::string user = m->user;
    _claims.emplace(token, pending_claim{from, std::move(m)});
    _broker->claim_user(user, held, _config.max_connections_per_user, token);
}

void gateway::on_user_claimed(uint64_t token, bool granted) noexcept {
    auto node = _claims.extract(token);
    if (node.empty()) {
        return;
    }
    std::unique_ptr<user_slot_msg> m = std::move(node.mapped().msg);
    if (!granted) {
        give_back_here(m->user);
    }
    m->granted = granted;
    answer_claim(node.mapped().from, std::move(m));
}

void gateway::on_user_counts_lost() noexcept {
    _user_slots.for_each(
        [this](std::string_view user, uint32_t held) { _broker->count_user(user, held); });
}

void gateway::answer_claim(shard_id to, std::unique_ptr<user_slot_msg> m) noexcept {
    if (to == _io.id()) {
        return finish_claim(std::move(m));
    }
    _io.post<kinds::user_answer>(to, std::move(m));
}

void gateway::give_back_here(std::string_view user) noexcept {
    _user_slots.give_back(user);
    if (_broker) {
        _broker->count_user(user, _user_slots.held(user));
    }
}

void gateway::open_pubsub(conn_handle h, connection& c, pubsub_start start,
                          std::span<std::byte> early) noexcept {
    upgrade(h, c, start.response, ws_endpoint::pubsub);
    start_deflate(c, start.deflate);
    c.session = std::make_unique<pubsub::session>();
    if (start.deflate) {
        c.session->enable_deflate(start.deflate->server_max_window_bits);
    }
    if (start.who) {
        _engine.open_session(h, *c.session, std::move(*start.who));
    } else {
        _engine.open_session(h, *c.session, start.user_id, start.backend, start.sys);
    }
    // Frames the client sent right behind its request arrived in the same read.
    if (!early.empty()) {
        read_frames(h, c, early);
    }
}

void gateway::refuse_user_limit(conn_handle h, connection& c) noexcept {
    ++_refused_user_limit;
    send_response(h, c,
                  http::make_error_response(429, "too many connections for this user",
                                            http::keep_alive::no, http::retry_after(10)),
                  http::keep_alive::no, head_only::no);
}

void gateway::release_user_slot(std::string_view user) noexcept {
    const auto home = shard_id(static_cast<uint16_t>(pubsub::home_shard(user, _io.shards())));
    if (home == _io.id()) {
        return give_back_here(user);
    }
    _io.post<kinds::user_release>(home, std::make_unique<user_slot_msg>(
                                            user_slot_msg{std::string(user), conn_handle{}}));
}

void gateway::on_mesh(kinds::user_claim, shard_id from, std::unique_ptr<user_slot_msg> m) noexcept {
    claim_at_home(from, std::move(m));
}

void gateway::on_mesh(kinds::user_answer, shard_id, std::unique_ptr<user_slot_msg> m) noexcept {
    finish_claim(std::move(m));
}

void gateway::finish_claim(std::unique_ptr<user_slot_msg> m) noexcept {
    auto* c = static_cast<connection*>(_io.user(m->conn));
    if (c == nullptr || c->state != phase::user_slot) {
        // Closed while its home answered (timeout, shutdown, budget): a slot taken for it
        // goes back to the user's home.
        if (m->granted) {
            release_user_slot(m->user);
        }
        return;
    }
    const conn_handle h = m->conn;
    pubsub_start start = std::move(*c->pending);
    c->pending.reset();
    std::string early = std::move(c->stash);
    c->stash.clear();
    if (!m->granted) {
        refuse_user_limit(h, *c);
        _last_status = 0; // logged here: not again by a dispatch this answer ran inside
        return log_handshake(h, *c, _config.ws_path, 429);
    }
    if (_io.drain() == core::drain_phase::closing) {
        // The drain's sweep may have passed this connection while it waited for its home:
        // it would open a session the node no longer takes. The slot goes back.
        release_user_slot(m->user);
        refuse_draining(h, *c);
        _last_status = 0; // logged here: not again by a dispatch this answer ran inside
        return log_handshake(h, *c, _config.ws_path, 503);
    }
    c->holds_user_slot = true;
    open_pubsub(h, *c, std::move(start), std::as_writable_bytes(std::span(early.data(), early.size())));
    log_handshake(h, *c, _config.ws_path, 101);
    _last_status = 0; // logged here: not again by a dispatch this answer ran inside
    if (_io.user(h) == c && c->held_in != inbound_held(*c)) {
        account_inbound(h, *c);
    }
}

void gateway::on_mesh(kinds::user_release, shard_id, std::unique_ptr<user_slot_msg> m) noexcept {
    give_back_here(m->user);
}

result<auth::identity, std::string_view> gateway::authenticate(const http::request& req) noexcept {
    // Never logged, never copied beyond this call: the token is a credential.
    return verify_token(presented_token(req));
}

result<auth::identity, std::string_view> gateway::verify_token(std::string_view token) noexcept {
    auto refuse = [this](std::string_view reason) -> result<auth::identity, std::string_view> {
        ++_refused_tokens[std::size_t(classify_token_refusal(reason))];
        return unexpected{reason};
    };
    if (token.empty()) {
        return refuse("token required");
    }
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    auto verified = _verifier->verify(token, static_cast<int64_t>(now.tv_sec));
    if (!verified) {
        return refuse(verified.error());
    }
    // The user id names the user: channel and travels in envelopes: its charset is the
    // same as ?user='s (docs/protocol.md "Names").
    if (!pubsub::valid_user_id(verified->user_id)) {
        return refuse("sub is not a valid user id");
    }
    return std::move(*verified);
}

void gateway::serve_echo(const request_context& ctx) noexcept {
    const http::upgrade_check check = http::check_upgrade(ctx.req);
    if (check.status != 101) {
        send_response(ctx.h, ctx.conn,
                      http::make_error_response(check.status, check.reason, http::keep_alive::no),
                      http::keep_alive::no, ctx.head);
        return;
    }
    const std::optional<ws::deflate_agreement> deflate = negotiate_deflate(ctx.req);
    upgrade(ctx.h, ctx.conn, upgrade_response(ctx.req, deflate), ws_endpoint::echo);
    start_deflate(ctx.conn, deflate);
    if (!ctx.rest.empty()) {
        read_frames(ctx.h, ctx.conn, ctx.rest);
    }
}

void gateway::log_handshake(conn_handle h, const connection& c, std::string_view path,
                            unsigned status) noexcept {
    if (!log::access_log()) {
        return;
    }
    // The text of the address without std::string: an IPv6 one would allocate.
    const peer_address peer = _io.peer(h);
    char address[INET6_ADDRSTRLEN] = "(unknown address)";
    switch (peer.family) {
    case ip_family::v4:
        inet_ntop(AF_INET, peer.bytes.data(), address, sizeof(address));
        break;
    case ip_family::v6:
        inet_ntop(AF_INET6, peer.bytes.data(), address, sizeof(address));
        break;
    case ip_family::unknown:
        break;
    }
    const std::string_view user =
        c.session != nullptr ? std::string_view(c.session->user_id()) : std::string_view();
    const uint64_t ms = _io.now_ms() - c.opened_ms;
    // Only the path: the query may hold a token (?token=), and headers (Authorization) are
    // never read here.
    const auto write = [&](log::line& l) {
        l.field("peer", address)
            .field("port", peer.port)
            .field("path", path)
            .field("status", status)
            .field("user", user)
            .field("duration_ms", ms)
            .msg("access: %s %.*s %u%s%.*s %llu ms", address,
                 int(std::min(path.size(), log::value_max_bytes)), path.data(), status,
                 user.empty() ? "" : " user=", int(user.size()), user.data(),
                 static_cast<unsigned long long>(ms));
    };
    log::line l(log::level::info, "access",
                status == 101 ? nullptr : &RINGCAST_LOG_SITE(log::default_site_limits));
    if (l) {
        write(l);
    }
}

void gateway::serve_healthz(const request_context& ctx) noexcept {
    reply(ctx, http::make_response(200, "application/json", "{\"status\":\"ok\"}\n", ctx.ka));
}

void gateway::serve_readyz(const request_context& ctx) noexcept {
    // Readiness, for a balancer's health check: 503 from the moment a drain begins, so no new
    // client is sent here; /healthz (liveness) stays 200 until the process exits.
    // With --engine redis, also 503 while this shard's connections to Redis are down: a
    // node that cannot publish or receive what other nodes publish should get no clients
    // (docs/scaling.md "Failures").
    switch (_io.drain()) {
    case core::drain_phase::serving:
        if (_broker && !_broker->up()) {
            return reply(ctx, http::make_response(503, "application/json",
                                                  "{\"status\":\"engine down\"}\n", ctx.ka));
        }
        return reply(ctx, http::make_response(200, "application/json", "{\"status\":\"ready\"}\n",
                                              ctx.ka));
    case core::drain_phase::announced:
    case core::drain_phase::closing:
        return reply(ctx, http::make_response(503, "application/json",
                                              "{\"status\":\"draining\"}\n", ctx.ka));
    }
}

void gateway::serve_demo(const request_context& ctx) noexcept {
    reply(ctx, http::make_response(200, "text/html; charset=utf-8", demo_page(), ctx.ka));
}

void gateway::serve_socketio_demo(const request_context& ctx) noexcept {
    reply(ctx, http::make_response(200, "text/html; charset=utf-8", socketio_demo_page(), ctx.ka));
}

void gateway::serve_socketio_client(const request_context& ctx) noexcept {
    reply(ctx, http::make_response(200, "application/javascript; charset=utf-8",
                                   *_config.socketio.client_js, ctx.ka,
                                   "Cache-Control: public, max-age=3600\r\n"));
}

void gateway::serve_dashboard(const request_context& ctx) noexcept {
    reply(ctx, http::make_response(200, "text/html; charset=utf-8", dashboard_page(), ctx.ka,
                                   dashboard_headers()));
}

} // namespace ringcast::net
