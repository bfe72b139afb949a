// The Socket.IO form of the engine's frames (src/pubsub/socketio_wire.h) and its place in
// fan-out: a channel message becomes 42/ns,["event",data] with the data byte for byte,
// made once per pass for every Socket.IO subscriber, while /ws subscribers keep the
// envelope. A fake conn_io stands in for the shard.
#include "fake_io.h"
#include "fanout.h"
#include "shown.h"
#include "socketio_wire.h"
#include "subscriptions.h"

#include <ringcast/ws.h>

#include <catch2/catch.hpp>
#include <string>

using namespace ringcast;
using namespace ringcast::pubsub;
using testing::fake_io;
using testing::frame_text;
using testing::handle;
using testing::shown;

namespace {

/// The text payload of a server frame (frame_text skips the header).
std::string payload(const core::frame_ref& f) {
    return frame_text(f);
}

core::frame_ref message_frame(std::string_view channel, std::string_view event,
                              std::string_view data, uint64_t offset = 7) {
    const auto body = core::make_frame(data);
    envelope e;
    e.message_id = "m-1";
    e.event = event;
    e.channel = channel;
    e.data = std::string_view(reinterpret_cast<const char*>(body->data()), body->own_size());
    e.timestamp_ms = 1763790000000;
    e.user_id = "u7";
    e.offset = offset;
    return frame_message(e, body);
}

struct quiet_sink final : interest_sink {
    void interest_changed(std::string_view, uint64_t, interest_change) override {}
    void member_changed(const local_channel&, const session&, member_change) override {}
};

struct deliver_receiver {
    void on_mesh(kinds::deliver, shard_id, std::unique_ptr<delivery>) noexcept {}
};

struct no_replies final : reply_sink {
    void on_reply(conn_handle, std::string_view) noexcept override {}
};

} // namespace

TEST_CASE("socketio_frame: a channel message is its event with the data as the one argument",
          "[pubsub][socketio]") {
    const socketio_config cfg;
    const std::string data = R"({"n":1,"text":"caf\u00e9 \"x\" ,\"priority\":9}")";
    const core::frame_ref f = socketio_frame(message_frame("news", "notification", data), "", cfg);
    REQUIRE(f);
    CHECK(testing::frame_first_byte(f) == 0x81); // one final text frame
    CHECK(payload(f) == "42[\"notification\"," + data + "]");
}

TEST_CASE("socketio_frame: an event name Socket.IO reserves goes out as ringcast:<name>",
          "[pubsub][socketio]") {
    const socketio_config cfg;
    for (const char* reserved : {"connect", "connect_error", "disconnect", "disconnecting",
                                 "newListener", "removeListener"}) {
        INFO(reserved);
        const core::frame_ref f = socketio_frame(message_frame("news", reserved, "1"), "", cfg);
        REQUIRE(f);
        CHECK(payload(f) == "42[\"ringcast:" + std::string(reserved) + "\",1]");
    }
    CHECK(payload(socketio_frame(message_frame("news", "connected", "1"), "", cfg)) ==
          "42[\"connected\",1]");
    // With a recovery tag, the tag is the last argument.
    CHECK(payload(socketio_frame(message_frame("news", "e", "{}"), "", cfg, "5f.0-9")) ==
          "42[\"e\",{},\"5f.0-9\"]");
}

TEST_CASE("socketio_frame: data spliced by reference comes out whole", "[pubsub][socketio]") {
    const socketio_config cfg;
    const std::string data = "\"" + std::string(splice_data_bytes + 10, 'x') + "\"";
    const core::frame_ref plain = message_frame("news", "big", data);
    REQUIRE(plain->body() != nullptr);
    const core::frame_ref f = socketio_frame(plain, "", cfg);
    REQUIRE(f);
    CHECK(payload(f) == "42[\"big\"," + data + "]");
}

TEST_CASE("socketio_frame: a configured namespace's channels are emitted in it",
          "[pubsub][socketio]") {
    socketio_config cfg;
    cfg.namespaces = {"chat", "ops"};
    CHECK(socketio_namespace_of("chat:lobby", cfg) == "/chat");
    CHECK(socketio_namespace_of("ops:a:b", cfg) == "/ops");
    CHECK(socketio_namespace_of("chatty:x", cfg) == "/");
    CHECK(socketio_namespace_of("lobby", cfg) == "/");
    CHECK(socketio_namespace_of("user:7", cfg) == "/");
    const core::frame_ref f = socketio_frame(message_frame("chat:lobby", "text", "[1,2]"), "", cfg);
    REQUIRE(f);
    CHECK(payload(f) == "42/chat,[\"text\",[1,2]]");
    // The channel given wins over the envelope's (a presence frame has none of its own).
    const core::frame_ref g = socketio_frame(message_frame("lobby", "text", "1"), "chat:x", cfg);
    CHECK(payload(g) == "42/chat,[\"text\",1]");
}

TEST_CASE("socketio_frame: other objects of ours are emitted under their op",
          "[pubsub][socketio]") {
    const socketio_config cfg;
    const std::string presence = R"({"op":"presence","type":"join","channel":"room:1","userId":"7"})";
    const core::frame_ref f =
        socketio_frame(ws::make_server_frame(ws::opcode::text, presence), "room:1", cfg);
    REQUIRE(f);
    CHECK(payload(f) == "42[\"presence\"," + presence + "]");
    // Not text, or not ours: no Socket.IO form.
    CHECK(!socketio_frame(ws::make_server_frame(ws::opcode::binary, std::string_view("{}")), "",
                          cfg));
    CHECK(!socketio_frame(ws::make_server_frame(ws::opcode::text, std::string_view("[1]")), "",
                          cfg));
    CHECK(!socketio_frame({}, "", cfg));
}

TEST_CASE("fanout gives Socket.IO subscribers one shared re-framed copy and /ws ones the "
          "envelope",
          "[pubsub][socketio][fanout]") {
    quiet_sink sink;
    deliver_receiver receiver;
    fake_io io(0, 1);
    io.handlers.on<kinds::deliver>(receiver);
    subscriptions subs(sink);
    socketio_config cfg;
    fanout out(io, subs, 1 << 20, 0x5f00, 10000, 256, &cfg);
    no_replies replies;
    session plain, sio1, sio2;
    sio1.speak_socketio(replies);
    sio2.speak_socketio(replies);
    CHECK(sio1.socketio());
    CHECK(!plain.socketio());
    uint32_t slot = 1;
    for (session* s : {&plain, &sio1, &sio2}) {
        local_channel* ch = subs.find("news");
        if (ch != nullptr && ch->confirmed) {
            subs.add(*ch, handle(slot++), *s);
        } else {
            subs.wait("news", ch, pending_sub{handle(slot++), s, false, 0, reply_mode::silent, 0});
            subs.confirm(*subs.find("news"), "ep", 0);
        }
    }
    const core::frame_ref f = message_frame("news", "tick", "{\"p\":1}", 1);
    out.deliver_local("news", f, priority::normal, 1);
    REQUIRE(io.sends.size() == 3);
    const core::frame* sio_frame = nullptr;
    for (const auto& s : io.sends) {
        if (s.h.slot == 1) {
            CHECK(s.f.get() == f.get()); // the envelope, by reference
        } else {
            INFO(shown(payload(s.f)));
            CHECK(payload(s.f) == "42[\"tick\",{\"p\":1}]");
            if (sio_frame == nullptr) {
                sio_frame = s.f.get();
            }
            CHECK(s.f.get() == sio_frame); // made once, shared
        }
    }
    // A shard broadcast of a presence-like object reaches both kinds too.
    std::vector<std::pair<conn_handle, session*>> all{
        {handle(1), &plain}, {handle(2), &sio1}, {handle(3), &sio2}};
    io.sends.clear();
    CHECK(out.broadcast(all, ws::make_server_frame(ws::opcode::text,
                                                   std::string_view("{\"op\":\"notice\"}")),
                        priority::normal) == 3);
    REQUIRE(io.sends.size() == 3);
    CHECK(payload(io.sends[1].f) == "42[\"notice\",{\"op\":\"notice\"}]");
}
