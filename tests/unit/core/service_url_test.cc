// The pieces every broker link shares (include/ringcast/core.h: reconnect_backoff,
// parse_service_url). The Redis and AMQP parsers built on them have their own tests
// (tests/unit/engine/resp_test.cc, tests/unit/amqp/url_test.cc).
#include <ringcast/core.h>

#include <catch2/catch.hpp>

using namespace ringcast;

TEST_CASE("reconnect_backoff: each delay lies in [step/2, step], the step doubles to the cap, "
          "reset starts over",
          "[core][backoff]") {
    for (uint64_t seed : {uint64_t{1}, uint64_t{42}, uint64_t{0xdeadbeef}, uint64_t{0}}) {
        core::reconnect_backoff b(100, 5000, seed);
        uint64_t step = 100;
        for (int i = 0; i < 20; ++i) {
            const uint32_t d = b.next_ms();
            INFO("seed " << seed << " attempt " << i << " delay " << d);
            CHECK(d >= step / 2);
            CHECK(d <= step);
            step = std::min<uint64_t>(step * 2, 5000);
        }
        CHECK(b.attempts() == 20);
        b.reset();
        CHECK(b.attempts() == 0);
        const uint32_t again = b.next_ms();
        CHECK(again >= 50);
        CHECK(again <= 100);
    }
}

TEST_CASE("reconnect_backoff: the jitter spreads: two links do not retry in step",
          "[core][backoff]") {
    core::reconnect_backoff a(1000, 1000, 7);
    core::reconnect_backoff b(1000, 1000, 8);
    int same = 0;
    uint32_t lowest = 1000;
    uint32_t highest = 0;
    for (int i = 0; i < 200; ++i) {
        const uint32_t x = a.next_ms();
        same += x == b.next_ms() ? 1 : 0;
        lowest = std::min(lowest, x);
        highest = std::max(highest, x);
    }
    CHECK(same < 10);
    CHECK(lowest < 600);  // the draws cover [500, 1000]
    CHECK(highest > 900);
}

TEST_CASE("parse_service_url: userinfo, brackets, port and path are taken apart",
          "[core][url]") {
    auto u = core::parse_service_url("us%40er:p%3Ass@[2001:db8::1]:7000/x%2fy", "Test URL", 1);
    REQUIRE(u);
    CHECK(u->has_userinfo);
    CHECK(u->has_colon);
    CHECK(u->user == "us@er");
    CHECK(u->password == "p:ss");
    CHECK(u->host == "2001:db8::1");
    CHECK(u->port == 7000);
    CHECK(u->has_path);
    CHECK(u->path == "x%2fy"); // raw: the scheme decides what a path means
    auto bare = core::parse_service_url("host", "Test URL", 1234);
    REQUIRE(bare);
    CHECK_FALSE(bare->has_userinfo);
    CHECK_FALSE(bare->has_path);
    CHECK(bare->port == 1234);
    auto word = core::parse_service_url("secret@host", "Test URL", 1);
    REQUIRE(word);
    CHECK_FALSE(word->has_colon);
    CHECK(word->user == "secret");
    CHECK(core::host_and_port("::1", 6379) == "[::1]:6379");
    CHECK(core::host_and_port("h", 1) == "h:1");
}

TEST_CASE("parse_service_url: errors name the URL", "[core][url]") {
    const auto error_of = [](std::string_view text) {
        auto u = core::parse_service_url(text, "Test URL", 1);
        REQUIRE_FALSE(u);
        return u.error();
    };
    CHECK(error_of("") == "the Test URL has no host");
    CHECK(error_of("h:0") == "the Test URL's port must be 1-65535");
    CHECK(error_of("::1").find("in [ ]") != std::string::npos);
    CHECK(error_of("u%zz@h") == "the Test URL has a bad %-escape in its user or password");
}
