// pubsub subscriptions (src/pubsub/subscriptions.h), driven alone: local channels and their
// subscribers, waiting subscribes and their confirmation, and when the shard's interest in
// a channel is gained or lost.
#include "subscriptions.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace ringcast;
using namespace ringcast::pubsub;

namespace {

struct change {
    std::string channel;
    uint64_t generation;
    interest_change what;
    friend bool operator==(const change&, const change&) = default;
};

/// Records what subscriptions tells the home shard; `then` runs after recording (a test
/// can call back into subscriptions, as the engine does when the home is this shard).
struct recording_sink final : interest_sink {
    std::vector<change> changes;
    std::function<void(const change&)> then;
    void interest_changed(std::string_view channel, uint64_t generation,
                          interest_change what) override {
        changes.push_back({std::string(channel), generation, what});
        told.push_back((what == interest_change::gained ? "gained " : "lost ") +
                       std::string(channel));
        if (then) {
            then(changes.back());
        }
    }
    /// presence: every member change, as "+channel" / "-channel", in the order told,
    /// interleaved with the interest changes as "gained channel" / "lost channel".
    std::vector<std::string> told;
    void member_changed(const local_channel& ch, const session&, member_change c) override {
        told.push_back((c == member_change::joined ? "+" : "-") + ch.name);
    }
};

conn_handle handle(uint32_t slot) {
    return conn_handle{slot, 1};
}

pending_sub waiter(uint32_t slot, session& s, uint32_t reply_slot = 0) {
    return pending_sub{handle(slot), &s, true, slot * 10ull, reply_mode::reply, reply_slot};
}

/// Subscribes `s` the way the engine does: at once when confirmed, else wait and confirm.
void subscribe(subscriptions& subs, std::string_view channel, uint32_t slot, session& s) {
    local_channel* ch = subs.find(channel);
    if (ch != nullptr && ch->confirmed) {
        return subs.add(*ch, handle(slot), s);
    }
    subs.wait(channel, ch, waiter(slot, s));
    subs.confirm(*subs.find(channel), "e", 0);
}

std::vector<const session*> subscribers_of(subscriptions& subs, std::string_view channel) {
    std::vector<const session*> out;
    if (const local_channel* ch = subs.find(channel); ch != nullptr) {
        for (const auto& e : ch->subscribers) {
            out.push_back(e.s);
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<const session*> sorted(std::vector<const session*> v) {
    std::sort(v.begin(), v.end());
    return v;
}

} // namespace

TEST_CASE("subscriptions: the first waiting subscribe gains the interest, its confirmation "
          "adds every waiter",
          "[pubsub][subscriptions]") {
    recording_sink sink;
    subscriptions subs(sink);
    session s1;
    session s2;

    subs.wait("news", nullptr, waiter(1, s1, 7));
    REQUIRE(sink.changes.size() == 1);
    CHECK(sink.changes[0].channel == "news");
    CHECK(sink.changes[0].what == interest_change::gained);
    local_channel* ch = subs.find("news");
    REQUIRE(ch != nullptr);
    CHECK(ch->generation == sink.changes[0].generation);
    CHECK_FALSE(ch->confirmed);
    CHECK(subscriptions::pending(s1) == 1);
    CHECK(subscriptions::held(s1) == 1);
    CHECK(subs.subscribed(s1, "news") == nullptr); // waiting is not subscribed

    subs.wait("news", ch, waiter(2, s2, 3)); // a second waiter: no new round trip
    CHECK(sink.changes.size() == 1);
    CHECK(subs.channel_count() == 1);
    CHECK(subs.subscription_count() == 0);

    const auto answered = subs.confirm(*ch, "ep", 41);
    REQUIRE(answered.size() == 2);
    CHECK(answered[0].s == &s1);
    CHECK(answered[0].slot == 7);
    CHECK(answered[1].s == &s2);
    CHECK(answered[1].slot == 3);
    CHECK(ch->confirmed);
    CHECK(ch->epoch == "ep");
    CHECK(ch->offset == 41);
    CHECK(ch->waiting.empty());
    CHECK(subs.subscribed(s1, "news") == ch);
    CHECK(subs.subscribed(s2, "news") == ch);
    CHECK(subscriptions::pending(s1) == 0);
    CHECK(subscriptions::held(s1) == 1);
    CHECK(subs.subscription_count() == 2);
    CHECK(sink.changes.size() == 1);
}

TEST_CASE("subscriptions: a confirmed channel takes more subscribers without a round trip",
          "[pubsub][subscriptions]") {
    recording_sink sink;
    subscriptions subs(sink);
    session a;
    session b;
    subscribe(subs, "news", 1, a);
    subscribe(subs, "news", 2, b);
    CHECK(sink.changes.size() == 1);
    CHECK(subscribers_of(subs, "news") == sorted({&a, &b}));
    CHECK(subs.channel_counts() == std::vector<std::pair<std::string, uint32_t>>{{"news", 2}});
}

TEST_CASE("subscriptions: only the last local subscriber's departure loses the interest",
          "[pubsub][subscriptions]") {
    recording_sink sink;
    subscriptions subs(sink);
    session a;
    session b;
    session c;
    subscribe(subs, "news", 1, a);
    subscribe(subs, "news", 2, b);
    subscribe(subs, "news", 3, c);
    const uint64_t generation = subs.find("news")->generation;
    sink.changes.clear();

    CHECK(subs.remove(b, "news"));
    CHECK(subs.remove(a, "news"));
    CHECK(sink.changes.empty());
    CHECK(subscribers_of(subs, "news") == std::vector<const session*>{&c});

    CHECK(subs.remove(c, "news"));
    REQUIRE(sink.changes.size() == 1);
    CHECK(sink.changes[0] == change{"news", generation, interest_change::lost});
    CHECK(subs.find("news") == nullptr);
    CHECK(subs.channel_count() == 0);
    CHECK(subs.subscription_count() == 0);
    CHECK_FALSE(subs.remove(c, "news")); // not subscribed any more
    CHECK(sink.changes.size() == 1);
}

TEST_CASE("subscriptions: removal in any order keeps channels and sessions pointing at each "
          "other",
          "[pubsub][subscriptions]") {
    recording_sink sink;
    subscriptions subs(sink);
    session s;
    session t;
    session u;
    for (const char* name : {"a", "b", "c", "d"}) {
        subscribe(subs, name, 1, s);
    }
    subscribe(subs, "b", 2, t);
    subscribe(subs, "c", 2, t);
    subscribe(subs, "b", 3, u);
    CHECK(subs.subscription_count() == 7);

    // Each swap-removal moves the last entry of the session's list and of the channel's.
    CHECK(subs.remove(s, "a"));
    CHECK(subs.remove(t, "b"));
    CHECK(subs.remove(s, "c"));
    CHECK(subscribers_of(subs, "b") == sorted({&s, &u}));
    CHECK(subscribers_of(subs, "c") == std::vector<const session*>{&t});
    CHECK(subs.subscribed(s, "b") != nullptr);
    CHECK(subs.subscribed(s, "d") != nullptr);
    CHECK(subs.subscribed(s, "a") == nullptr);
    CHECK(subscriptions::held(s) == 2);
    for (const local_channel* ch : {subs.find("b"), subs.find("c"), subs.find("d")}) {
        REQUIRE(ch != nullptr);
        for (const auto& e : ch->subscribers) {
            CHECK(subs.subscribed(*e.s, ch->name) == ch);
        }
    }

    CHECK(subs.remove(s, "b"));
    CHECK(subs.remove(u, "b"));
    CHECK(subs.remove(s, "d"));
    CHECK(subs.remove(t, "c"));
    CHECK(subs.channel_count() == 0);
    CHECK(subs.subscription_count() == 0);
    std::vector<std::string> lost;
    for (const auto& c : sink.changes) {
        if (c.what == interest_change::lost) {
            lost.push_back(c.channel);
        }
    }
    CHECK(lost == std::vector<std::string>{"a", "b", "d", "c"});
}

TEST_CASE("subscriptions: a closing connection leaves every channel and pending subscribe, "
          "losing only the interests it held alone",
          "[pubsub][subscriptions]") {
    recording_sink sink;
    subscriptions subs(sink);
    session s;
    session t;
    subscribe(subs, "shared", 1, s);
    subscribe(subs, "shared", 2, t);
    subscribe(subs, "alone", 1, s);
    subs.wait("pending-alone", nullptr, waiter(1, s));
    subs.wait("pending-shared", nullptr, waiter(2, t));
    subs.wait("pending-shared", subs.find("pending-shared"), waiter(1, s));
    CHECK(subscriptions::pending(s) == 2);
    CHECK(subscriptions::held(s) == 4);
    sink.changes.clear();

    subs.close(handle(1), s);
    std::vector<std::string> lost;
    for (const auto& c : sink.changes) {
        CHECK(c.what == interest_change::lost);
        lost.push_back(c.channel);
    }
    std::sort(lost.begin(), lost.end());
    CHECK(lost == std::vector<std::string>{"alone", "pending-alone"});
    CHECK(subscriptions::pending(s) == 0);
    CHECK(subscriptions::held(s) == 0);
    CHECK(subscribers_of(subs, "shared") == std::vector<const session*>{&t});
    const local_channel* waiting = subs.find("pending-shared");
    REQUIRE(waiting != nullptr);
    REQUIRE(waiting->waiting.size() == 1);
    CHECK(waiting->waiting[0].s == &t);
    CHECK(subs.channel_count() == 2);
    CHECK(subs.subscription_count() == 1);
}

TEST_CASE("subscriptions: a channel that comes back is a new instance with a new generation",
          "[pubsub][subscriptions]") {
    recording_sink sink;
    subscriptions subs(sink);
    session s;
    subs.wait("news", nullptr, waiter(1, s));
    subs.close(handle(1), s); // gone before the home shard answered: lost all the same
    subs.wait("news", nullptr, waiter(1, s));
    REQUIRE(sink.changes.size() == 3);
    CHECK(sink.changes[0].what == interest_change::gained);
    CHECK(sink.changes[1] == change{"news", sink.changes[0].generation, interest_change::lost});
    CHECK(sink.changes[2].what == interest_change::gained);
    CHECK(sink.changes[2].generation != sink.changes[0].generation);
    CHECK(subs.find("news")->generation == sink.changes[2].generation);
}

TEST_CASE("subscriptions: the delivery path records the last offset delivered",
          "[pubsub][subscriptions]") {
    recording_sink sink;
    subscriptions subs(sink);
    session s;
    subs.wait("news", nullptr, waiter(1, s));
    subs.confirm(*subs.find("news"), "ep", 5);
    const local_channel* ch = subs.delivering("news", 9);
    REQUIRE(ch != nullptr);
    CHECK(ch->offset == 9);
    CHECK(ch->subscribers.size() == 1);
    CHECK(subs.delivering("other", 1) == nullptr);
}

TEST_CASE("subscriptions: the sink may confirm at once, as a home on the same shard does",
          "[pubsub][subscriptions]") {
    recording_sink sink;
    subscriptions subs(sink);
    std::vector<pending_sub> answered;
    sink.then = [&](const change& c) {
        if (c.what == interest_change::gained) {
            answered = subs.confirm(*subs.find(c.channel), "ep", 0);
        }
    };
    session s;
    subs.wait("news", nullptr, waiter(1, s, 4));
    REQUIRE(answered.size() == 1);
    CHECK(answered[0].slot == 4);
    CHECK(subscriptions::pending(s) == 0);
    CHECK(subs.subscribed(s, "news") == subs.find("news"));
    CHECK(subs.find("news")->confirmed);
}

TEST_CASE("subscriptions: every subscriber added or removed is told as a member change, a "
          "removal before the interest loss",
          "[pubsub][subscriptions][presence]") {
    recording_sink sink;
    subscriptions subs(sink);
    session a;
    session b;
    subscribe(subs, "room", 1, a);  // waits, confirmed: added by confirm()
    subscribe(subs, "room", 2, b);  // confirmed: added at once
    subscribe(subs, "other", 1, a);
    REQUIRE(subs.remove(a, "room"));
    subs.close(handle(2), b);
    subs.close(handle(1), a);
    CHECK(sink.told == std::vector<std::string>{"gained room", "+room", "+room", "gained other",
                                                "+other", "-room", "-room", "lost room",
                                                "-other", "lost other"});
}

TEST_CASE("subscriptions: top_counts keeps the channels with the most subscribers, ties by name",
          "[pubsub][subscriptions]") {
    recording_sink sink;
    subscriptions subs(sink);
    std::vector<std::unique_ptr<session>> sessions;
    uint32_t slot = 1;
    // channel c<i> gets i subscribers; "b3" ties with "c3".
    auto add = [&](std::string name, int n) {
        for (int i = 0; i < n; ++i) {
            sessions.push_back(std::make_unique<session>());
            subscribe(subs, name, slot++, *sessions.back());
        }
    };
    for (int i = 1; i <= 8; ++i) {
        add("c" + std::to_string(i), i);
    }
    add("b3", 3);
    using list = std::vector<std::pair<std::string, uint32_t>>;
    CHECK(subs.top_counts(3) == list{{"c8", 8}, {"c7", 7}, {"c6", 6}});
    CHECK(subs.top_counts(7) ==
          list{{"c8", 8}, {"c7", 7}, {"c6", 6}, {"c5", 5}, {"c4", 4}, {"b3", 3}, {"c3", 3}});
    CHECK(subs.top_counts(0).empty());
    CHECK(subs.top_counts(100).size() == 9);
    CHECK(subs.top_counts(100).back() == std::pair<std::string, uint32_t>{"c1", 1});
}
