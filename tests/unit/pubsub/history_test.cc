// pubsub history (src/pubsub/history.h), driven alone: the ring per channel, its count and
// age limits, the shard's byte budget (oldest of the shard first), and the bookkeeping
// bounds the contracts promise.
#include "history.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

using namespace ringcast;
using namespace ringcast::pubsub;

namespace {

/// A frame whose bytes are `text` (history never looks inside).
core::frame_ref frame_of(const std::string& text) {
    core::frame_ref f = core::make_frame(text.size());
    std::memcpy(f->mutable_data(), text.data(), text.size());
    return f;
}

std::string text_of(const core::frame_ref& f) {
    return std::string(reinterpret_cast<const char*>(f->data()), f->own_size());
}

std::vector<std::string> texts(const std::vector<core::frame_ref>& frames) {
    std::vector<std::string> out;
    for (const auto& f : frames) {
        out.push_back(text_of(f));
    }
    return out;
}

constexpr std::size_t big_budget = std::size_t{1} << 30;

} // namespace

TEST_CASE("history rules find a channel's policy by its namespace", "[pubsub][history]") {
    channel_rules rules;
    rules.by_namespace = {{"chat", {100, 300}}, {"tests", {5, 0}}};
    CHECK(rules.find("chat:room-1").count == 100);
    CHECK(rules.find("chat:room-1").ttl_s == 300);
    CHECK(rules.find("tests:x").count == 5);
    CHECK(rules.find("lobby").count == 0);      // no namespace
    CHECK(rules.find("chatter:x").count == 0);  // another namespace
    CHECK(rules.find("cha:x").count == 0);
    CHECK(rules.find(":x").count == 0);
}

TEST_CASE("a channel keeps its last `count` messages, oldest first", "[pubsub][history]") {
    history_store store(big_budget);
    auto h = store.make({3, 0});
    CHECK(h->size() == 0);
    for (uint64_t offset = 1; offset <= 5; ++offset) {
        h->push(offset, frame_of("m" + std::to_string(offset)), 100);
    }
    CHECK(h->size() == 3);
    CHECK(h->first_offset() == 3);
    CHECK(texts(h->after(0, 100, 100)) == std::vector<std::string>{"m3", "m4", "m5"});
    CHECK(texts(h->after(3, 100, 100)) == std::vector<std::string>{"m4", "m5"});
    CHECK(texts(h->after(4, 1, 100)) == std::vector<std::string>{"m5"});
    CHECK(h->after(5, 100, 100).empty());
    CHECK(h->after(99, 100, 100).empty());
    CHECK(texts(h->after(0, 2, 100)) == std::vector<std::string>{"m3", "m4"});
    CHECK(store.stats().messages == 3);
    CHECK(store.stats().evicted_count == 2);
    CHECK(store.stats().channels == 1);
}

TEST_CASE("history shares the frame: a retained message is not copied", "[pubsub][history]") {
    history_store store(big_budget);
    auto h = store.make({10, 0});
    core::frame_ref f = frame_of("shared");
    const core::frame* raw = f.get();
    h->push(1, f, 0);
    const auto got = h->after(0, 10, 0);
    REQUIRE(got.size() == 1);
    CHECK(got[0].get() == raw);
}

TEST_CASE("messages older than the ttl are not returned and are dropped", "[pubsub][history]") {
    history_store store(big_budget);
    auto h = store.make({100, 10});
    h->push(1, frame_of("a"), 1000);
    h->push(2, frame_of("b"), 1005);
    h->push(3, frame_of("c"), 1009);
    CHECK(texts(h->after(0, 100, 1010)) == std::vector<std::string>{"a", "b", "c"});
    // At 1011 the first is more than 10 s old: gone.
    CHECK(texts(h->after(0, 100, 1011)) == std::vector<std::string>{"b", "c"});
    CHECK(h->first_offset() == 2);
    h->expire(1020);
    CHECK(h->size() == 0);
    CHECK(h->first_offset() == 4); // the next offset to come
    CHECK(store.stats().evicted_age == 3);
    CHECK(store.stats().messages == 0);
    CHECK(store.stats().bytes == 0);
    // A push finds the ring empty and starts at its offset.
    h->push(4, frame_of("d"), 1020);
    CHECK(texts(h->after(0, 100, 1020)) == std::vector<std::string>{"d"});
}

TEST_CASE("a gap in offsets restarts the ring at the new offset", "[pubsub][history]") {
    history_store store(big_budget);
    auto h = store.make({10, 0});
    h->push(1, frame_of("a"), 0);
    h->push(2, frame_of("b"), 0);
    h->push(7, frame_of("g"), 0);
    CHECK(h->first_offset() == 7);
    CHECK(texts(h->after(0, 10, 0)) == std::vector<std::string>{"g"});
    CHECK(store.stats().messages == 1);
}

TEST_CASE("the shard budget drops the oldest messages of the shard first", "[pubsub][history]") {
    const std::string body(100, 'x');
    const std::size_t one = history_store::cost(frame_of(body));
    history_store store(one * 4); // room for exactly four
    auto a = store.make({100, 0});
    auto b = store.make({100, 0});
    a->push(1, frame_of(body), 0); // oldest
    b->push(1, frame_of(body), 0);
    a->push(2, frame_of(body), 0);
    b->push(2, frame_of(body), 0);
    CHECK(store.stats().messages == 4);
    CHECK(store.stats().evicted_budget == 0);
    b->push(3, frame_of(body), 0); // over: a's 1 goes
    CHECK(store.stats().messages == 4);
    CHECK(store.stats().bytes <= one * 4);
    CHECK(a->first_offset() == 2);
    CHECK(b->first_offset() == 1);
    b->push(4, frame_of(body), 0); // then b's 1
    CHECK(b->first_offset() == 2);
    CHECK(a->first_offset() == 2);
    CHECK(store.stats().evicted_budget == 2);
}

TEST_CASE("a message larger than the whole budget is not kept", "[pubsub][history]") {
    history_store store(64);
    auto h = store.make({10, 0});
    h->push(1, frame_of(std::string(1000, 'y')), 0);
    CHECK(h->size() == 0);
    CHECK(store.stats().bytes == 0);
    CHECK(store.stats().evicted_budget == 1);
    CHECK(h->first_offset() == 2);
}

TEST_CASE("an ended channel gives its bytes back; the budget skips its stale entries",
          "[pubsub][history]") {
    const std::string body(100, 'z');
    const std::size_t one = history_store::cost(frame_of(body));
    history_store store(one * 3);
    auto keep = store.make({100, 0});
    {
        auto gone = store.make({100, 0});
        gone->push(1, frame_of(body), 0);
        gone->push(2, frame_of(body), 0);
        CHECK(store.stats().channels == 2);
    }
    CHECK(store.stats().channels == 1);
    CHECK(store.stats().messages == 0);
    CHECK(store.stats().bytes == 0);
    for (uint64_t offset = 1; offset <= 4; ++offset) {
        keep->push(offset, frame_of(body), 0);
    }
    // Only keep's own messages were evicted for the budget (the stale entries were skipped).
    CHECK(store.stats().evicted_budget == 1);
    CHECK(keep->first_offset() == 2);
    CHECK(keep->size() == 3);
}

TEST_CASE("the oldest-first list stays bounded while counts drop messages", "[pubsub][history]") {
    history_store store(big_budget);
    auto busy = store.make({2, 0});
    auto quiet = store.make({1000, 0});
    quiet->push(1, frame_of("q"), 0); // stays at the front of the list, live
    for (uint64_t offset = 1; offset <= 100000; ++offset) {
        busy->push(offset, frame_of("b"), 0);
        REQUIRE(store.order_entries() <= 2 * store.stats().messages + 1024);
    }
    CHECK(store.stats().messages == 3);
    CHECK(store.stats().evicted_count == 99998);
    CHECK(texts(quiet->after(0, 10, 0)) == std::vector<std::string>{"q"});
}

TEST_CASE("retained bytes count each frame and 32 B of bookkeeping", "[pubsub][history]") {
    history_store store(big_budget);
    auto h = store.make({10, 0});
    const core::frame_ref f = frame_of(std::string(500, 'w'));
    CHECK(history_store::cost(f) == sizeof(core::frame) + 500 + 32);
    h->push(1, f, 0);
    h->push(2, frame_of(std::string(10, 'w')), 0);
    CHECK(store.stats().bytes == history_store::cost(f) + sizeof(core::frame) + 10 + 32);
}

TEST_CASE("stamped_from finds the first message stamped at or after a time, and says whether "
          "nothing at or after it can have been dropped",
          "[pubsub][history][recovery]") {
    history_store store(big_budget);
    auto h = store.make({4, 0});
    // Offsets 1-6 stamped 1000, 1000, 1010, 1020, 1020, 1030 (two share a millisecond);
    // the count keeps 3-6.
    const uint64_t stamps[] = {1000, 1000, 1010, 1020, 1020, 1030};
    for (uint64_t offset = 1; offset <= 6; ++offset) {
        h->push(offset,
                frame_of(R"({"id":"m","data":{"timestamp":1},"priority":3,"timestamp":)" +
                         std::to_string(stamps[offset - 1]) + R"(,"userId":null,"offset":)" +
                         std::to_string(offset) + "}"),
                100);
    }
    REQUIRE(h->first_offset() == 3);
    using st = channel_history::stamped;
    const auto at = [&](uint64_t ms) {
        const st s = h->stamped_from(ms);
        return std::make_pair(s.offset, s.complete);
    };
    // The data's own "timestamp" is not the envelope's.
    CHECK(at(1020) == std::make_pair(uint64_t{4}, true)); // both 1020s
    CHECK(at(1011) == std::make_pair(uint64_t{4}, true));
    CHECK(at(1030) == std::make_pair(uint64_t{6}, true));
    CHECK(at(1031) == std::make_pair(uint64_t{7}, true)); // past the last: nothing to send
    // At or before the oldest kept: 1 and 2 (stamped 1000) were dropped, so a time they
    // might match is not complete.
    CHECK(at(1010) == std::make_pair(uint64_t{3}, false));
    CHECK(at(0) == std::make_pair(uint64_t{3}, false));
}
