// net::origin_allowed and net::check_origin_pattern: --allowed-origins.
#include <ringcast/net.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace ringcast;

TEST_CASE("no patterns, or no Origin header: every upgrade passes", "[net][origins]") {
    CHECK(net::origin_allowed("https://evil.example", {}));
    CHECK(net::origin_allowed("", {"https://app.example.com"}));
}

TEST_CASE("an exact pattern matches scheme, host and port, ignoring case", "[net][origins]") {
    const std::vector<std::string> allowed{"https://app.example.com", "http://localhost:8080"};
    CHECK(net::origin_allowed("https://app.example.com", allowed));
    CHECK(net::origin_allowed("HTTPS://App.Example.COM", allowed));
    CHECK(net::origin_allowed("http://localhost:8080", allowed));
    CHECK_FALSE(net::origin_allowed("http://app.example.com", allowed));      // scheme
    CHECK_FALSE(net::origin_allowed("https://app.example.com:8443", allowed)); // port
    CHECK_FALSE(net::origin_allowed("http://localhost", allowed));             // no port
    CHECK_FALSE(net::origin_allowed("https://app.example.com.evil.io", allowed));
    CHECK_FALSE(net::origin_allowed("https://evilapp.example.com", allowed));
    CHECK_FALSE(net::origin_allowed("https://app.example.com/", allowed)); // not an origin
    CHECK_FALSE(net::origin_allowed("null", allowed));
}

TEST_CASE("wildcard patterns match subdomains, never the bare domain or a look-alike",
          "[net][origins]") {
    const std::vector<std::string> any_scheme{"*.example.com"};
    CHECK(net::origin_allowed("https://a.example.com", any_scheme));
    CHECK(net::origin_allowed("http://a.b.example.com:3000", any_scheme));
    CHECK_FALSE(net::origin_allowed("https://example.com", any_scheme));
    CHECK_FALSE(net::origin_allowed("https://badexample.com", any_scheme));
    CHECK_FALSE(net::origin_allowed("https://a.example.com.evil.io", any_scheme));
    CHECK_FALSE(net::origin_allowed("https://*.example.com", any_scheme));

    const std::vector<std::string> https_only{"https://*.example.com"};
    CHECK(net::origin_allowed("https://a.example.com", https_only));
    CHECK_FALSE(net::origin_allowed("http://a.example.com", https_only));
    CHECK_FALSE(net::origin_allowed("https://a.example.com:8443", https_only));
}

TEST_CASE("'null' matches only when listed", "[net][origins]") {
    CHECK(net::origin_allowed("null", {"null"}));
    CHECK_FALSE(net::origin_allowed("null", {"*.example.com"}));
    CHECK_FALSE(net::origin_allowed("https://null", {"null"}));
}

TEST_CASE("malformed Origin headers match nothing", "[net][origins]") {
    const std::vector<std::string> allowed{"*.example.com", "https://app.example.com"};
    for (const char* bad : {"app.example.com", "://app.example.com", "https://",
                            "https://app.example.com:", "https://app.example.com:x",
                            "https://user@app.example.com", "https://app.example.com/path",
                            "https://app example.com"}) {
        INFO(bad);
        CHECK_FALSE(net::origin_allowed(bad, allowed));
    }
}

TEST_CASE("check_origin_pattern accepts the four forms and names a bad value",
          "[net][origins]") {
    for (const char* good : {"https://app.example.com", "http://localhost:8080", "null",
                             "*.example.com", "https://*.example.com", "http://[::1]:8080"}) {
        INFO(good);
        CHECK(net::check_origin_pattern(good).has_value());
    }
    for (const char* bad : {"*", "", "https://app.example.com/", "example.com",
                            "*.example.com:443", "https://a.*.example.com", "https://*",
                            "*example.com", "https://app.example.com/path"}) {
        INFO(bad);
        auto r = net::check_origin_pattern(bad);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().find("--allowed-origins") != std::string::npos);
    }
}

