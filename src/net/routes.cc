// The route table (make_routes) and its lookup (find_route): see routes.h. The handlers the
// rows name are gateway members, defined in handlers.cc.
#include "routes.h"

#include "gateway.h"

namespace ringcast::net {

namespace {

bool matches(const route& row, std::string_view path) noexcept {
    switch (row.match) {
    case path_match::exact:
        return path == row.path;
    case path_match::prefix:
        return path.starts_with(row.path);
    }
    return false;
}

/// The route_listeners value naming `from` alone.
route_listeners only(core::listener from) noexcept {
    switch (from) {
    case core::listener::main:
        return route_listeners::main;
    case core::listener::api:
        return route_listeners::api;
    case core::listener::metrics:
        return route_listeners::metrics;
    }
    return route_listeners::main;
}

bool served_on(route_listeners where, core::listener from) noexcept {
    return where == route_listeners::every || where == only(from);
}

bool allows(route_methods methods, std::string_view method) noexcept {
    switch (methods) {
    case route_methods::get:
        return method == "GET" || method == "HEAD";
    case route_methods::any:
        return true;
    }
    return false;
}

/// 404 for a path that is not served on listener `from`: where to look instead.
std::string_view not_here(core::listener from) noexcept {
    switch (from) {
    case core::listener::main:
        return "the API is on --api-listen";
    case core::listener::api:
        return "the API listener serves /api/ only";
    case core::listener::metrics:
        return "the metrics listener serves /metrics, /healthz and /readyz only";
    }
    return {};
}

bool restricted(core::admission mode) noexcept {
    switch (mode) {
    case core::admission::full:
        return false;
    case core::admission::restricted:
        return true;
    }
    return true;
}

} // namespace

route_match find_route(std::span<const route> table, std::string_view method, std::string_view path,
                       core::listener from, core::admission mode) noexcept {
    const route* row = nullptr;
    for (const route& r : table) {
        if (matches(r, path)) {
            row = &r;
            break;
        }
    }
    if (restricted(mode) && (row == nullptr || row->restricted == when_restricted::refused ||
                             !served_on(row->listeners, from))) {
        // Over the connection cap: what keeps the server observable is served; a client (an
        // upgrade included) is told to come back.
        return {route_status::restricted, row, 503,
                "too many connections on this server; retry later"};
    }
    if (row == nullptr) {
        return {route_status::not_found, nullptr, 404,
                from != core::listener::main ? not_here(from) : "no such path"};
    }
    if (!served_on(row->listeners, from)) {
        return {route_status::wrong_listener, row, 404,
                row->listeners == route_listeners::metrics ? "/metrics is on --metrics-listen"
                                                           : not_here(from)};
    }
    if (!allows(row->methods, method)) {
        return {route_status::method_not_allowed, row, 405, "use GET"};
    }
    return {route_status::found, row, 0, {}};
}

std::vector<route> make_routes(const gateway_config& config) {
    using enum path_match;
    using enum route_methods;
    using enum when_restricted;
    constexpr route_kind plain = route_kind::http;
    constexpr route_kind upgrade = route_kind::websocket;
    constexpr route_listeners on_main = route_listeners::main;
    constexpr route_listeners on_every = route_listeners::every;
    // With --api-listen the API lives on its own socket, which serves nothing else but
    // /healthz; without it, on the main listener. /metrics goes with the API unless
    // --metrics-listen gives it a socket of its own (docs/operations.md "Metrics").
    const route_listeners on_api_home = config.separate_api ? route_listeners::api : on_main;
    const route_listeners on_metrics_home =
        config.separate_metrics ? route_listeners::metrics : on_api_home;
    // Table order is lookup order: the first row whose path matches wins. The app refuses an
    // --echo path another row serves ('/', '/dashboard', '/healthz', '/readyz', '/ws',
    // '/metrics', under /api/).
    // clang-format off
    const route rows[] = {
    //   path              match   methods kind     restricted listeners   handler
        {"/api/",          prefix, any,    plain,   served,    on_api_home, &gateway::serve_api},
        {"/metrics",       exact,  any,    plain,   served,    on_metrics_home, &gateway::serve_api},
        {config.ws_path,   exact,  any,    upgrade, refused,   on_main,    &gateway::serve_pubsub},
        {config.echo_path, exact,  any,    upgrade, refused,   on_main,    &gateway::serve_echo},
        {config.socketio.enabled ? "/socket.io/" : "", exact, any, route_kind::websocket_or_http, refused, on_main, &gateway::serve_socketio},
        {"/healthz",       exact,  get,    plain,   served,    on_every,   &gateway::serve_healthz},
        {"/readyz",        exact,  get,    plain,   served,    on_every,   &gateway::serve_readyz},
        {"/",              exact,  get,    plain,   refused,   on_main,    &gateway::serve_demo},
        {"/dashboard",     exact,  get,    plain,   refused,   on_main,    &gateway::serve_dashboard},
        {config.socketio.enabled ? "/socketio" : "", exact, get, plain, refused, on_main, &gateway::serve_socketio_demo},
        {config.socketio.client_js ? "/socket.io/socket.io.js" : "", exact, get, plain, refused, on_main, &gateway::serve_socketio_client},
        {config.socketio.client_js ? "/socket.io/socket.io.min.js" : "", exact, get, plain, refused, on_main, &gateway::serve_socketio_client},
    };
    // clang-format on
    std::vector<route> table;
    table.reserve(std::size(rows));
    for (const route& r : rows) {
        // An empty path is a route switched off (no --echo); a request's path never is.
        if (!r.path.empty()) {
            table.push_back(r);
        }
    }
    return table;
}

} // namespace ringcast::net
