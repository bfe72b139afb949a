// The sys:stats snapshot (src/admin/snapshot.cc): the busiest channels merged from the
// shards' lists and bounded, and the message data: GET /api/stats's total and shards
// unchanged, with the timestamp, the interval and the channels around them.
#include "gather.h"
#include "stats.h"

#include <simdjson.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace ringcast;
using namespace ringcast::admin;

namespace {

gather_msg answer_with(std::vector<std::pair<std::string, uint32_t>> list) {
    gather_msg g;
    g.list = std::move(list);
    return g;
}

using ranked = std::vector<std::pair<std::string, uint64_t>>;

} // namespace

TEST_CASE("top channels sum each name over the shards and keep the largest, ties by name",
          "[admin][snapshot]") {
    const std::vector<gather_msg> answers = {
        answer_with({{"news", 5}, {"chat:a", 2}, {"user:7", 1}}),
        answer_with({{"news", 1}, {"chat:a", 4}, {"chat:b", 6}}),
    };
    CHECK(top_channels(answers, 10) ==
          ranked{{"chat:a", 6}, {"chat:b", 6}, {"news", 6}, {"user:7", 1}});
    CHECK(top_channels(answers, 2) == ranked{{"chat:a", 6}, {"chat:b", 6}});
    CHECK(top_channels(answers, 0).empty());
    CHECK(top_channels({}, 10).empty());
}

TEST_CASE("top channels are bounded to snapshot_channels however many the shards report",
          "[admin][snapshot]") {
    std::vector<gather_msg> answers(2);
    for (uint32_t i = 0; i < snapshot_channels_per_shard; ++i) {
        answers[0].list.emplace_back("a" + std::to_string(i), i + 1);
        answers[1].list.emplace_back("b" + std::to_string(i), i + 1);
    }
    const ranked top = top_channels(answers, snapshot_channels);
    REQUIRE(top.size() == snapshot_channels);
    CHECK(top.front() == std::pair<std::string, uint64_t>{"a31", 32});
    CHECK(top[1] == std::pair<std::string, uint64_t>{"b31", 32});
    CHECK(top.back().second == 28);
}

TEST_CASE("a snapshot's data is GET /api/stats's total and shards with the timestamp, the "
          "interval and the channels",
          "[admin][snapshot]") {
    std::vector<stats::shard_stats> shards(2);
    shards[0].pubsub.messages_in = 7;
    shards[1].pubsub.messages_in = 35;
    shards[1].core.accepted = 3;
    const ranked channels = {{"news", 12}, {"chat:a", 2}};
    const std::string data = snapshot_json(shards, channels, 1763790000123);

    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    REQUIRE(parser.parse(data).get(doc) == simdjson::SUCCESS);
    CHECK(uint64_t(doc["timestamp"]) == 1763790000123);
    CHECK(uint64_t(doc["interval_ms"]) == snapshot_interval_ms);
    CHECK(uint64_t(doc["total"]["messages_in"]) == 42);
    CHECK(uint64_t(doc["total"]["connections"]) == 3);
    CHECK(simdjson::dom::array(doc["shards"]).size() == 2);
    CHECK(uint64_t(doc["shards"].at(1)["messages_in"]) == 35);
    simdjson::dom::array listed = doc["channels"];
    REQUIRE(listed.size() == 2);
    CHECK(std::string_view(listed.at(0)["channel"]) == "news");
    CHECK(uint64_t(listed.at(0)["subscribers"]) == 12);
    CHECK(std::string_view(listed.at(1)["channel"]) == "chat:a");

    // total and shards are byte for byte what the stats endpoint writes.
    const std::string stats = stats::stats_json(shards);
    const std::string fields = stats.substr(1, stats.size() - 2);
    CHECK(data.find(fields) != std::string::npos);

    const std::string empty = snapshot_json(shards, {}, 1);
    REQUIRE(parser.parse(empty).get(doc) == simdjson::SUCCESS);
    CHECK(simdjson::dom::array(doc["channels"]).size() == 0);
}
