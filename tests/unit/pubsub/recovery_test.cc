// Recovery on subscribe through the engine facade (include/ringcast/pubsub.h, commands.cc
// "recovery") on a fake conn_io: the subscriber's shard holding live messages back until the
// home answers (the seam), and the home's answer in every recovered:false case. The other
// shard is played by handing the engine the mesh messages it would send.
#include "engine_types.h"
#include "fake_io.h"
#include "shown.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <ctime>
#include <memory>
#include <tuple>
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

namespace {

/// History on "room:" channels (homed_on's names).
config with_history(uint32_t count) {
    config cfg;
    cfg.channels.by_namespace = {{"room", channel_policy{count, 0}}};
    return cfg;
}

/// A server text frame carrying `text`, as the home's fan-out would have built it.
core::frame_ref text_frame(const std::string& text) {
    core::frame_ref f = core::make_frame(2 + text.size());
    f->mutable_data()[0] = std::byte{0x81};
    f->mutable_data()[1] = std::byte(text.size());
    std::memcpy(f->mutable_data() + 2, text.data(), text.size());
    return f;
}

std::string subscribe_recover(const std::string& channel, const std::string& epoch,
                              uint64_t offset, int id = 1) {
    return R"({"op":"subscribe","channel":")" + channel + R"(","recover":{"epoch":")" + epoch +
           R"(","offset":)" + std::to_string(offset) + R"(},"id":)" + std::to_string(id) + "}";
}

} // namespace

TEST_CASE("recovery: live messages wait behind the home's answer, no gap or duplicate at the "
          "seam",
          "[pubsub][recovery]") {
    fake_io io(0, 2);
    engine e(io, with_history(100));
    session s;
    e.open_session(handle(1), s, "");
    const std::string remote = homed_on(1, 2);

    e.on_text(handle(1), s, subscribe_recover(remote, "ep", 2));
    e.on_text(handle(1), s, R"({"op":"ping","id":2})");
    REQUIRE(io.posts.size() == 1);
    const interest_msg* asked = io.post_of<kinds::interest>(0);
    REQUIRE(asked != nullptr);
    // The home confirms the subscription point 5; the recovery goes out from there.
    e.on_mesh(
        kinds::confirmed{}, shard_id(1),
        std::make_unique<interest_msg>(interest_msg{remote, "ep", 5, asked->generation, true}));
    REQUIRE(io.posts.size() == 2);
    const recover_msg* req = io.post_of<kinds::recover>(1);
    REQUIRE(req != nullptr);
    CHECK(io.posts[1].to == shard_id(1));
    CHECK(req->channel == remote);
    CHECK(req->epoch == "ep");
    CHECK(req->since == 2);
    CHECK(req->point == 5);
    CHECK(texts_to(io, 1).empty()); // no reply yet, the ping waits too

    // Live messages 6 and 7 arrive before the answer (the home ordered them first): held.
    for (uint64_t off : {6, 7}) {
        e.on_mesh(kinds::deliver{}, shard_id(1),
                  std::make_unique<delivery>(delivery{text_frame("m" + std::to_string(off)),
                                                      remote, priority::normal, off}));
    }
    CHECK(texts_to(io, 1).empty());

    // The home's answer: 3..7 from history.
    auto answer = std::make_unique<recover_msg>(*req);
    answer->recovered = true;
    answer->point = 2;
    answer->offset = 7;
    for (uint64_t off = 3; off <= 7; ++off) {
        answer->frames.push_back(text_frame("m" + std::to_string(off)));
    }
    e.on_mesh(kinds::recovered{}, shard_id(1), std::move(answer));
    // Then 8 comes live.
    e.on_mesh(kinds::deliver{}, shard_id(1),
              std::make_unique<delivery>(delivery{text_frame("m8"), remote, priority::normal, 8}));

    const auto texts = texts_to(io, 1);
    const std::vector<std::string> want = {
        R"({"op":"reply","id":1,"ok":true,"channel":")" + remote +
            R"(","epoch":"ep","offset":2,"recovered":true})",
        "m3", "m4", "m5", "m6", "m7", R"({"op":"reply","id":2,"ok":true})", "m8"};
    CHECK(texts == want);
    CHECK(e.stats().recovered == 1);
    CHECK(e.stats().recovered_messages == 5);
}

TEST_CASE("recovery: a subscriber that closes while the home answers is forgotten",
          "[pubsub][recovery]") {
    fake_io io(0, 2);
    engine e(io, with_history(100));
    auto s = std::make_unique<session>();
    e.open_session(handle(1), *s, "");
    const std::string remote = homed_on(1, 2);
    e.on_text(handle(1), *s, subscribe_recover(remote, "ep", 0));
    const interest_msg* asked = io.post_of<kinds::interest>(0);
    REQUIRE(asked != nullptr);
    e.on_mesh(
        kinds::confirmed{}, shard_id(1),
        std::make_unique<interest_msg>(interest_msg{remote, "ep", 0, asked->generation, true}));
    const recover_msg* req = io.post_of<kinds::recover>(1);
    REQUIRE(req != nullptr);
    auto answer = std::make_unique<recover_msg>(*req);
    e.close_session(handle(1), *s);
    s.reset();
    answer->recovered = true;
    answer->frames.push_back(text_frame("m1"));
    e.on_mesh(kinds::recovered{}, shard_id(1), std::move(answer));
    CHECK(texts_to(io, 1).empty());
}

TEST_CASE("recovery: without history in the namespace, recovered false at once",
          "[pubsub][recovery]") {
    fake_io io(0, 1);
    engine e(io, with_history(100));
    session s;
    e.open_session(handle(1), s, "");
    e.on_text(handle(1), s, R"({"op":"subscribe","channel":"plain:x","recover":{"epoch":"ep","offset":3},"id":1})");
    const auto texts = texts_to(io, 1);
    REQUIRE(texts.size() == 1);
    CHECK(texts[0].ends_with(R"("offset":0,"recovered":false})"));
    CHECK(e.stats().recover_failed == 1);
}

TEST_CASE("recovery on the home shard: the answer for each case", "[pubsub][recovery]") {
    fake_io io(0, 2);
    engine e(io, with_history(4));
    const std::string local = homed_on(0, 2);
    // Shard 1 is interested from offset 0; six messages are published (history keeps 3-6).
    e.on_mesh(kinds::interest{}, shard_id(1),
              std::make_unique<interest_msg>(interest_msg{local, {}, 0, 7, true}));
    const std::string epoch = io.post_of<kinds::confirmed>(0)->epoch;
    publish_request req;
    req.data = "1";
    for (int i = 0; i < 6; ++i) {
        e.publish(req, local, api_origin());
    }
    const auto ask = [&](std::string ep, uint64_t since, uint64_t point) {
        auto m = std::make_unique<recover_msg>();
        m->channel = local;
        m->epoch = std::move(ep);
        m->since = since;
        m->point = point;
        m->conn = handle(9);
        m->token = 3;
        e.on_mesh(kinds::recover{}, shard_id(1), std::move(m));
        const recover_msg* a = io.post_of<kinds::recovered>(io.posts.size() - 1);
        REQUIRE(a != nullptr);
        CHECK(a->conn == handle(9));
        CHECK(a->token == 3);
        CHECK(a->epoch == epoch);
        CHECK(a->offset == 6);
        std::vector<uint64_t> offsets;
        for (const auto& f : a->frames) {
            const std::string t = frame_text(f);
            offsets.push_back(std::stoull(t.substr(t.rfind(':') + 1)));
        }
        return std::make_tuple(a->recovered, a->point, offsets);
    };
    using result = std::tuple<bool, uint64_t, std::vector<uint64_t>>;
    // Everything after 3 is kept: recovered.
    CHECK(ask(epoch, 3, 6) == result{true, 3, {4, 5, 6}});
    CHECK(ask(epoch, 2, 6) == result{true, 2, {3, 4, 5, 6}});
    // At the last offset: recovered, nothing to send.
    CHECK(ask(epoch, 6, 6) == result{true, 6, {}});
    // 2 left the ring: not recovered; from the subscription point 5.
    CHECK(ask(epoch, 1, 5) == result{false, 5, {6}});
    // Another epoch (a restart, an evicted channel): not recovered.
    CHECK(ask("other", 4, 4) == result{false, 4, {5, 6}});
    // An offset the channel never reached: not recovered.
    CHECK(ask(epoch, 9, 6) == result{false, 6, {}});
    // The subscription point's successors are gone too: from the oldest kept.
    CHECK(ask(epoch, 0, 1) == result{false, 2, {3, 4, 5, 6}});
}

TEST_CASE("recovery by time on the home shard: complete only when nothing at or after the "
          "time can have been dropped",
          "[pubsub][recovery]") {
    fake_io io(0, 2);
    engine e(io, with_history(4));
    const std::string local = homed_on(0, 2);
    e.on_mesh(kinds::interest{}, shard_id(1),
              std::make_unique<interest_msg>(interest_msg{local, {}, 0, 7, true}));
    const std::string epoch = io.post_of<kinds::confirmed>(0)->epoch;
    publish_request req;
    req.data = "1";
    const auto ask = [&](uint64_t since_ms) {
        auto m = std::make_unique<recover_msg>();
        m->channel = local;
        m->by_time = true;
        m->since_ms = since_ms;
        m->point = 0;
        m->conn = handle(9);
        e.on_mesh(kinds::recover{}, shard_id(1), std::move(m));
        const recover_msg* a = io.post_of<kinds::recovered>(io.posts.size() - 1);
        REQUIRE(a != nullptr);
        CHECK(a->epoch == epoch);
        return std::make_tuple(a->recovered, a->point, a->frames.size());
    };
    using result = std::tuple<bool, uint64_t, std::size_t>;
    for (int i = 0; i < 3; ++i) {
        e.publish(req, local, api_origin());
    }
    // Nothing dropped yet (the epoch starts at 1): from any time, complete.
    CHECK(ask(0) == result{true, 0, 3});
    // Later than every stamp (the wall clock now, plus a day): complete, nothing to send.
    const uint64_t later = uint64_t(std::time(nullptr)) * 1000 + 86400000;
    CHECK(ask(later) == result{true, 3, 0});
    for (int i = 0; i < 3; ++i) {
        e.publish(req, local, api_origin());
    }
    // 1 and 2 left the ring: a time at or before the oldest kept may have matched them.
    CHECK(std::get<0>(ask(0)) == false);
    CHECK(ask(later) == result{true, 6, 0});
}

TEST_CASE("recovery replays at most max_recover_messages", "[pubsub][recovery]") {
    fake_io io(0, 1);
    engine e(io, with_history(20000));
    const std::string ch = homed_on(0, 1);
    session s;
    e.open_session(handle(1), s, "");
    e.on_text(handle(1), s, R"({"op":"subscribe","channel":")" + ch + R"(","id":1})");
    const std::string first_reply = texts_to(io, 1).at(0);
    const std::string epoch = first_reply.substr(first_reply.find("\"epoch\":\"") + 9, 100);
    const std::string ep = epoch.substr(0, epoch.find('"'));
    publish_request req;
    req.data = "1";
    for (uint64_t i = 0; i < max_recover_messages + 1; ++i) {
        e.publish(req, ch, api_origin());
    }
    session late;
    e.open_session(handle(2), late, "");
    // 10,001 missed: too many.
    e.on_text(handle(2), late, subscribe_recover(ch, ep, 0));
    auto texts = texts_to(io, 2);
    REQUIRE(texts.size() == 1);
    CHECK(texts[0].ends_with(",\"offset\":" + std::to_string(max_recover_messages + 1) +
                             ",\"recovered\":false}"));
    // 10,000 missed: replayed.
    session other;
    e.open_session(handle(3), other, "");
    e.on_text(handle(3), other, subscribe_recover(ch, ep, 1));
    texts = texts_to(io, 3);
    REQUIRE(texts.size() == max_recover_messages + 1);
    CHECK(texts[0].ends_with(R"("offset":1,"recovered":true})"));
    CHECK(texts.back().ends_with(",\"offset\":" + std::to_string(max_recover_messages + 1) + "}"));
}
