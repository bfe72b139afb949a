// Private to src/net: the route table, which HTTP request goes to which gateway handler.
//
// Every path the gateway serves is one row of make_routes(): the path (exact, or a prefix),
// the methods the router lets through, whether the route leaves HTTP for WebSocket, whether a
// restricted connection (core::admission::restricted) may use it, the listener(s) it is
// served on, and the gateway member that answers it. A complete request flows
//
//   gateway::answer ─► find_route(table, method, path, listener, admission)
//     ├─► found ─► row.handler(request_context) ─► one response, an /api/ answer that
//     │            comes later (admin::responder), or a WebSocket upgrade
//     └─► refused ─► the lookup's status and reason (503, 404, 405) as an error response
//
// The lookup is pure: no gateway, no shard, no allocation (it compares views against the
// rows), so tests/unit/net drives the real table. Runs on the connection's shard; the
// table is built once per gateway at construction and never changes after.
#pragma once

#include <ringcast/core.h>
#include <ringcast/http.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace ringcast::net {

class gateway;
struct connection;
struct gateway_config;

/// A HEAD request: the answer is the GET answer without its body (RFC 9110 §9.3.2).
enum class head_only : bool { no, yes };

/// What one route handler is given: the request and everything it may act on, explicitly.
/// Valid for the handler's call only; `req`'s views die with the connection's HTTP parser
/// (an upgrade frees it), so a handler copies what it keeps first.
struct request_context {
    conn_handle h;
    connection& conn;
    const http::request& req;
    /// What the answer may promise: no on a restricted connection (one answer, then close).
    http::keep_alive ka;
    head_only head;
    /// Bytes that came after the request in the same read. Given to WebSocket routes only
    /// (the client's first frames); for HTTP routes it is empty, and those bytes stay with
    /// gateway::read_http as the next pipelined request.
    std::span<std::byte> rest;
};

/// A route's answer. Contract shared by every handler: it is called only for a request the
/// lookup let through (path, method, listener and admission checked), never throws, and
/// answers exactly once: a response through gateway::send_response, an /api/ answer deferred
/// to admin::responder::respond(), or an upgrade.
using route_handler = void (gateway::*)(const request_context&) noexcept;

enum class path_match : uint8_t {
    exact,  ///< the request's path equals the row's path
    prefix, ///< the request's path starts with the row's path (which ends in '/')
};

enum class route_methods : uint8_t {
    /// GET and HEAD (HEAD answered as GET without the body); any other method is refused by
    /// the lookup with 405 "use GET" (and Allow: GET).
    get,
    /// Every method reaches the handler, which refuses the ones it does not take: admin::api
    /// answers 405 per API path; an upgrade's handshake check (RFC 6455 §4.2.1) answers 405
    /// and closes, after the checks the route makes first.
    any,
};

enum class route_kind : uint8_t {
    /// One HTTP answer; the connection may stay for the next request (keep-alive).
    http,
    /// An upgrade to WebSocket: the handler gets the bytes after the request, and the
    /// connection leaves HTTP whatever it answered (101, or an error that closes it).
    websocket,
    /// /socket.io/: websocket for a request that asks to upgrade (Upgrade: websocket), http
    /// for any other (Engine.IO's long-polling requests).
    websocket_or_http,
};

/// Whether a connection accepted beyond the cap (core::admission::restricted) may use the
/// route. Only what keeps the server observable is served; the rest is refused with 503.
enum class when_restricted : uint8_t { refused, served };

/// The listener(s) a route is served on (core::listener). A route not served on the listener
/// a request came in on is refused with 404 naming where it is.
enum class route_listeners : uint8_t {
    main,    ///< --listen only
    api,     ///< --api-listen only
    metrics, ///< --metrics-listen only
    every,   ///< each listener (health)
};

/// One row of the table. `path` is a view: the table's builder keeps what it points to alive.
struct route {
    std::string_view path;
    path_match match = path_match::exact;
    route_methods methods = route_methods::get;
    route_kind kind = route_kind::http;
    when_restricted restricted = when_restricted::refused;
    route_listeners listeners = route_listeners::main;
    route_handler handler = nullptr;
};

enum class route_status : uint8_t {
    found,              ///< serve `row`
    restricted,         ///< 503: a restricted connection may not use this path (or no row)
    not_found,          ///< 404: no row has this path
    wrong_listener,     ///< 404: the row is served on the other listener
    method_not_allowed, ///< 405: the row takes GET and HEAD only
};

/// The lookup's verdict. On a refusal, `http_status` and `reason` are the error response's
/// status and message (static text), exactly what the gateway sends.
struct route_match {
    route_status status = route_status::not_found;
    const route* row = nullptr; ///< the row the path matched, if any (set when found)
    int http_status = 0;        ///< 0 when found
    std::string_view reason;
};

/// The route for a request, checked in this order (each refusal is final):
///   1. the first row, in table order, whose path matches `path` (the request's path without
///      its query: http::request::path);
///   2. on a restricted connection, a path with no row, a row that is not served restricted,
///      or one not served on this listener → restricted (503);
///   3. no row → not_found (404; on the API listener the reason says it serves /api/ only);
///   4. a row not served on `from` → wrong_listener (404);
///   5. a GET-only row and a method other than GET or HEAD (case-sensitive) → 405;
///   6. found.
/// Never allocates; `table` is read only.
route_match find_route(std::span<const route> table, std::string_view method, std::string_view path,
                       core::listener from, core::admission mode) noexcept;

/// The gateway's one route table for `config`: /api/ (prefix, on the API's listener), the
/// pubsub WebSocket path, the --echo path (only when set), /healthz, the demo page "/" and
/// the dashboard "/dashboard".
/// Rows view `config`'s strings: `config` must outlive the table. Setup only (allocates).
std::vector<route> make_routes(const gateway_config& config);

} // namespace ringcast::net
