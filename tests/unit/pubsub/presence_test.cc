// Presence through the engine facade (include/ringcast/pubsub.h, presence.cc) on fake
// conn_ios, several engines in one test with their mesh posts handed from one to the other
// (cluster::pump): join only on a user's first connection to a channel and leave only on
// its last, across shards; anonymous connections counted without events; the cut-off;
// every way a subscription ends (unsubscribe, close, a refresh revoking it) sending its
// leave; the presence command's reply and refusals; and the channel_presence rules alone.
#include "../auth/token_maker.h"
#include "engine_types.h"
#include "fake_io.h"
#include "presence.h"

#include <ringcast/auth.h>
#include <ringcast/pubsub.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <ctime>
#include <span>
#include <memory>
#include <string>
#include <vector>

using namespace ringcast;
using namespace ringcast::pubsub;
using testing::fake_io;
using testing::handle;
using testing::homed_on;
using testing::texts_to;

namespace {

/// `room` marked presence (homed_on's names), `plain` not.
config presence_config(uint32_t max_members = 1000) {
    config cfg;
    channel_policy room;
    room.presence = true;
    cfg.channels.by_namespace = {{"room", room}};
    cfg.max_presence_members = max_members;
    return cfg;
}

/// `shards` engines on fake conn_ios; pump() hands every post to its shard's handler, in
/// order per (from, to) pair as the mesh does, until nothing is left in flight.
struct cluster {
    cluster(unsigned shards, const config& cfg, auth::verifier* tokens = nullptr) {
        for (unsigned i = 0; i < shards; ++i) {
            ios.push_back(std::make_unique<fake_io>(i, shards));
            engines.push_back(std::make_unique<engine>(*ios.back(), cfg, tokens));
        }
    }
    void pump() {
        for (bool moved = true; moved;) {
            moved = false;
            for (unsigned from = 0; from < ios.size(); ++from) {
                auto posts = std::move(ios[from]->posts);
                ios[from]->posts.clear();
                for (const auto& p : posts) {
                    moved = true;
                    ios[unsigned(p.to)]->handlers.dispatch(shard_id(static_cast<uint16_t>(from)),
                                                           p.msg);
                }
            }
        }
    }
    /// A command on connection `slot` of `shard`, and everything it sets off.
    void command(unsigned shard, uint32_t slot, session& s, const std::string& text) {
        engines[shard]->on_text(handle(slot), s, text);
        pump();
    }
    void open(unsigned shard, uint32_t slot, session& s, std::string_view user) {
        engines[shard]->open_session(handle(slot), s, user);
        pump();
    }
    void close(unsigned shard, uint32_t slot, session& s) {
        engines[shard]->close_session(handle(slot), s);
        pump();
    }
    counters total() const {
        counters sum;
        for (const auto& e : engines) {
            const counters c = e->stats();
            sum.presence_channels += c.presence_channels;
            sum.presence_members += c.presence_members;
            sum.presence_joins += c.presence_joins;
            sum.presence_leaves += c.presence_leaves;
            sum.presence_events_sent += c.presence_events_sent;
            sum.presence_events_suppressed += c.presence_events_suppressed;
            sum.presence_queries += c.presence_queries;
        }
        return sum;
    }
    std::vector<std::unique_ptr<fake_io>> ios; // before engines: they outlive them
    std::vector<std::unique_ptr<engine>> engines;
};

std::string command_text(std::string_view op, std::string_view channel, int id) {
    return "{\"op\":\"" + std::string(op) + "\",\"channel\":\"" + std::string(channel) +
           "\",\"id\":" + std::to_string(id) + "}";
}

std::string event(std::string_view type, std::string_view channel, std::string_view user) {
    return R"({"op":"presence","type":")" + std::string(type) + R"(","channel":")" +
           std::string(channel) + R"(","userId":")" + std::string(user) + "\"}";
}

/// The presence events connection `slot` of `shard` received, in order.
std::vector<std::string> events_to(const cluster& c, unsigned shard, uint32_t slot) {
    std::vector<std::string> out;
    for (const std::string& text : texts_to(*c.ios[shard], slot)) {
        if (text.starts_with(R"({"op":"presence")")) {
            out.push_back(text);
        }
    }
    return out;
}

/// The reply to command `id` on connection `slot` of `shard`.
std::string reply_to(const cluster& c, unsigned shard, uint32_t slot, int id) {
    const std::string head = R"({"op":"reply","id":)" + std::to_string(id) + ",";
    for (const std::string& text : texts_to(*c.ios[shard], slot)) {
        if (text.starts_with(head)) {
            return text;
        }
    }
    return "(no reply " + std::to_string(id) + ")";
}

/// The presence events connection `slot` of one engine's io received, in order.
std::vector<std::string> events_to_io(const fake_io& io, uint32_t slot) {
    std::vector<std::string> out;
    for (const std::string& text : texts_to(io, slot)) {
        if (text.starts_with(R"({"op":"presence")")) {
            out.push_back(text);
        }
    }
    return out;
}

/// The reply to command `id` on connection `slot` of one engine's io.
std::string reply_to_io(const fake_io& io, uint32_t slot, int id) {
    const std::string head = R"({"op":"reply","id":)" + std::to_string(id) + ",";
    for (const std::string& text : texts_to(io, slot)) {
        if (text.starts_with(head)) {
            return text;
        }
    }
    return "(no reply " + std::to_string(id) + ")";
}

} // namespace

TEST_CASE("presence: a join only for a user's first connection, a leave only for its last, "
          "across two shards",
          "[pubsub][presence]") {
    for (unsigned home = 0; home < 2; ++home) {
        CAPTURE(home);
        cluster c(2, presence_config());
        const std::string room = homed_on(home, 2);
        // A watcher on each shard (anonymous: counted, never announced).
        session w0;
        session w1;
        c.open(0, 1, w0, "");
        c.open(1, 1, w1, "");
        c.command(0, 1, w0, command_text("subscribe", room, 1));
        c.command(1, 1, w1, command_text("subscribe", room, 1));
        // ann's first connection on shard 0, her second on shard 1.
        session a0;
        session a1;
        c.open(0, 2, a0, "ann");
        c.open(1, 2, a1, "ann");
        c.command(0, 2, a0, command_text("subscribe", room, 1));
        const std::vector<std::string> joined = {event("join", room, "ann")};
        CHECK(events_to(c, 0, 1) == joined);
        CHECK(events_to(c, 1, 1) == joined);
        c.command(1, 2, a1, command_text("subscribe", room, 1));
        CHECK(events_to(c, 0, 1) == joined); // her second connection: nothing
        CHECK(events_to(c, 1, 1) == joined);

        c.command(0, 1, w0, command_text("presence", room, 2));
        CHECK(
            reply_to(c, 0, 1, 2) ==
            R"({"op":"reply","id":2,"ok":true,"channel":")" + room +
                R"(","users":1,"connections":4,"anonymous":2,"members":[{"userId":"ann","connections":2}]})");

        // Her first connection leaves: she is still there.
        c.command(0, 2, a0, command_text("unsubscribe", room, 2));
        CHECK(events_to(c, 0, 1) == joined);
        CHECK(events_to(c, 1, 1) == joined);
        // Her last one goes (closed): one leave, on both shards.
        c.close(1, 2, a1);
        const std::vector<std::string> left = {event("join", room, "ann"),
                                               event("leave", room, "ann")};
        CHECK(events_to(c, 0, 1) == left);
        CHECK(events_to(c, 1, 1) == left);

        const counters t = c.total();
        CHECK(t.presence_joins == 1);
        CHECK(t.presence_leaves == 1);
        CHECK(t.presence_events_sent == 2);
        CHECK(t.presence_members == 0);
        CHECK(t.presence_channels == 1); // the two watchers
        CHECK(t.presence_queries == 1);
        c.close(0, 1, w0);
        c.close(1, 1, w1);
        CHECK(c.total().presence_channels == 0);
    }
}

TEST_CASE("presence: anonymous connections are counted and make no events", "[pubsub][presence]") {
    cluster c(2, presence_config());
    const std::string room = homed_on(1, 2);
    session watcher;
    c.open(0, 1, watcher, "bob");
    c.command(0, 1, watcher, command_text("subscribe", room, 1));
    CHECK(events_to(c, 0, 1) == std::vector<std::string>{event("join", room, "bob")});
    session anon[3];
    for (uint32_t i = 0; i < 3; ++i) {
        c.open(i % 2, 10 + i, anon[i], "");
        c.command(i % 2, 10 + i, anon[i], command_text("subscribe", room, 1));
    }
    c.command(0, 1, watcher, command_text("presence", room, 2));
    CHECK(
        reply_to(c, 0, 1, 2) ==
        R"({"op":"reply","id":2,"ok":true,"channel":")" + room +
            R"(","users":1,"connections":4,"anonymous":3,"members":[{"userId":"bob","connections":1}]})");
    for (uint32_t i = 0; i < 3; ++i) {
        c.close(i % 2, 10 + i, anon[i]);
    }
    CHECK(events_to(c, 0, 1) == std::vector<std::string>{event("join", room, "bob")});
    const counters t = c.total();
    CHECK(t.presence_joins == 1);
    CHECK(t.presence_events_sent == 1);
}

TEST_CASE("presence: past max_presence_members users, no events and no list, counts only",
          "[pubsub][presence]") {
    cluster c(2, presence_config(2));
    const std::string room = homed_on(0, 2);
    session watcher;
    c.open(1, 1, watcher, "");
    c.command(1, 1, watcher, command_text("subscribe", room, 1));
    session users[3];
    const char* names[] = {"u1", "u2", "u3"};
    for (uint32_t i = 0; i < 3; ++i) {
        c.open(i % 2, 10 + i, users[i], names[i]);
        c.command(i % 2, 10 + i, users[i], command_text("subscribe", room, 1));
    }
    // u3 made the third user: not announced.
    CHECK(events_to(c, 1, 1) ==
          std::vector<std::string>{event("join", room, "u1"), event("join", room, "u2")});
    c.command(1, 1, watcher, command_text("presence", room, 2));
    CHECK(reply_to(c, 1, 1, 2) ==
          R"({"op":"reply","id":2,"ok":true,"channel":")" + room +
              R"(","users":3,"connections":4,"anonymous":1,"listed":false})");
    CHECK(c.total().presence_events_suppressed == 1);
    // u2 leaves while there are three: not announced either; then u1 leaves from two: sent.
    c.close(1, 11, users[1]);
    c.close(0, 10, users[0]);
    CHECK(events_to(c, 1, 1) == std::vector<std::string>{event("join", room, "u1"),
                                                         event("join", room, "u2"),
                                                         event("leave", room, "u1")});
    CHECK(c.total().presence_events_suppressed == 2);
    c.command(1, 1, watcher, command_text("presence", room, 3));
    CHECK(
        reply_to(c, 1, 1, 3) ==
        R"({"op":"reply","id":3,"ok":true,"channel":")" + room +
            R"(","users":1,"connections":2,"anonymous":1,"members":[{"userId":"u3","connections":1}]})");
}

TEST_CASE("presence: unsubscribe, close and a refresh that revokes the channel all send the "
          "leave",
          "[pubsub][presence]") {
    auth::key_set keys;
    REQUIRE(keys.add_secret(auth::test::keys().secret));
    auth::verifier tokens(keys, auth::verify_options{});
    config cfg = presence_config();
    auto table = std::make_shared<auth::namespace_table>();
    auto rule = auth::parse_namespace_rule("room:private,presence");
    REQUIRE(rule);
    REQUIRE(table->add(std::move(*rule)));
    cfg.namespaces = table;
    cluster c(2, cfg, &tokens);
    const std::string room = homed_on(1, 2);
    const auto now_s = static_cast<int64_t>(std::time(nullptr));
    const auto who = [&](std::string user) {
        auth::identity id;
        id.user_id = std::move(user);
        id.channels = {room};
        id.expires_at_s = now_s + 600;
        return id;
    };
    session watcher;
    c.engines[1]->open_session(handle(1), watcher, who("watcher"));
    c.pump();
    c.command(1, 1, watcher, command_text("subscribe", room, 1));
    session by_unsubscribe;
    session by_close;
    session by_refresh;
    c.engines[0]->open_session(handle(2), by_unsubscribe, who("un"));
    c.engines[0]->open_session(handle(3), by_close, who("cl"));
    c.engines[0]->open_session(handle(4), by_refresh, who("re"));
    c.pump();
    c.command(0, 2, by_unsubscribe, command_text("subscribe", room, 1));
    c.command(0, 3, by_close, command_text("subscribe", room, 1));
    c.command(0, 4, by_refresh, command_text("subscribe", room, 1));
    c.command(0, 2, by_unsubscribe, command_text("unsubscribe", room, 2));
    c.close(0, 3, by_close);
    const std::string fresh = auth::test::sign_token(
        "HS256", R"({"alg":"HS256","typ":"JWT"})",
        R"({"sub":"re","exp":)" + std::to_string(now_s + 900) + R"(,"channels":[]})", nullptr,
        auth::test::keys().secret);
    c.command(0, 4, by_refresh, R"({"op":"refresh","token":")" + fresh + R"(","id":2})");
    CHECK(events_to(c, 1, 1) ==
          std::vector<std::string>{event("join", room, "watcher"), event("join", room, "un"),
                                   event("join", room, "cl"), event("join", room, "re"),
                                   event("leave", room, "un"), event("leave", room, "cl"),
                                   event("leave", room, "re")});
    c.command(1, 1, watcher, command_text("presence", room, 2));
    CHECK(
        reply_to(c, 1, 1, 2) ==
        R"({"op":"reply","id":2,"ok":true,"channel":")" + room +
            R"(","users":1,"connections":1,"anonymous":0,"members":[{"userId":"watcher","connections":1}]})");
    // The revoked connection may not ask any more either.
    c.command(0, 4, by_refresh, command_text("presence", room, 3));
    CHECK(
        reply_to(c, 0, 4, 3) ==
        R"({"op":"reply","id":3,"ok":false,"error":{"code":403,"message":"channel not granted by token"}})");
}

TEST_CASE("presence: a namespace not marked presence costs no mesh message and answers 400",
          "[pubsub][presence]") {
    cluster c(2, presence_config());
    session s;
    c.open(0, 1, s, "ann");
    const std::size_t members_before = c.total().presence_joins;
    c.engines[0]->on_text(handle(1), s, command_text("subscribe", "plain:x", 1));
    for (std::size_t i = 0; i < c.ios[0]->posts.size(); ++i) {
        CHECK(c.ios[0]->post_of<kinds::member>(i) == nullptr);
    }
    c.pump();
    CHECK(c.total().presence_joins == members_before);
    CHECK(c.total().presence_channels == 0);
    c.command(0, 1, s, command_text("presence", "plain:x", 2));
    CHECK(
        reply_to(c, 0, 1, 2) ==
        R"({"op":"reply","id":2,"ok":false,"error":{"code":400,"message":"presence is off for this channel's namespace"}})");
    c.command(0, 1, s, command_text("presence", "user:bob", 3));
    CHECK(
        reply_to(c, 0, 1, 3) ==
        R"({"op":"reply","id":3,"ok":false,"error":{"code":403,"message":"another user's channel"}})");
    // Nobody in a presence channel: an empty list.
    const std::string room = homed_on(1, 2);
    c.command(0, 1, s, command_text("presence", room, 4));
    CHECK(reply_to(c, 0, 1, 4) == R"({"op":"reply","id":4,"ok":true,"channel":")" + room +
                                      R"(","users":0,"connections":0,"anonymous":0,"members":[]})");
}

TEST_CASE("presence: a command after a presence command waits for its answer",
          "[pubsub][presence]") {
    cluster c(2, presence_config());
    session s;
    c.open(0, 1, s, "");
    const std::string room = homed_on(1, 2);
    c.engines[0]->on_text(handle(1), s, command_text("presence", room, 1));
    c.engines[0]->on_text(handle(1), s, R"({"op":"ping","id":2})");
    CHECK(texts_to(*c.ios[0], 1).empty()); // the ping waits behind the round trip
    c.pump();
    const auto texts = texts_to(*c.ios[0], 1);
    REQUIRE(texts.size() == 2);
    CHECK(texts[0].starts_with(R"({"op":"reply","id":1,"ok":true,"channel":")"));
    CHECK(texts[1] == R"({"op":"reply","id":2,"ok":true})");
}

TEST_CASE("channel_presence: connections per user, anonymous, and what a delta did",
          "[pubsub][presence]") {
    channel_presence p;
    CHECK(apply_member(p, "a", member_change::joined) == user_transition::joined);
    CHECK(apply_member(p, "a", member_change::joined) == user_transition::none);
    CHECK(apply_member(p, "", member_change::joined) == user_transition::none);
    CHECK(apply_member(p, "b", member_change::joined) == user_transition::joined);
    CHECK(p.connections == 4);
    CHECK(p.anonymous == 1);
    const presence_page page = presence_page_of(&p, presence_detail::members, 2);
    CHECK(page.listed);
    CHECK(page.members == std::vector<std::pair<std::string, uint32_t>>{{"a", 2}, {"b", 1}});
    CHECK_FALSE(presence_page_of(&p, presence_detail::members, 1).listed);
    CHECK(presence_page_of(&p, presence_detail::counts, 2).members.empty());
    CHECK(apply_member(p, "a", member_change::left) == user_transition::none);
    CHECK(apply_member(p, "a", member_change::left) == user_transition::left);
    // A leave it does not hold changes nothing.
    CHECK(apply_member(p, "a", member_change::left) == user_transition::none);
    CHECK(apply_member(p, "", member_change::left) == user_transition::none);
    CHECK(apply_member(p, "", member_change::left) == user_transition::none);
    CHECK(p.connections == 1);
    CHECK(p.anonymous == 0);
    CHECK(p.users.size() == 1);
}

namespace {

/// A broker that records what the engine asks of it and answers only when the test says
/// (broker_events through `events`): the engine's side of presence across nodes alone.
struct recording_broker final : broker {
    broker_events* events = nullptr;
    bool is_up = true;
    bool can_read = true;
    std::vector<std::string> log; // "set C U N", "replace C U=N ...", "read C"
    std::vector<uint64_t> reads;  // read_presence tokens, in order

    void set_events(broker_events* e) noexcept override { events = e; }
    void publish(const broker_message&, const channel_policy&, uint64_t token) noexcept override {
        events->on_ordered(token, {}, 0, "not in this test");
    }
    void watch(std::string_view) noexcept override {}
    void unwatch(std::string_view) noexcept override {}
    void read_history(std::string_view, uint64_t, uint64_t, uint64_t token) noexcept override {
        events->on_history(token, false, {}, 0, {});
    }
    void read_range(std::string_view, uint64_t, uint64_t, uint64_t token) noexcept override {
        events->on_range(token, false, {}, 0, 0, {});
    }
    bool up() const noexcept override { return is_up; }
    broker_stats stats() const noexcept override { return {}; }
    void set_user_events(user_count_events*) noexcept override {}
    void claim_user(std::string_view, uint32_t, uint32_t, uint64_t) noexcept override {}
    void count_user(std::string_view, uint32_t) noexcept override {}
    void set_member(std::string_view channel, std::string_view user,
                    uint64_t connections) noexcept override {
        log.push_back("set " + std::string(channel) + " " + std::string(user) + " " +
                      std::to_string(connections));
    }
    void replace_members(std::string_view channel,
                         std::span<const std::pair<std::string, uint32_t>> members) noexcept override {
        std::vector<std::pair<std::string, uint32_t>> sorted(members.begin(), members.end());
        std::sort(sorted.begin(), sorted.end());
        std::string line = "replace " + std::string(channel);
        for (const auto& [user, n] : sorted) {
            line += " " + user + "=" + std::to_string(n);
        }
        log.push_back(line);
    }
    void broadcast(std::string_view, priority) noexcept override {}
    bool read_presence(std::string_view channel, uint32_t, uint64_t token) noexcept override {
        if (!can_read) {
            return false;
        }
        reads.push_back(token);
        log.push_back("read " + std::string(channel));
        return true;
    }
};

} // namespace

TEST_CASE("presence with a broker: entries written per change, events only from the broker "
          "while it is up, queries answered by it, everything written again when it is back",
          "[pubsub][presence]") {
    fake_io io(0, 1);
    recording_broker b;
    engine e(io, presence_config(), nullptr, &b);
    const std::string room = homed_on(0, 1);
    session w;
    session a1;
    session a2;
    e.open_session(handle(1), w, "");
    e.open_session(handle(2), a1, "ann");
    e.open_session(handle(3), a2, "ann");
    b.events->on_point("user:ann", "e0", 0); // her own channel, subscribed on open
    e.on_text(handle(1), w, command_text("subscribe", room, 1));
    b.events->on_point(room, "e1", 0); // the broker's point confirms the subscribe
    // The channel's first member here writes all of this node's entries; the rest one each.
    e.on_text(handle(2), a1, command_text("subscribe", room, 1));
    e.on_text(handle(3), a2, command_text("subscribe", room, 1));
    CHECK(b.log == std::vector<std::string>{"replace " + room + " =1", "set " + room + " ann 1",
                                            "set " + room + " ann 2"});
    // Up: no event of its own; the broker's comes back once for every node.
    CHECK(events_to_io(io, 1).empty());
    b.events->on_presence(room, "ann", true, 1);
    CHECK(events_to_io(io, 1) == std::vector<std::string>{event("join", room, "ann")});

    // The presence command waits for the broker's page (every node's members).
    b.log.clear();
    e.on_text(handle(1), w, command_text("presence", room, 2));
    REQUIRE(b.reads.size() == 1);
    e.on_text(handle(1), w, R"({"op":"ping","id":3})"); // waits behind it
    presence_page page;
    page.users = 2;
    page.connections = 5;
    page.anonymous = 1;
    page.members = {{"ann", 2}, {"bob", 2}};
    b.events->on_presence_page(b.reads[0], true, page);
    auto texts = texts_to(io, 1);
    REQUIRE(texts.size() >= 2);
    CHECK(texts[texts.size() - 2] ==
          R"({"op":"reply","id":2,"ok":true,"channel":")" + room +
              R"(","users":2,"connections":5,"anonymous":1,"members":[{"userId":"ann","connections":2},{"userId":"bob","connections":2}]})");
    CHECK(texts.back() == R"({"op":"reply","id":3,"ok":true})");
    // A read the broker could not finish (its connection went): this node's members.
    e.on_text(handle(1), w, command_text("presence", room, 4));
    REQUIRE(b.reads.size() == 2);
    b.events->on_presence_page(b.reads[1], false, {});
    CHECK(reply_to_io(io, 1, 4) ==
          R"({"op":"reply","id":4,"ok":true,"channel":")" + room +
              R"(","users":1,"connections":3,"anonymous":1,"members":[{"userId":"ann","connections":2}]})");
    // One that cannot be asked at all (down): answered at once, the same way.
    b.can_read = false;
    e.on_text(handle(1), w, command_text("presence", room, 5));
    CHECK(reply_to_io(io, 1, 5).find(R"("users":1,"connections":3)") != std::string::npos);

    // Back up after an outage: every presence channel's entries written again.
    b.log.clear();
    b.events->on_members_lost();
    CHECK(b.log == std::vector<std::string>{"replace " + room + " =1 ann=2"});

    // Down: a change is still written (the broker drops it and counts it) and announced
    // here, by this node, as one node does.
    b.is_up = false;
    b.log.clear();
    e.close_session(handle(2), a1);
    e.close_session(handle(3), a2);
    CHECK(b.log == std::vector<std::string>{"set " + room + " ann 1", "set " + room + " ann 0"});
    CHECK(events_to_io(io, 1) ==
          std::vector<std::string>{event("join", room, "ann"), event("leave", room, "ann")});
    // The last member here rewrites the node's entries: none.
    b.log.clear();
    e.close_session(handle(1), w);
    CHECK(b.log == std::vector<std::string>{"replace " + room});
}
