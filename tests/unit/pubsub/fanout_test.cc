// pubsub fanout (src/pubsub/fanout.h) without a shard: the slow-consumer policy, framing
// once (copied or spliced), local delivery by reference with drops and closes counted,
// hand-off to other shards, and broadcast. A fake conn_io stands in for the shard.
#include "fake_io.h"
#include "fanout.h"
#include "shown.h"
#include "subscriptions.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

using namespace ringcast;
using namespace ringcast::pubsub;
using testing::fake_io;
using testing::frame_text;
using testing::handle;
using testing::shown;

namespace {

constexpr std::size_t hard = 1000; // slow_consumer_bytes in these tests

struct quiet_sink final : interest_sink {
    void interest_changed(std::string_view, uint64_t, interest_change) override {}
    void member_changed(const local_channel&, const session&, member_change) override {}
};

/// Takes the deliver kind, so fan_out may post it (every shard registers every kind).
struct deliver_receiver {
    void on_mesh(kinds::deliver, shard_id, std::unique_ptr<delivery>) noexcept {}
};

/// One shard's local side: subscriptions, a fake io and the fanout under test.
struct local_shard {
    explicit local_shard(unsigned self = 0, unsigned shards = 1)
        : io(self, shards), subs(sink), out(io, subs, hard, 0x5f00) {
        io.handlers.on<kinds::deliver>(receiver);
    }
    void subscribe(std::string_view channel, uint32_t slot, session& s) {
        local_channel* ch = subs.find(channel);
        if (ch != nullptr && ch->confirmed) {
            return subs.add(*ch, handle(slot), s);
        }
        subs.wait(channel, ch, pending_sub{handle(slot), &s, false, 0, reply_mode::silent, 0});
        subs.confirm(*subs.find(channel), "ep", 0);
    }
    /// Frames sent to `slot`, in order.
    std::vector<core::frame_ref> sent_to(uint32_t slot) const {
        std::vector<core::frame_ref> out_frames;
        for (const auto& s : io.sends) {
            if (s.h.slot == slot) {
                out_frames.push_back(s.f);
            }
        }
        return out_frames;
    }

    quiet_sink sink;
    deliver_receiver receiver;
    fake_io io;
    subscriptions subs;
    fanout out;
};

publish_job job(std::string channel, uint64_t offset, priority prio = priority::normal,
                std::string_view data = "{\"n\":1}") {
    return publish_job{std::move(channel), "message", core::make_frame(data), "", prio, {}, offset};
}

std::string envelope_text(const envelope& e) {
    std::string text(envelope_size(e), '\0');
    write_envelope(e, text);
    return text;
}

} // namespace

TEST_CASE("fanout policy: priorities 1 and 2 are sent until the connection is closed",
          "[pubsub][fanout]") {
    for (const priority p : {priority::critical, priority::high}) {
        CHECK(admit(0, hard, p, false) == delivery_verdict::send);
        CHECK(admit(hard - 1, hard, p, false) == delivery_verdict::send);
        CHECK(admit(hard - 1, hard, p, true) == delivery_verdict::send);
        CHECK(admit(hard, hard, p, false) == delivery_verdict::close);
    }
}

TEST_CASE("fanout policy: priority 3 drops from three quarters, 4 from half, both over the "
          "shard's budget",
          "[pubsub][fanout]") {
    CHECK(admit(749, hard, priority::normal, false) == delivery_verdict::send);
    CHECK(admit(750, hard, priority::normal, false) == delivery_verdict::drop);
    CHECK(admit(0, hard, priority::normal, true) == delivery_verdict::drop);
    CHECK(admit(499, hard, priority::low, false) == delivery_verdict::send);
    CHECK(admit(500, hard, priority::low, false) == delivery_verdict::drop);
    CHECK(admit(0, hard, priority::low, true) == delivery_verdict::drop);
    CHECK(admit(hard, hard, priority::low, false) == delivery_verdict::close);
    CHECK(admit(hard + 5, hard, priority::normal, true) == delivery_verdict::close);
}

TEST_CASE("fanout frames a small message as one text frame holding the envelope",
          "[pubsub][fanout]") {
    const auto data = core::make_frame(std::string_view("{\"n\":1}"));
    envelope e;
    e.message_id = "m-1";
    e.event = "message";
    e.channel = "news";
    e.data = "{\"n\":1}";
    e.timestamp_ms = 12;
    e.offset = 3;
    const core::frame_ref f = frame_message(e, data);
    CHECK(f->body() == nullptr); // copied: below splice_data_bytes
    CHECK(testing::frame_first_byte(f) == 0x81);
    const std::string text = frame_text(f);
    INFO(shown(text));
    CHECK(text == envelope_text(e));
    CHECK(f->size() == 2 + envelope_size(e));
}

TEST_CASE("fanout splices large data into the frame by reference instead of copying it",
          "[pubsub][fanout]") {
    const std::string payload = "\"" + std::string(splice_data_bytes, 'x') + "\"";
    const auto data = core::make_frame(std::string_view(payload));
    envelope e;
    e.message_id = "m-2";
    e.event = "big";
    e.channel = "news";
    e.data = std::string_view(reinterpret_cast<const char*>(data->data()), data->own_size());
    e.offset = 9;
    const core::frame_ref f = frame_message(e, data);
    CHECK(f->body() == data.get()); // the one copy of the payload, shared
    CHECK(f->own_size() < payload.size());
    CHECK(frame_text(f) == envelope_text(e));
    CHECK(f->size() == 4 + envelope_size(e)); // 126-65535 bytes: a 4-byte header
}

TEST_CASE("fanout delivers one frame by reference to every local subscriber", "[pubsub][fanout]") {
    local_shard shard;
    session a;
    session b;
    session other;
    shard.subscribe("news", 1, a);
    shard.subscribe("news", 2, b);
    shard.subscribe("sport", 3, other);

    shard.out.fan_out(job("news", 7), {true});
    REQUIRE(shard.io.sends.size() == 2);
    CHECK(shard.io.posts.empty()); // one shard: nothing travels
    const auto to_a = shard.sent_to(1);
    const auto to_b = shard.sent_to(2);
    REQUIRE(to_a.size() == 1);
    REQUIRE(to_b.size() == 1);
    CHECK(to_a[0].get() == to_b[0].get()); // framed once
    CHECK(shard.sent_to(3).empty());
    const std::string text = frame_text(to_a[0]);
    INFO(shown(text));
    CHECK(text.starts_with("{\"id\":\"m-5f00-0-1\",\"event\":\"message\",\"channel\":\"news\""));
    CHECK(text.ends_with(",\"offset\":7}"));
    CHECK(shard.subs.find("news")->offset == 7); // the next local subscriber's point
    CHECK(shard.out.stats().messages_out == 2);
    CHECK(shard.out.stats().bytes_out == 2 * to_a[0]->size());

    shard.out.fan_out(job("news", 8), {true}); // every message gets its own id
    REQUIRE(shard.sent_to(1).size() == 2);
    CHECK(frame_text(shard.sent_to(1)[1]).starts_with("{\"id\":\"m-5f00-0-2\""));
}

TEST_CASE("fanout hands the frame to the other interested shards, each once", "[pubsub][fanout]") {
    local_shard shard(1, 4);
    session a;
    shard.subscribe("news", 1, a);
    shard.out.fan_out(job("news", 3, priority::high), {true, true, false, true});
    REQUIRE(shard.io.posts.size() == 2);
    CHECK(shard.io.posts[0].to == shard_id(0));
    CHECK(shard.io.posts[1].to == shard_id(3));
    const auto to_local = shard.sent_to(1);
    REQUIRE(to_local.size() == 1);
    for (std::size_t i = 0; i < 2; ++i) {
        const delivery* d = shard.io.post_of<kinds::deliver>(i);
        REQUIRE(d != nullptr);
        CHECK(d->frame.get() == to_local[0].get());
        CHECK(d->channel == "news");
        CHECK(d->prio == priority::high);
        CHECK(d->offset == 3);
    }
}

TEST_CASE("fanout drops by priority and counts each drop", "[pubsub][fanout]") {
    local_shard shard;
    session fast;
    session behind;
    shard.subscribe("news", 1, fast);
    shard.subscribe("news", 2, behind);
    shard.io.queued[2] = 800; // past three quarters: 3 and 4 are dropped, 1 and 2 sent
    const auto f = core::make_frame(std::string_view("x"));
    shard.out.deliver_local("news", f, priority::normal, 1);
    shard.out.deliver_local("news", f, priority::low, 2);
    shard.out.deliver_local("news", f, priority::high, 3);
    CHECK(shard.sent_to(1).size() == 3);
    CHECK(shard.sent_to(2).size() == 1);
    CHECK(shard.out.stats().dropped[3] == 1);
    CHECK(shard.out.stats().dropped[4] == 1);
    CHECK(shard.out.stats().dropped[2] == 0);
    CHECK(shard.io.closes.empty());

    shard.io.over_budget = true; // the shard's output budget: 3 and 4 go for everyone
    shard.out.deliver_local("news", f, priority::normal, 4);
    CHECK(shard.sent_to(1).size() == 3);
    CHECK(shard.out.stats().dropped[3] == 3);
}

TEST_CASE("fanout closes a slow consumer once and delivers nothing more to it",
          "[pubsub][fanout]") {
    local_shard shard;
    session fast;
    session slow;
    shard.subscribe("news", 1, fast);
    shard.subscribe("news", 2, slow);
    shard.io.queued[2] = hard;
    const auto f = core::make_frame(std::string_view("x"));
    shard.out.deliver_local("news", f, priority::critical, 1);

    REQUIRE(shard.io.closes.size() == 1);
    CHECK(shard.io.closes[0].first == handle(2));
    CHECK(shard.io.closes[0].second == core::close_mode::after_flush);
    CHECK(shard.io.discarded == std::vector<conn_handle>{handle(2)});
    const auto to_slow = shard.sent_to(2);
    REQUIRE(to_slow.size() == 1); // the close frame, not the message
    CHECK(testing::frame_first_byte(to_slow[0]) == 0x88);
    CHECK(shard.out.stats().slow_consumer_closes == 1);

    shard.out.deliver_local("news", f, priority::critical, 2);
    CHECK(shard.sent_to(2).size() == 1);
    CHECK(shard.sent_to(1).size() == 2);
    CHECK(shard.out.stats().slow_consumer_closes == 1);
}

TEST_CASE("fanout drops a message whose channel has no local subscriber any more",
          "[pubsub][fanout]") {
    local_shard shard;
    shard.out.deliver_local("gone", core::make_frame(std::string_view("x")), priority::high, 1);
    CHECK(shard.io.sends.empty());
    CHECK(shard.out.stats().messages_out == 0);
}

TEST_CASE("fanout broadcasts to every session that is not closing", "[pubsub][fanout]") {
    local_shard shard;
    session a;
    session b;
    session leaving;
    leaving.mark_closing();
    const std::vector<std::pair<conn_handle, session*>> sessions{
        {handle(1), &a}, {handle(2), &b}, {handle(3), &leaving}};
    shard.io.queued[2] = 600; // priority 4 is dropped for b
    const auto f = core::make_frame(std::string_view("x"));
    CHECK(shard.out.broadcast(sessions, f, priority::normal) == 2);
    CHECK(shard.out.broadcast(sessions, f, priority::low) == 1);
    CHECK(shard.sent_to(3).empty());
    CHECK(shard.out.stats().dropped[4] == 1);
}
