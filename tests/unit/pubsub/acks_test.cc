// Acknowledged delivery (src/pubsub/acks.h, acks.cc): the per-connection window on its own,
// then through the engine facade on a fake conn_io — the resend once after the timeout,
// the ack command, the bounds, and the user: channel's replay of what was never
// acknowledged.
#include "acks.h"
#include "engine_types.h"
#include "fake_io.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace ringcast;
using namespace ringcast::pubsub;
using testing::api_origin;
using testing::fake_io;
using testing::handle;
using testing::texts_to;

namespace {

core::frame_ref bytes(std::size_t n) {
    return core::make_frame(n);
}

/// "room:" channels take acks and keep 100 messages.
config with_acks(uint32_t timeout_ms = 500) {
    config cfg;
    cfg.channels.by_namespace = {{"room", channel_policy{100, 0, false, true}},
                                 {"plain", channel_policy{100, 0, false, false}}};
    cfg.ack_timeout_ms = timeout_ms;
    return cfg;
}

void publish(engine& e, const std::string& channel, const std::string& data,
             priority prio = priority::normal) {
    publish_request req;
    req.data = data;
    req.prio = prio;
    e.publish(req, channel, api_origin());
}

/// The data of every message (not reply) `io` sent to `slot`, in order.
std::vector<std::string> data_to(const fake_io& io, uint32_t slot) {
    std::vector<std::string> out;
    for (const std::string& t : texts_to(io, slot)) {
        const std::size_t at = t.find("\"data\":");
        if (t.starts_with("{\"op\":\"reply\"") || at == std::string::npos) {
            continue;
        }
        out.push_back(t.substr(at + 7, t.find(',', at) - at - 7));
    }
    return out;
}

std::size_t timers_of(const fake_io& io, core::conn_timer which) {
    std::size_t n = 0;
    for (const auto& t : io.timers) {
        n += t.which == which ? 1 : 0;
    }
    return n;
}

} // namespace

TEST_CASE("ack_window: cumulative acks per channel, one resend each, in order",
          "[pubsub][acks]") {
    ack_window w;
    CHECK(w.track(7, 1, bytes(10), 100)); // no timer yet: arm one
    CHECK_FALSE(w.track(8, 1, bytes(20), 100));
    CHECK_FALSE(w.track(7, 2, bytes(30), 150));
    CHECK_FALSE(w.track(7, 3, bytes(40), 200));
    CHECK(w.size() == 4);
    CHECK(w.bytes() == 100);

    std::vector<std::size_t> resent;
    const auto record = [&](const core::frame_ref& f) { resent.push_back(f->size()); };
    ack_window::resent r = w.resend_due(99, record);
    CHECK(r.count == 0);
    CHECK(r.next_due == 100);
    r = w.resend_due(150, record);
    CHECK(r.count == 3);
    CHECK(r.next_due == 200);
    CHECK(resent == std::vector<std::size_t>{10, 30, 20}); // channel by channel, in order
    // Resent once: a later pass sends only what was not resent yet.
    r = w.resend_due(1000, record);
    CHECK(r.count == 1);
    CHECK(resent.back() == 40);
    CHECK(r.next_due == 0); // nothing left to resend: the timer stays off
    CHECK(w.track(9, 1, bytes(1), 1000)); // so the next message arms it again
    CHECK(w.forget(9) == 1);

    const ack_window::acked a = w.acknowledge(7, 2);
    CHECK(a.count == 2);
    CHECK(a.through == 2);
    CHECK(w.size() == 2);
    CHECK(w.bytes() == 60);
    CHECK(w.acknowledge(7, 2).count == 0); // again: nothing left to confirm
    CHECK(w.acknowledge(5, 100).count == 0); // a channel with nothing waiting
    CHECK(w.forget(8) == 1);
    CHECK(w.acknowledge(7, 1000).through == 3);
    CHECK(w.empty());
    CHECK(w.bytes() == 0);
}

TEST_CASE("ack_window: acks before the resend point keep the rest due", "[pubsub][acks]") {
    ack_window w;
    for (uint64_t off = 1; off <= 4; ++off) {
        w.track(1, off, bytes(1), 100 * off);
    }
    int sent = 0;
    const auto count = [&](const core::frame_ref&) { ++sent; };
    CHECK(w.resend_due(200, count).next_due == 300); // 1 and 2 resent
    CHECK(sent == 2);
    w.acknowledge(1, 1); // one of the resent ones goes
    ack_window::resent r = w.resend_due(300, count);
    CHECK(r.count == 1);
    CHECK(sent == 3);
    CHECK(r.next_due == 400);
    w.acknowledge(1, 3); // past the resend point: the next one is still due
    r = w.resend_due(400, count);
    CHECK(r.count == 1);
    CHECK(r.next_due == 0);
    CHECK(w.forget(1) == 1);
    CHECK(w.empty());
}

TEST_CASE("ack_window: a long stream acked as it goes keeps a small lane", "[pubsub][acks]") {
    ack_window w;
    std::size_t acked = 0;
    for (uint64_t off = 1; off <= 100000; ++off) {
        w.track(1, off, bytes(8), off);
        if (off % 10 == 0) {
            acked += w.acknowledge(1, off).count;
        }
    }
    CHECK(acked == 100000);
    CHECK(w.empty());
    CHECK(w.bytes() == 0);
    // A message sent out of offset order waits for an ack covering its predecessors.
    w.track(2, 5, bytes(1), 1);
    w.track(2, 3, bytes(1), 1);
    CHECK(w.acknowledge(2, 4).count == 0);
    CHECK(w.acknowledge(2, 5).count == 2);
}

TEST_CASE("acks: an unacknowledged message is sent again once after the timeout",
          "[pubsub][acks]") {
    fake_io io(0, 1);
    engine e(io, with_acks(500));
    session s;
    e.open_session(handle(1), s, "");
    e.on_text(handle(1), s, R"({"op":"subscribe","channel":"room:1","id":1})");
    publish(e, "room:1", "1");
    publish(e, "room:1", "2");
    CHECK(data_to(io, 1) == std::vector<std::string>{"1", "2"});
    REQUIRE(timers_of(io, core::conn_timer::acks) == 1);
    CHECK(io.timers.back().deadline_ms == io.now + 500);
    CHECK(e.stats().ack_pending == 2);

    e.on_text(handle(1), s, R"({"op":"ack","channel":"room:1","offset":1,"id":2})");
    CHECK(texts_to(io, 1).back() == R"({"op":"reply","id":2,"ok":true,"acked":1})");
    io.now += 500;
    e.on_ack_timer(handle(1), s);
    CHECK(data_to(io, 1) == std::vector<std::string>{"1", "2", "2"});
    io.now += 5000;
    e.on_ack_timer(handle(1), s);
    CHECK(data_to(io, 1) == std::vector<std::string>{"1", "2", "2"}); // once only
    CHECK(e.stats().ack_resent == 1);

    // Acks without an id answer nothing; errors always answer.
    const std::size_t before = texts_to(io, 1).size();
    e.on_text(handle(1), s, R"({"op":"ack","channel":"room:1","offset":2})");
    CHECK(texts_to(io, 1).size() == before);
    CHECK(e.stats().ack_pending == 0);
    CHECK(e.stats().acked == 2);
    e.on_text(handle(1), s, R"({"op":"ack","channel":"room:2","offset":2})");
    CHECK(texts_to(io, 1).back().find("\"code\":404") != std::string::npos);
    e.on_text(handle(1), s, R"({"op":"subscribe","channel":"plain:1","id":3})");
    e.on_text(handle(1), s, R"({"op":"ack","channel":"plain:1","offset":2,"id":4})");
    CHECK(texts_to(io, 1).back().find("acks are off") != std::string::npos);
    // A plain channel's messages wait for nothing.
    publish(e, "plain:1", "3");
    CHECK(e.stats().ack_pending == 0);
    e.close_session(handle(1), s);
}

TEST_CASE("acks: unsubscribing and closing release what was owed", "[pubsub][acks]") {
    fake_io io(0, 1);
    engine e(io, with_acks());
    session s;
    e.open_session(handle(1), s, "");
    e.on_text(handle(1), s, R"({"op":"subscribe","channel":"room:1","id":1})");
    e.on_text(handle(1), s, R"({"op":"subscribe","channel":"room:2","id":2})");
    publish(e, "room:1", "1");
    publish(e, "room:2", "2");
    CHECK(e.stats().ack_pending == 2);
    e.on_text(handle(1), s, R"({"op":"unsubscribe","channel":"room:1","id":3})");
    CHECK(e.stats().ack_pending == 1);
    io.now += 10000;
    e.on_ack_timer(handle(1), s);
    CHECK(data_to(io, 1) == std::vector<std::string>{"1", "2", "2"}); // room:1's is not owed
    e.close_session(handle(1), s);
    CHECK(e.stats().ack_pending == 0);
}

TEST_CASE("acks: a window past the slow-consumer bytes closes the connection 1008",
          "[pubsub][acks]") {
    fake_io io(0, 1);
    config cfg = with_acks();
    cfg.slow_consumer_bytes = 1000;
    engine e(io, cfg);
    session s;
    e.open_session(handle(1), s, "");
    e.on_text(handle(1), s, R"({"op":"subscribe","channel":"room:1","id":1})");
    const std::string blob = "\"" + std::string(200, 'x') + "\"";
    publish(e, "room:1", blob);
    const std::size_t frame = io.sends.back().f->size();
    const std::size_t fit = 1000 / frame; // frames the window holds at most
    REQUIRE(fit >= 2);
    for (std::size_t i = 1; i < fit; ++i) {
        publish(e, "room:1", blob);
    }
    CHECK(io.closes.empty()); // at the bound, not past it
    publish(e, "room:1", blob);
    REQUIRE(io.closes.size() == 1);
    CHECK(texts_to(io, 1).back().find("too many unacknowledged messages") != std::string::npos);
    CHECK(e.stats().ack_closes == 1);
    const std::size_t sent = io.sends.size();
    publish(e, "room:1", blob); // closing: nothing more
    CHECK(io.sends.size() == sent);
    e.close_session(handle(1), s);
}

TEST_CASE("acks: a window past max_unacked_messages closes the connection", "[pubsub][acks]") {
    fake_io io(0, 1);
    engine e(io, with_acks());
    session s;
    e.open_session(handle(1), s, "");
    e.on_text(handle(1), s, R"({"op":"subscribe","channel":"room:1","id":1})");
    for (std::size_t i = 0; i < max_unacked_messages; ++i) {
        publish(e, "room:1", "0");
    }
    CHECK(io.closes.empty());
    publish(e, "room:1", "0");
    CHECK(io.closes.size() == 1);
    e.close_session(handle(1), s);
}

TEST_CASE("acks: a user's critical messages are replayed to its next connection until acked",
          "[pubsub][acks]") {
    fake_io io(0, 1);
    config cfg; // offline messages on by default: user: channels keep history
    engine e(io, cfg);
    session first;
    e.open_session(handle(1), first, "ann");
    publish(e, "user:ann", "1", priority::critical);
    publish(e, "user:ann", "2", priority::normal);
    publish(e, "user:ann", "3", priority::critical);
    publish(e, "user:ann", "4", priority::critical);
    CHECK(data_to(io, 1) == std::vector<std::string>{"1", "2", "3", "4"});
    CHECK(e.stats().ack_pending == 3); // the critical ones
    e.on_text(handle(1), first, R"({"op":"ack","channel":"user:ann","offset":3})");
    e.close_session(handle(1), first);

    session second;
    e.open_session(handle(2), second, "ann");
    CHECK(data_to(io, 2) == std::vector<std::string>{"4"});
    CHECK(e.stats().ack_replayed == 1);
    e.on_text(handle(2), second, R"({"op":"ack","channel":"user:ann","offset":4})");
    e.close_session(handle(2), second);

    session third;
    e.open_session(handle(3), third, "ann");
    CHECK(data_to(io, 3).empty());
    // An ack of offsets not delivered yet confirms only what the window held.
    publish(e, "user:ann", "5", priority::critical);
    e.on_text(handle(3), third, R"({"op":"ack","channel":"user:ann","offset":99})");
    publish(e, "user:ann", "6", priority::critical);
    e.close_session(handle(3), third);
    session fourth;
    e.open_session(handle(4), fourth, "ann");
    CHECK(data_to(io, 4) == std::vector<std::string>{"6"});
    e.close_session(handle(4), fourth);
}

TEST_CASE("acks: a user's home on another shard learns the ack", "[pubsub][acks]") {
    fake_io io(0, 2);
    engine e(io, config{});
    const std::string user = home_shard("user:bob", 2) == 1 ? "bob" : [] {
        for (int i = 0;; ++i) {
            std::string u = "bob" + std::to_string(i);
            if (home_shard("user:" + u, 2) == 1) {
                return u;
            }
        }
    }();
    session s;
    e.open_session(handle(1), s, user);
    const interest_msg* asked = io.post_of<kinds::interest>(0);
    REQUIRE(asked != nullptr);
    e.on_mesh(kinds::confirmed{}, shard_id(1),
              std::make_unique<interest_msg>(
                  interest_msg{"user:" + user, "ep", 0, asked->generation, true}));
    // The home delivers a critical message that needs an ack.
    e.on_mesh(kinds::deliver{}, shard_id(1),
              std::make_unique<delivery>(delivery{core::make_frame(4), "user:" + user,
                                                  priority::critical, 1, true}));
    const std::size_t posts = io.posts.size();
    e.on_text(handle(1), s, R"({"op":"ack","channel":"user:)" + user + R"(","offset":1})");
    REQUIRE(io.posts.size() == posts + 1);
    const ack_msg* told = io.post_of<kinds::acked>(posts);
    REQUIRE(told != nullptr);
    CHECK(io.posts.back().to == shard_id(1));
    CHECK(told->channel == "user:" + user);
    CHECK(told->offset == 1);
    // Acking again confirms nothing new: the home is not told twice.
    e.on_text(handle(1), s, R"({"op":"ack","channel":"user:)" + user + R"(","offset":1})");
    CHECK(io.posts.size() == posts + 1);
    e.close_session(handle(1), s);
}

TEST_CASE("offline hand-off: the home sends another shard the confirmation, then what the user "
          "has not confirmed, in order",
          "[pubsub][acks][offline]") {
    fake_io io(0, 2);
    engine e(io, config{});
    std::string user;
    for (int i = 0; user.empty(); ++i) {
        if (home_shard("user:u" + std::to_string(i), 2) == 0) {
            user = "u" + std::to_string(i);
        }
    }
    const std::string channel = "user:" + user;
    publish(e, channel, "1", priority::normal);
    publish(e, channel, "2", priority::critical);
    CHECK(io.posts.empty()); // nobody interested: kept, not sent

    // The user's first connection is on shard 1: its interest reaches the home (here).
    e.on_mesh(kinds::interest{}, shard_id(1),
              std::make_unique<interest_msg>(interest_msg{channel, {}, 0, 7, true}));
    REQUIRE(io.posts.size() == 3);
    const interest_msg* confirmed = io.post_of<kinds::confirmed>(0);
    REQUIRE(confirmed != nullptr);
    CHECK(confirmed->generation == 7);
    CHECK(confirmed->offset == 2);
    for (std::size_t i = 1; i <= 2; ++i) {
        const delivery* d = io.post_of<kinds::deliver>(i);
        REQUIRE(d != nullptr);
        CHECK(io.posts[i].to == shard_id(1));
        CHECK(d->channel == channel);
        CHECK(d->offset == i);
        CHECK(d->ack == (i == 2)); // only the critical one waits for an ack
        CHECK(testing::frame_text(d->frame).find("\"data\":" + std::to_string(i)) !=
              std::string::npos);
    }
    CHECK(e.stats().offline_delivered == 2);

    // Shard 1 loses the user, who never acknowledged: the critical one comes again, alone.
    e.on_mesh(kinds::interest{}, shard_id(1),
              std::make_unique<interest_msg>(interest_msg{channel, {}, 0, 7, false}));
    e.on_mesh(kinds::interest{}, shard_id(1),
              std::make_unique<interest_msg>(interest_msg{channel, {}, 0, 8, true}));
    REQUIRE(io.posts.size() == 5);
    const delivery* again = io.post_of<kinds::deliver>(4);
    REQUIRE(again != nullptr);
    CHECK(again->offset == 2);
    CHECK(again->ack);
    CHECK(e.stats().ack_replayed == 1);

    // Acknowledged (the shard tells the home): the next first connection gets nothing.
    e.on_mesh(kinds::acked{}, shard_id(1), std::make_unique<ack_msg>(ack_msg{channel, 2}));
    e.on_mesh(kinds::interest{}, shard_id(1),
              std::make_unique<interest_msg>(interest_msg{channel, {}, 0, 8, false}));
    e.on_mesh(kinds::interest{}, shard_id(1),
              std::make_unique<interest_msg>(interest_msg{channel, {}, 0, 9, true}));
    REQUIRE(io.posts.size() == 6);
    CHECK(io.post_of<kinds::confirmed>(5) != nullptr);
}

TEST_CASE("acks: no resend while the connection's output still waits to be written",
          "[pubsub][acks]") {
    fake_io io(0, 1);
    engine e(io, with_acks(500));
    session s;
    e.open_session(handle(1), s, "");
    e.on_text(handle(1), s, R"({"op":"subscribe","channel":"room:1","id":1})");
    publish(e, "room:1", "1");
    io.queued[1] = 100; // the message may still be in the send queue
    io.now += 500;
    const std::size_t timers = io.timers.size();
    e.on_ack_timer(handle(1), s);
    CHECK(data_to(io, 1) == std::vector<std::string>{"1"}); // no copy behind the original
    REQUIRE(io.timers.size() == timers + 1);
    CHECK(io.timers.back().deadline_ms == io.now + 500); // looked at again a timeout later
    io.queued[1] = 0; // written out, still no ack: now it is sent again
    io.now += 500;
    e.on_ack_timer(handle(1), s);
    CHECK(data_to(io, 1) == std::vector<std::string>{"1", "1"});
    e.close_session(handle(1), s);
}

TEST_CASE("presence: no list for a connection that does not read its replies",
          "[pubsub][presence]") {
    fake_io io(0, 1);
    config cfg;
    cfg.channels.by_namespace = {{"room", channel_policy{0, 0, true, false}}};
    engine e(io, cfg);
    session s;
    e.open_session(handle(1), s, "ann");
    e.on_text(handle(1), s, R"({"op":"subscribe","channel":"room:1","id":1})");
    io.queued[1] = max_presence_backlog_bytes;
    e.on_text(handle(1), s, R"({"op":"presence","channel":"room:1","id":2})");
    CHECK(texts_to(io, 1).back().find("\"code\":429") != std::string::npos);
    CHECK(e.stats().backlog_refused == 1);
    io.queued[1] = 0;
    e.on_text(handle(1), s, R"({"op":"presence","channel":"room:1","id":3})");
    CHECK(texts_to(io, 1).back().find("\"members\":[{\"userId\":\"ann\"") != std::string::npos);
    e.close_session(handle(1), s);
}
