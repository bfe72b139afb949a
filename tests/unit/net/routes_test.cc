// The route table (src/net/routes.h): the gateway's real table from make_routes(), looked up
// with find_route() for requests that went through the real HTTP parser, on either listener
// and in either admission mode. No shard runs: the lookup is pure.
#include "alloc_count.h"
#include "routes.h"

#include <ringcast/net.h>

#include <catch2/catch.hpp>
#include <new>
#include <string>
#include <vector>

using namespace ringcast;
using namespace ringcast::net;

namespace {

constexpr auto main_listener = core::listener::main;
constexpr auto api_listener = core::listener::api;
constexpr auto metrics_listener = core::listener::metrics;
constexpr auto full = core::admission::full;
constexpr auto restricted = core::admission::restricted;

/// A request as the gateway gets it: "METHOD TARGET" completed to a request head and parsed.
class parsed {
public:
    explicit parsed(const std::string& method_and_target) {
        const std::string head = method_and_target + " HTTP/1.1\r\nHost: ringcast.test\r\n\r\n";
        REQUIRE(_parser.feed(head).status == http::parse_status::complete);
    }
    const http::request& req() const noexcept { return _parser.get(); }

private:
    http::request_parser _parser;
};

route_match lookup(const std::vector<route>& table, const std::string& method_and_target,
                   core::listener from = main_listener, core::admission mode = full) {
    const parsed p(method_and_target);
    return find_route(table, p.req().method, p.req().path, from, mode);
}

/// The path of the row a request was routed to; "" when refused.
std::string routed_to(const std::vector<route>& table, const std::string& method_and_target,
                      core::listener from = main_listener, core::admission mode = full) {
    const route_match m = lookup(table, method_and_target, from, mode);
    if (m.status != route_status::found) {
        return "";
    }
    REQUIRE(m.row != nullptr);
    CHECK(m.http_status == 0);
    return std::string(m.row->path);
}

void check_refused(const route_match& m, route_status status, int http_status,
                   std::string_view reason) {
    CHECK(m.status == status);
    CHECK(m.http_status == http_status);
    CHECK(m.reason == reason);
}

gateway_config with_echo(std::string path) {
    gateway_config config;
    config.echo_path = std::move(path);
    return config;
}

gateway_config with_api_listen() {
    gateway_config config;
    config.separate_api = true;
    return config;
}

gateway_config with_metrics_listen(bool api_too) {
    gateway_config config;
    config.separate_api = api_too;
    config.separate_metrics = true;
    return config;
}

constexpr std::string_view no_such_path = "no such path";
constexpr std::string_view metrics_elsewhere = "/metrics is on --metrics-listen";
constexpr std::string_view metrics_only = "the metrics listener serves /metrics, /healthz and /readyz only";
constexpr std::string_view api_elsewhere = "the API is on --api-listen";
constexpr std::string_view api_only = "the API listener serves /api/ only";
constexpr std::string_view over_cap = "too many connections on this server; retry later";

} // namespace

TEST_CASE("the table holds the API prefix, /metrics, the WebSocket path, /socket.io/, "
          "/healthz, /readyz, /, /dashboard and /socketio in lookup order",
          "[net][routes]") {
    const gateway_config config;
    const std::vector<route> table = make_routes(config);
    REQUIRE(table.size() == 9);
    CHECK(table[0].path == "/api/");
    CHECK(table[0].match == path_match::prefix);
    CHECK(table[1].path == "/metrics");
    CHECK(table[1].match == path_match::exact);
    CHECK(table[1].listeners == table[0].listeners); // where the API is
    CHECK(table[2].path == "/ws");
    CHECK(table[3].path == "/socket.io/");
    CHECK(table[3].kind == route_kind::websocket_or_http); // long-polling is HTTP
    CHECK(table[3].listeners == route_listeners::main);
    CHECK(table[3].restricted == when_restricted::refused);
    CHECK(table[4].path == "/healthz");
    CHECK(table[5].path == "/readyz");
    CHECK(table[5].listeners == table[4].listeners); // both probes answer on every listener
    CHECK(table[6].path == "/");
    CHECK(table[7].path == "/dashboard");
    CHECK(table[7].methods == route_methods::get);
    CHECK(table[7].listeners == route_listeners::main);
    CHECK(table[7].restricted == when_restricted::refused);
    CHECK(table[8].path == "/socketio"); // the Socket.IO demo page
    CHECK(table[8].methods == route_methods::get);
    for (const route& r : table) {
        CHECK(r.handler != nullptr);
    }
}

TEST_CASE("only the WebSocket paths upgrade, and they leave the method to the handshake",
          "[net][routes]") {
    const gateway_config config = with_echo("/echo");
    const std::vector<route> table = make_routes(config);
    for (const char* target : {"/ws", "/echo"}) {
        const route_match m = lookup(table, std::string("GET ") + target);
        REQUIRE(m.status == route_status::found);
        CHECK(m.row->kind == route_kind::websocket);
        CHECK(m.row->methods == route_methods::any);
    }
    // /socket.io/ upgrades when asked to and answers Engine.IO's polling requests otherwise.
    const route_match sio = lookup(table, "GET /socket.io/?EIO=4&transport=websocket");
    REQUIRE(sio.status == route_status::found);
    CHECK(sio.row->kind == route_kind::websocket_or_http);
    CHECK(sio.row->methods == route_methods::any);
    for (const char* target : {"/api/stats", "/healthz", "/", "/dashboard"}) {
        const route_match m = lookup(table, std::string("GET ") + target);
        REQUIRE(m.status == route_status::found);
        CHECK(m.row->kind == route_kind::http);
    }
}

TEST_CASE("an exact route matches its path only, a prefix route everything under it",
          "[net][routes]") {
    const gateway_config config;
    const std::vector<route> table = make_routes(config);
    CHECK(routed_to(table, "GET /healthz") == "/healthz");
    CHECK(routed_to(table, "GET /") == "/");
    CHECK(routed_to(table, "GET /ws") == "/ws");
    CHECK(routed_to(table, "GET /api/stats") == "/api/");
    CHECK(routed_to(table, "GET /api/channels/chat%3Alobby") == "/api/");
    CHECK(routed_to(table, "GET /api/") == "/api/");
    for (const char* target : {"/healthz/", "/healthzz", "/HEALTHZ", "/ws/", "/wss", "/api",
                               "/apis/stats", "/index.html", "//"}) {
        INFO(target);
        check_refused(lookup(table, std::string("GET ") + target), route_status::not_found, 404,
                      no_such_path);
    }
}

TEST_CASE("the query string takes no part in the lookup", "[net][routes]") {
    const gateway_config config;
    const std::vector<route> table = make_routes(config);
    CHECK(routed_to(table, "GET /healthz?verbose=1") == "/healthz");
    CHECK(routed_to(table, "GET /ws?user=7") == "/ws");
    CHECK(routed_to(table, "GET /?/healthz") == "/");
    CHECK(routed_to(table, "GET /api/stats?x=/") == "/api/");
    // Absolute-form (RFC 9112 §3.2.2): the authority is ignored, the path routes.
    CHECK(routed_to(table, "GET http://ringcast.test/healthz?x") == "/healthz");
    check_refused(lookup(table, "GET /nosuch?path=/healthz"), route_status::not_found, 404,
                  no_such_path);
}

TEST_CASE("a GET route refuses other methods with 405; an unknown path is 404 for any method",
          "[net][routes]") {
    const gateway_config config;
    const std::vector<route> table = make_routes(config);
    CHECK(routed_to(table, "HEAD /healthz") == "/healthz");
    CHECK(routed_to(table, "HEAD /") == "/");
    for (const char* request : {"POST /healthz", "PUT /", "DELETE /healthz?x", "get /healthz"}) {
        INFO(request);
        const route_match m = lookup(table, request);
        check_refused(m, route_status::method_not_allowed, 405, "use GET");
        REQUIRE(m.row != nullptr);
    }
    for (const char* request : {"POST /nosuch", "DELETE /api", "OPTIONS /ws/"}) {
        INFO(request);
        check_refused(lookup(table, request), route_status::not_found, 404, no_such_path);
    }
}

TEST_CASE("the API and the upgrades take every method to their handler", "[net][routes]") {
    const gateway_config config = with_echo("/echo");
    const std::vector<route> table = make_routes(config);
    CHECK(routed_to(table, "POST /api/publish") == "/api/");
    CHECK(routed_to(table, "DELETE /api/stats") == "/api/");
    CHECK(routed_to(table, "HEAD /api/stats") == "/api/");
    CHECK(routed_to(table, "POST /ws") == "/ws");
    CHECK(routed_to(table, "HEAD /ws") == "/ws");
    CHECK(routed_to(table, "PUT /echo") == "/echo");
}

TEST_CASE("a restricted connection reaches /healthz and the API on its listener, else 503",
          "[net][routes]") {
    SECTION("one listener") {
        const gateway_config config = with_echo("/echo");
        const std::vector<route> table = make_routes(config);
        CHECK(routed_to(table, "GET /healthz", main_listener, restricted) == "/healthz");
        CHECK(routed_to(table, "POST /api/publish", main_listener, restricted) == "/api/");
        for (const char* request :
             {"GET /ws", "GET /echo", "GET /", "GET /dashboard", "GET /nosuch", "POST /"}) {
            INFO(request);
            check_refused(lookup(table, request, main_listener, restricted),
                          route_status::restricted, 503, over_cap);
        }
        // The path admits it; the method is checked after, as for any connection.
        check_refused(lookup(table, "POST /healthz", main_listener, restricted),
                      route_status::method_not_allowed, 405, "use GET");
    }
    SECTION("--api-listen") {
        const gateway_config config = with_api_listen();
        const std::vector<route> table = make_routes(config);
        CHECK(routed_to(table, "GET /healthz", main_listener, restricted) == "/healthz");
        CHECK(routed_to(table, "GET /healthz", api_listener, restricted) == "/healthz");
        CHECK(routed_to(table, "GET /api/stats", api_listener, restricted) == "/api/");
        // Not where the API lives: 503 like any other path, not the 404 naming --api-listen.
        check_refused(lookup(table, "GET /api/stats", main_listener, restricted),
                      route_status::restricted, 503, over_cap);
        for (const char* request : {"GET /ws", "GET /", "GET /nosuch"}) {
            INFO(request);
            check_refused(lookup(table, request, api_listener, restricted),
                          route_status::restricted, 503, over_cap);
        }
    }
}

TEST_CASE("with --api-listen the API is served on the API listener, which serves nothing else "
          "but /healthz",
          "[net][routes]") {
    const gateway_config config = with_api_listen();
    const std::vector<route> table = make_routes(config);
    CHECK(routed_to(table, "GET /api/stats", api_listener) == "/api/");
    CHECK(routed_to(table, "GET /healthz", api_listener) == "/healthz");
    CHECK(routed_to(table, "GET /healthz") == "/healthz");
    CHECK(routed_to(table, "GET /ws") == "/ws");
    CHECK(routed_to(table, "GET /") == "/");
    check_refused(lookup(table, "POST /api/publish"), route_status::wrong_listener, 404,
                  api_elsewhere);
    for (const char* request : {"GET /ws", "GET /", "POST /"}) {
        INFO(request);
        // The listener is checked before the method: POST / is 404 here, not 405.
        check_refused(lookup(table, request, api_listener), route_status::wrong_listener, 404,
                      api_only);
    }
    check_refused(lookup(table, "GET /nosuch", api_listener), route_status::not_found, 404,
                  api_only);
    check_refused(lookup(table, "GET /nosuch"), route_status::not_found, 404, no_such_path);
}

TEST_CASE("with --metrics-listen /metrics is served there only, and that listener serves "
          "nothing but /metrics and the probes (/healthz, /readyz)",
          "[net][routes]") {
    for (const bool api_too : {false, true}) {
        INFO("--api-listen too: " << api_too);
        const gateway_config config = with_metrics_listen(api_too);
        const std::vector<route> table = make_routes(config);
        REQUIRE(table.size() == 9); // the same rows: /metrics moved, none added
        CHECK(routed_to(table, "GET /metrics", metrics_listener) == "/metrics");
        CHECK(routed_to(table, "GET /healthz", metrics_listener) == "/healthz");
        CHECK(routed_to(table, "GET /readyz", metrics_listener) == "/readyz");
        const core::listener api_home = api_too ? api_listener : main_listener;
        check_refused(lookup(table, "GET /metrics", api_home), route_status::wrong_listener, 404,
                      metrics_elsewhere);
        CHECK(routed_to(table, "GET /api/stats", api_home) == "/api/");
        for (const char* request :
             {"GET /api/stats", "GET /ws", "GET /", "GET /dashboard", "POST /api/publish"}) {
            INFO(request);
            check_refused(lookup(table, request, metrics_listener), route_status::wrong_listener,
                          404, metrics_only);
        }
        check_refused(lookup(table, "GET /nosuch", metrics_listener), route_status::not_found, 404,
                      metrics_only);
        // Over the connection cap the metrics listener still answers what it serves.
        CHECK(routed_to(table, "GET /metrics", metrics_listener, restricted) == "/metrics");
    }
}

TEST_CASE("without --api-listen the API is on the main listener", "[net][routes]") {
    const gateway_config config;
    const std::vector<route> table = make_routes(config);
    CHECK(routed_to(table, "GET /api/stats") == "/api/");
    const route_match m = lookup(table, "GET /api/stats");
    REQUIRE(m.status == route_status::found);
    CHECK(m.row->listeners == route_listeners::main);
    CHECK(m.row->restricted == when_restricted::served);
}

TEST_CASE("the echo route exists only with --echo, and the WebSocket path follows the config",
          "[net][routes]") {
    const gateway_config plain;
    check_refused(lookup(make_routes(plain), "GET /echo"), route_status::not_found, 404,
                  no_such_path);

    const gateway_config echo = with_echo("/echo");
    const std::vector<route> table = make_routes(echo);
    CHECK(table.size() == 10);
    CHECK(routed_to(table, "GET /echo?x=1") == "/echo");
    check_refused(lookup(table, "GET /echo/more"), route_status::not_found, 404, no_such_path);
    check_refused(lookup(table, "GET /echo", api_listener), route_status::wrong_listener, 404,
                  api_only);

    gateway_config live;
    live.ws_path = "/live";
    const std::vector<route> live_table = make_routes(live);
    CHECK(routed_to(live_table, "GET /live") == "/live");
    check_refused(lookup(live_table, "GET /ws"), route_status::not_found, 404, no_such_path);
}

TEST_CASE("--socketio=off takes /socket.io/ out of the table", "[net][routes]") {
    gateway_config off;
    off.socketio.enabled = false;
    const std::vector<route> table = make_routes(off);
    CHECK(table.size() == 7); // and the demo page with it
    check_refused(lookup(table, "GET /socket.io/?EIO=4&transport=websocket"),
                  route_status::not_found, 404, no_such_path);
    CHECK(routed_to(make_routes(gateway_config{}), "GET /socket.io/?EIO=4") == "/socket.io/");
    check_refused(lookup(table, "GET /socketio"), route_status::not_found, 404, no_such_path);
}

TEST_CASE("/socket.io/socket.io.js is served only with --socketio-client-js", "[net][routes]") {
    const gateway_config plain;
    check_refused(lookup(make_routes(plain), "GET /socket.io/socket.io.js"),
                  route_status::not_found, 404, no_such_path);
    gateway_config with_js;
    with_js.socketio.client_js = std::make_shared<const std::string>("/* bundle */");
    const std::vector<route> table = make_routes(with_js);
    CHECK(table.size() == 11);
    CHECK(routed_to(table, "GET /socket.io/socket.io.js") == "/socket.io/socket.io.js");
    CHECK(routed_to(table, "GET /socket.io/socket.io.min.js") == "/socket.io/socket.io.min.js");
    // The Engine.IO path is still its own row (exact match): the bundle's rows do not take it.
    CHECK(routed_to(table, "GET /socket.io/?EIO=4&transport=polling") == "/socket.io/");
}

TEST_CASE("the first row whose path matches wins, whatever a later row would say",
          "[net][routes]") {
    const std::vector<route> table = {
        {"/a/", path_match::prefix, route_methods::get, route_kind::http, when_restricted::refused,
         route_listeners::main, nullptr},
        {"/a/b", path_match::exact, route_methods::any, route_kind::http, when_restricted::served,
         route_listeners::every, nullptr},
    };
    // The exact row is never reached: the prefix row decides, 405 included.
    CHECK(routed_to(table, "GET /a/b") == "/a/");
    check_refused(lookup(table, "POST /a/b"), route_status::method_not_allowed, 405, "use GET");
    check_refused(lookup(table, "GET /a/b", main_listener, restricted), route_status::restricted,
                  503, over_cap);
    check_refused(lookup({}, "GET /"), route_status::not_found, 404, no_such_path);
}

TEST_CASE("a route lookup does not allocate", "[net][routes]") {
    const gateway_config config = with_echo("/echo");
    const std::vector<route> table = make_routes(config);
    const std::vector<parsed> requests = [] {
        std::vector<parsed> r;
        r.reserve(8);
        for (const char* request :
             {"GET /healthz?x=1", "GET /api/channels/chat%3Alobby", "GET /ws?user=7", "GET /echo",
              "HEAD /", "POST /healthz", "GET /nosuch", "GET /api"}) {
            r.emplace_back(request);
        }
        return r;
    }();
    // The counter is live: a direct call of the global operator new is never elided.
    const std::size_t probe = test::allocations();
    ::operator delete(::operator new(16));
    REQUIRE(test::allocations() == probe + 1);

    std::size_t found = 0;
    std::size_t refused = 0;
    const std::size_t before = test::allocations();
    for (const core::listener from : {main_listener, api_listener, metrics_listener}) {
        for (const core::admission mode : {full, restricted}) {
            for (const parsed& p : requests) {
                const route_match m = find_route(table, p.req().method, p.req().path, from, mode);
                ++(m.status == route_status::found ? found : refused);
            }
        }
    }
    const std::size_t during = test::allocations() - before;
    CHECK(during == 0);
    CHECK(found + refused == 48); // 8 requests × 3 listeners × 2 admissions
    CHECK(found > 0);
    CHECK(refused > 0);
}
