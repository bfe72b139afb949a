// The backend API's front door: access (the API key, or loopback only), the route table
// that maps each /api/ path and method to its endpoint handler, and the registration of
// the API's mesh kinds. A request flows
//
//   handle ── refuse_access (401, 403) ── the route table: no row for the path (404),
//          a name after the path that is not valid (400), no row with the method (405),
//          the key lacks the row's scope (403) ── the row's handler (an api member)
//
// The handlers live by family: publish_endpoints.cc (publish, send, broadcast),
// disconnect_endpoint.cc, query_endpoints.cc (online, channels, channel info), stats.cc;
// the scatter-gather they share is gather.cc.
#include "endpoints.h"
#include "gather.h"

#include <ringcast/admin.h>

namespace ringcast::admin {

namespace {

/// What follows a route's path.
enum class path_kind : uint8_t {
    exact,   ///< nothing: the request's path is the route's
    channel, ///< a channel name, percent-encoded (clients use encodeURIComponent: ':' is %3A)
};

/// One row of the route table.
struct route {
    std::string_view path;
    path_kind kind;
    std::string_view method;
    /// What the presented key must allow (api_config::keys; loopback-only allows every one).
    api_scope scope;
    std::optional<std::string> (api::*handler)(const call& c);
};

/// %XX escapes decoded; a malformed escape is kept as is (the name check refuses it).
std::string percent_decode(std::string_view in) {
    auto hex = [](char c) -> int {
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
               : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                      : -1;
    };
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
            out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
            i += 2;
        } else {
            out += in[i];
        }
    }
    return out;
}

} // namespace

api::api(core::conn_io& io, pubsub::engine& engine, const api_config& cfg, responder& out)
    : _io(io), _engine(engine), _config(cfg), _out(out) {
    _engine.set_listener(this);
    _io.mesh_receivers().on<kinds::gather_question>(*this);
    _io.mesh_receivers().on<kinds::gather_answer>(*this);
}

api::~api() {
    _engine.set_listener(nullptr);
}

std::optional<std::string> api::refuse_access(conn_handle h, const http::request& req,
                                              const api_key*& key, http::keep_alive ka) {
    key = nullptr;
    if (_config.keys.empty()) {
        // No key configured: whoever reaches the port could publish into anyone's user:
        // channel and disconnect them, so only this host may.
        if (!_io.peer(h).loopback()) {
            ++_counters.not_loopback;
            return http::make_error_response(
                403,
                "the API answers only this host (loopback) until an API key is set "
                "(--api-key-file or RINGCAST_API_KEY)",
                ka);
        }
        return std::nullopt;
    }
    key = bearer_key(req, _config.keys);
    if (key == nullptr) {
        ++_counters.unauthorized;
        return http::make_error_response(401, "missing or wrong API key (Authorization: Bearer)",
                                         ka);
    }
    return std::nullopt;
}

std::optional<std::string> api::handle(conn_handle h, const http::request& req,
                                       http::keep_alive ka) {
    // The API: every path it answers, with a method and a handler (a path taking two
    // methods would have two rows). A path that is not here is a 404, a listed one with
    // another method a 405.
    static constexpr route routes[] = {
        {"/api/publish", path_kind::exact, "POST", api_scope::publish, &api::post_publish},
        {"/api/send", path_kind::exact, "POST", api_scope::publish, &api::post_send},
        {"/api/broadcast", path_kind::exact, "POST", api_scope::publish, &api::post_broadcast},
        {"/api/disconnect", path_kind::exact, "POST", api_scope::admin, &api::post_disconnect},
        {"/api/drain", path_kind::exact, "POST", api_scope::admin, &api::post_drain},
        {"/api/stats", path_kind::exact, "GET", api_scope::admin, &api::get_stats},
        {"/metrics", path_kind::exact, "GET", api_scope::admin, &api::get_metrics},
        {"/api/online", path_kind::exact, "GET", api_scope::admin, &api::get_online},
        {"/api/channels", path_kind::exact, "GET", api_scope::admin, &api::get_channels},
        {"/api/channels/", path_kind::channel, "GET", api_scope::admin, &api::get_channel},
        {"/api/history/", path_kind::channel, "GET", api_scope::admin, &api::get_history},
        {"/api/presence/", path_kind::channel, "GET", api_scope::admin, &api::get_presence},
    };
    // A request without a valid key learns nothing about paths: 401 (or the loopback 403)
    // comes before 404 and 405. The scope is the route's, checked once it is found.
    const api_key* key = nullptr;
    if (auto refused = refuse_access(h, req, key, ka)) {
        return refused;
    }
    const std::string_view path = req.path;
    bool path_known = false;
    for (const route& r : routes) {
        std::string name;
        switch (r.kind) {
        case path_kind::exact:
            if (path != r.path) {
                continue;
            }
            break;
        case path_kind::channel:
            if (!path.starts_with(r.path)) {
                continue;
            }
            // Checked before the method: a bad name is a 400 whatever the method.
            name = percent_decode(path.substr(r.path.size()));
            if (!pubsub::valid_channel(name)) {
                return http::make_error_response(400, "not a valid channel name", ka);
            }
            break;
        }
        if (req.method == r.method) {
            if (key != nullptr && !key->allows(r.scope)) {
                ++_counters.forbidden_scope;
                return http::make_error_response(403,
                                                 "API key '" + key->name + "' lacks the scope '" +
                                                     std::string(scope_name(r.scope)) + "'",
                                                 ka);
            }
            return (this->*r.handler)(call{h, req, ka, name});
        }
        path_known = true;
    }
    return path_known ? http::make_error_response(405, "method not allowed here", ka)
                      : http::make_error_response(404, "no such API path", ka);
}

} // namespace ringcast::admin
