// The pubsub engine facade (include/ringcast/pubsub.h) on a fake conn_io: its parts wired
// together — a subscribe answered with its subscription point, a publish ordered and
// delivered, replies in command order across a home shard's round trip, and the interest
// lost when the last subscriber leaves. Other shards are played by handing the engine the
// mesh messages they would send.
#include "engine_types.h"
#include "fake_io.h"
#include "shown.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

using namespace ringcast;
using namespace ringcast::pubsub;
using testing::fake_io;
using testing::api_origin;
using testing::frame_text;
using testing::homed_on;
using testing::handle;
using testing::texts_to;
using testing::shown;

namespace {

struct recording_listener final : publish_listener {
    std::vector<uint64_t> offsets;
    void on_published(const publish_origin&, uint64_t offset,
                      std::string_view) noexcept override {
        offsets.push_back(offset);
    }
};


} // namespace

TEST_CASE("engine on one shard: subscribe, publish, deliver, unsubscribe", "[pubsub][engine]") {
    fake_io io;
    engine e(io, config{});
    recording_listener listener;
    e.set_listener(&listener);
    session s;
    e.open_session(handle(1), s, "");

    e.on_text(handle(1), s, R"({"op":"subscribe","channel":"news","id":1})");
    auto texts = texts_to(io, 1);
    REQUIRE(texts.size() == 1);
    INFO(shown(texts[0]));
    CHECK(texts[0].starts_with(R"({"op":"reply","id":1,"ok":true,"channel":"news","epoch":")"));
    CHECK(texts[0].ends_with(R"(","offset":0})"));

    publish_request req;
    req.data = R"({"n":1})";
    e.publish(req, "news", api_origin());
    e.publish(req, "news", api_origin());
    CHECK(listener.offsets == std::vector<uint64_t>{1, 2});
    texts = texts_to(io, 1);
    REQUIRE(texts.size() == 3);
    CHECK(texts[1].find(R"("channel":"news","data":{"n":1})") != std::string::npos);
    CHECK(texts[1].ends_with(R"("offset":1})"));
    CHECK(texts[2].ends_with(R"("offset":2})"));

    const counters c = e.stats();
    CHECK(c.sessions == 1);
    CHECK(c.subscriptions == 1);
    CHECK(c.local_channels == 1);
    CHECK(c.home_channels == 1);
    CHECK(c.messages_in == 2);
    CHECK(c.messages_out == 2);
    CHECK(c.commands == 1);
    CHECK(e.local_channels() == std::vector<std::pair<std::string, uint32_t>>{{"news", 1}});

    e.on_text(handle(1), s, R"({"op":"unsubscribe","channel":"news","id":2})");
    texts = texts_to(io, 1);
    REQUIRE(texts.size() == 4);
    CHECK(texts[3] == R"({"op":"reply","id":2,"ok":true})");
    CHECK(e.stats().local_channels == 0);
    CHECK(e.stats().subscriptions == 0);
    uint64_t offset = 0;
    std::string epoch;
    REQUIRE(e.home_info("news", offset, epoch)); // idle now, but remembered
    CHECK(offset == 2);
    e.close_session(handle(1), s);
    CHECK(e.stats().sessions == 0);
}

TEST_CASE("engine answers a later subscriber with the last offset delivered on its shard",
          "[pubsub][engine]") {
    fake_io io;
    engine e(io, config{});
    session first;
    session second;
    e.open_session(handle(1), first, "");
    e.open_session(handle(2), second, "");
    e.on_text(handle(1), first, R"({"op":"subscribe","channel":"news"})");
    publish_request req;
    for (int i = 0; i < 3; ++i) {
        e.publish(req, "news", api_origin());
    }
    e.on_text(handle(2), second, R"({"op":"subscribe","channel":"news","id":9})");
    const auto texts = texts_to(io, 2);
    REQUIRE(texts.size() == 1);
    INFO(shown(texts[0]));
    CHECK(texts[0].ends_with(R"(","offset":3})"));
}

TEST_CASE("engine holds a connection's later commands until its subscribe's home shard "
          "answers, and replies in command order",
          "[pubsub][engine]") {
    fake_io io(0, 2);
    engine e(io, config{});
    session s;
    e.open_session(handle(1), s, "");
    const std::string remote = homed_on(1, 2);

    e.on_text(handle(1), s, R"({"op":"subscribe","channel":")" + remote + R"(","id":1})");
    e.on_text(handle(1), s, R"({"op":"ping","id":2})");
    CHECK(texts_to(io, 1).empty()); // both wait for the home shard
    REQUIRE(io.posts.size() == 1);
    const interest_msg* asked = io.post_of<kinds::interest>(0);
    REQUIRE(asked != nullptr);
    CHECK(io.posts[0].to == shard_id(1));
    CHECK(asked->channel == remote);
    CHECK(asked->gained);
    CHECK(e.stats().commands_waited == 1);

    // Shard 1 answers: the subscription starts after offset 5 of epoch "ep".
    e.on_mesh(
        kinds::confirmed{}, shard_id(1),
        std::make_unique<interest_msg>(interest_msg{remote, "ep", 5, asked->generation, true}));
    const auto texts = texts_to(io, 1);
    REQUIRE(texts.size() == 2);
    INFO(shown(texts[0]));
    CHECK(texts[0] == R"({"op":"reply","id":1,"ok":true,"channel":")" + remote +
                          R"(","epoch":"ep","offset":5})");
    CHECK(texts[1] == R"({"op":"reply","id":2,"ok":true})");

    // Shard 1 delivers the next message; the subscriber gets that very frame.
    const auto frame = core::make_frame(std::string_view("\x81\x01x"));
    e.on_mesh(kinds::deliver{}, shard_id(1),
              std::make_unique<delivery>(delivery{frame, remote, priority::normal, 6}));
    REQUIRE(io.sends.size() == 3);
    CHECK(io.sends[2].f.get() == frame.get());

    // The last local subscriber leaves: shard 1 is told.
    e.close_session(handle(1), s);
    REQUIRE(io.posts.size() == 2);
    const interest_msg* lost = io.post_of<kinds::interest>(1);
    REQUIRE(lost != nullptr);
    CHECK(lost->channel == remote);
    CHECK_FALSE(lost->gained);
    CHECK(lost->generation == asked->generation);
}

TEST_CASE("engine as a home shard orders another shard's publish and fans it out",
          "[pubsub][engine]") {
    fake_io io(0, 2);
    engine e(io, config{});
    const std::string local = homed_on(0, 2);

    // Shard 1 gains interest: confirmed at (epoch, 0).
    e.on_mesh(kinds::interest{}, shard_id(1),
              std::make_unique<interest_msg>(interest_msg{local, {}, 0, 7, true}));
    REQUIRE(io.posts.size() == 1);
    const interest_msg* confirmed = io.post_of<kinds::confirmed>(0);
    REQUIRE(confirmed != nullptr);
    CHECK(confirmed->generation == 7);
    CHECK(confirmed->offset == 0);

    // Shard 1 publishes: ordered here, delivered to shard 1, answered to shard 1.
    auto job = std::make_unique<publish_job>(publish_job{local, "message",
                                                         core::make_frame(std::string_view("1")),
                                                         "", priority::normal, api_origin(), 0});
    e.on_mesh(kinds::publish{}, shard_id(1), std::move(job));
    REQUIRE(io.posts.size() == 3);
    const delivery* d = io.post_of<kinds::deliver>(1);
    REQUIRE(d != nullptr);
    CHECK(d->offset == 1);
    CHECK(frame_text(d->frame).ends_with(R"("offset":1})"));
    const publish_job* answered = io.post_of<kinds::published>(2);
    REQUIRE(answered != nullptr);
    CHECK(answered->offset == 1);
    uint64_t offset = 0;
    std::string epoch;
    REQUIRE(e.home_info(local, offset, epoch));
    CHECK(offset == 1);
    CHECK(epoch == confirmed->epoch);
}
