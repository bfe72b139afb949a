// The bridges' rules (include/ringcast/bridge.h): --queue-bridge QUEUE:EVENT:CHANNEL as read
// at start, and channel templates expanded per event.
#include <ringcast/bridge.h>

#include <catch2/catch.hpp>
#include <string>

using namespace ringcast;
using namespace ringcast::bridge;

TEST_CASE("a rule: queue, event, and the channel after the second colon") {
    auto r = parse_bull_rule("reports:progress:job:{jobId}");
    REQUIRE(r);
    CHECK(r->queue == "reports");
    CHECK(r->event == "progress");
    CHECK(r->channel.text == "job:{jobId}");
    auto any = parse_bull_rule("q-1.x:*:test-{event}-{jobId}");
    REQUIRE(any);
    CHECK(any->event == "*");
}

TEST_CASE("rules that are refused, each with a sentence") {
    for (const char* bad : {"", "abc", "reports", "reports:progress", "reports:progress:",
                            ":progress:job:{jobId}", "re ports:progress:x", "reports::x",
                            "reports:pro gress:x", "reports:progress:job:{jobid}",
                            "reports:progress:job:{jobId", "reports:progress:job:}",
                            "reports:progress:sys:{jobId}", "reports:progress:a b",
                            "reports:progress:job/{jobId}", "-1", "1.5"}) {
        auto r = parse_bull_rule(bad);
        INFO(bad);
        CHECK_FALSE(r);
        if (!r) {
            CHECK_FALSE(r.error().empty());
        }
    }
    // A template longer than a channel can be.
    CHECK_FALSE(parse_bull_rule("q:e:" + std::string(256, 'a')));
}

TEST_CASE("templates expand the placeholders, or make no channel") {
    auto t = parse_channel_template("test-{event}-{jobId}@{queue}");
    REQUIRE(t);
    CHECK(t->expand("reports", "progress", "42") == std::optional<std::string>("test-progress-42@reports"));
    // A placeholder with no value, or a value no channel may hold: nothing.
    CHECK_FALSE(t->expand("reports", "progress", ""));
    CHECK_FALSE(t->expand("reports", "progress", "a b"));
    CHECK_FALSE(t->expand("reports", "progress", "x\"y"));
    CHECK_FALSE(t->expand("reports", "progress", std::string(300, '7')));
    // A job id that turns the channel into a sys: one is refused too.
    auto j = parse_channel_template("{jobId}:x");
    REQUIRE(j);
    CHECK_FALSE(j->expand("q", "e", "sys"));
    CHECK(j->expand("q", "e", "job") == std::optional<std::string>("job:x"));
    // No placeholder: every event to one channel.
    auto fixed = parse_channel_template("queue-updates");
    REQUIRE(fixed);
    CHECK(fixed->expand("q", "e", "") == std::optional<std::string>("queue-updates"));
}

TEST_CASE("BullMQ key prefixes") {
    CHECK(valid_bull_prefix("bull"));
    CHECK(valid_bull_prefix("{reports}"));
    for (const char* bad : {"", "a b", "a*", "a:b", "a/b"}) {
        CHECK_FALSE(valid_bull_prefix(bad));
    }
    CHECK_FALSE(valid_bull_prefix(std::string(65, 'x')));
}
