// pubsub ordering (src/pubsub/ordering.h), driven alone: offsets per channel, epochs, the
// interest of each shard, and the idle list with its eviction.
#include "ordering.h"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

using namespace ringcast;
using namespace ringcast::pubsub;

namespace {

using names = std::vector<std::string_view>;

constexpr uint32_t start_s = 0x5f00;

ordering make(uint32_t max_idle, unsigned shards = 1, unsigned self = 0) {
    return ordering(shard_id(static_cast<uint16_t>(self)), shards, start_s, max_idle);
}

} // namespace

TEST_CASE("ordering gives each channel its own offsets, increasing from 1", "[pubsub][ordering]") {
    auto o = make(16);
    CHECK(o.order("a").offset == 1);
    CHECK(o.order("a").offset == 2);
    CHECK(o.order("b").offset == 1);
    CHECK(o.order("a").offset == 3);
    CHECK(o.order("b").offset == 2);
    REQUIRE(o.find("a") != nullptr);
    CHECK(o.find("a")->offset == 3);
    CHECK(o.find("c") == nullptr);
    CHECK(o.size() == 2);
}

TEST_CASE("ordering names epochs by start time, shard and channel instance", "[pubsub][ordering]") {
    auto o = make(16, 4, 3);
    const std::string a = o.order("a").epoch;
    const std::string b = o.order("b").epoch;
    // "%llx%02x%x": the process instance, shard, then a per-shard sequence.
    CHECK(a == "5f00031");
    CHECK(b == "5f00032");
    CHECK(o.order("a").epoch == a); // stable while the channel lives
    CHECK(o.order("a").interested.size() == 4);
}

TEST_CASE("ordering keeps idle channels least recently used first", "[pubsub][ordering]") {
    auto o = make(3);
    o.order("a");
    o.order("b");
    o.order("c");
    CHECK(o.idle_names() == names{"a", "b", "c"});
    o.order("a"); // used again: now the last to go
    CHECK(o.idle_names() == names{"b", "c", "a"});
    o.order("d"); // a fourth idle channel: the least recently used one goes
    CHECK(o.idle_names() == names{"c", "a", "d"});
    CHECK(o.find("b") == nullptr);
    CHECK(o.evicted() == 1);
    CHECK(o.size() == 3);
}

TEST_CASE("ordering gives an evicted channel a new epoch and starts it at offset 1",
          "[pubsub][ordering]") {
    auto o = make(2);
    o.order("a");
    o.order("a");
    const std::string first = o.order("a").epoch;
    CHECK(o.find("a")->offset == 3);
    o.order("b");
    o.order("c"); // three idle channels, two kept: "a" goes
    CHECK(o.find("a") == nullptr);
    CHECK(o.evicted() == 1);

    const home_channel& again = o.order("a");
    CHECK(again.offset == 1);
    CHECK(again.epoch != first);
    CHECK(o.evicted() == 2); // "b" made room for it
}

TEST_CASE("ordering never evicts a channel some shard is interested in", "[pubsub][ordering]") {
    auto o = make(1, 2);
    const home_channel& a = o.interest(0, "a", interest_change::gained);
    CHECK(a.interested == std::vector<bool>{true, false});
    CHECK(a.interested_count == 1);
    CHECK(o.idle_count() == 0);
    o.order("a");
    o.order("a");
    const std::string epoch = o.find("a")->epoch;

    o.order("b");
    o.order("c"); // b is evicted for c; a is not idle, so it stays
    CHECK(o.idle_names() == names{"c"});
    REQUIRE(o.find("a") != nullptr);
    CHECK(o.find("a")->offset == 2);
    CHECK(o.find("a")->epoch == epoch);

    o.interest(1, "a", interest_change::gained);
    o.interest(0, "a", interest_change::lost);
    CHECK(o.idle_count() == 1); // shard 1 still wants it
    CHECK(o.find("a")->interested == std::vector<bool>{false, true});

    o.interest(1, "a", interest_change::lost); // nobody wants it: idle, the most recent
    CHECK(o.idle_names() == names{"a"});
    CHECK(o.find("c") == nullptr);
    CHECK(o.find("a")->offset == 2);
    CHECK(o.find("a")->epoch == epoch);
}

TEST_CASE("ordering counts a shard's interest once however often it is repeated",
          "[pubsub][ordering]") {
    auto o = make(16, 3);
    o.interest(2, "a", interest_change::gained);
    o.interest(2, "a", interest_change::gained);
    CHECK(o.find("a")->interested_count == 1);
    o.interest(2, "a", interest_change::lost);
    CHECK(o.find("a")->interested_count == 0);
    CHECK(o.idle_names() == names{"a"});
    o.interest(1, "a", interest_change::lost); // a shard that was never interested
    CHECK(o.find("a")->interested_count == 0);
}

TEST_CASE("ordering answers an interest with the channel's current subscription point",
          "[pubsub][ordering]") {
    auto o = make(16, 2);
    o.order("a");
    o.order("a");
    const home_channel& ch = o.interest(1, "a", interest_change::gained);
    CHECK(ch.offset == 2);
    CHECK(ch.epoch == o.find("a")->epoch);
    CHECK(o.idle_count() == 0);
    // A new channel's first interest answers offset 0: nothing was published yet.
    CHECK(o.interest(0, "b", interest_change::gained).offset == 0);
}

TEST_CASE("ordering keeps the most recent idle channel even with a bound of 0",
          "[pubsub][ordering]") {
    auto o = make(0);
    CHECK(o.order("a").offset == 1);
    CHECK(o.find("a") != nullptr);
    CHECK(o.order("b").offset == 1);
    CHECK(o.find("a") == nullptr);
    CHECK(o.idle_names() == names{"b"});
}
