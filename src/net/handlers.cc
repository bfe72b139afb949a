// The route handlers: one gateway member per row of make_routes() (routes.cc), each given
// its request_context by gateway::answer() after the lookup let the request through. Their
// contracts are in gateway.h; what they share is in routes.h (route_handler).
#include "gateway.h"

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
    if (!origin_allowed(req.header_value("origin"), _config.allowed_origins)) {
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
    // With JWT keys every other client proves who it is, before any WebSocket exists. A
    // bearer that is an API key without the publish scope is no token either: refused.
    std::optional<auth::identity> who;
    if (_verifier && !backend) {
        auto verified = authenticate(req);
        if (!verified) {
            send_response(ctx.h, ctx.conn,
                          http::make_error_response(401, verified.error(), http::keep_alive::no),
                          http::keep_alive::no, ctx.head);
            return;
        }
        who = std::move(*verified);
    }
    // upgrade() frees the HTTP parser and with it `req`'s views: copy what we keep first.
    const std::string user_id(user);
    upgrade(ctx, ws_endpoint::pubsub);
    ctx.conn.session = std::make_unique<pubsub::session>();
    if (who) {
        _engine.open_session(ctx.h, *ctx.conn.session, std::move(*who));
    } else {
        _engine.open_session(ctx.h, *ctx.conn.session, user_id, backend);
    }
    // Frames the client sent right behind its request arrived in the same read.
    if (!ctx.rest.empty()) {
        read_frames(ctx.h, ctx.conn, ctx.rest);
    }
}

result<auth::identity, std::string_view> gateway::authenticate(const http::request& req) noexcept {
    // Never logged, never copied beyond this call: the token is a credential.
    const std::string_view token = presented_token(req);
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
    upgrade(ctx, ws_endpoint::echo);
    if (!ctx.rest.empty()) {
        read_frames(ctx.h, ctx.conn, ctx.rest);
    }
}

void gateway::serve_healthz(const request_context& ctx) noexcept {
    reply(ctx, http::make_response(200, "application/json", "{\"status\":\"ok\"}\n", ctx.ka));
}

void gateway::serve_demo(const request_context& ctx) noexcept {
    reply(ctx, http::make_response(200, "text/html; charset=utf-8", demo_page(), ctx.ka));
}

} // namespace ringcast::net
