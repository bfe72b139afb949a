// Tests for src/socketio/decoder.cc: sio_decoder's attachment reassembly and its bounds.
#include <ringcast/socketio.h>

#include <catch2/catch.hpp>
#include <string>

using namespace ringcast::socketio;
using namespace std::string_view_literals;
using status = sio_decoder::status;

TEST_CASE("a text packet is ready at once and its views survive the caller's buffer",
          "[socketio][decoder]") {
    sio_decoder d;
    std::string message = "2/chat,1[\"ev\",2]";
    auto r = d.feed_text(message);
    REQUIRE(r);
    CHECK(*r == status::ready);
    message.assign(message.size(), 'x');
    CHECK(d.packet().nsp == "/chat");
    CHECK(d.packet().event == "ev");
    CHECK(d.packet().args == "2");
    CHECK(d.attachments().empty());
    CHECK(d.awaiting() == 0);
}

TEST_CASE("a moved decoder keeps its packet's views valid", "[socketio][decoder]") {
    sio_decoder d;
    REQUIRE(d.feed_text("2[\"a\",1]")); // short: would sit in a std::string's own buffer
    sio_decoder moved(std::move(d));
    CHECK(moved.packet().data == "[\"a\",1]");
    CHECK(moved.packet().args == "1");
    sio_decoder assigned;
    assigned = std::move(moved);
    CHECK(assigned.packet().args == "1");
}

TEST_CASE("a binary event waits for exactly N attachments", "[socketio][decoder][binary]") {
    sio_decoder d;
    auto r = d.feed_text("52-[\"up\",{\"_placeholder\":true,\"num\":0},"
                         "{\"_placeholder\":true,\"num\":1}]");
    REQUIRE(r);
    CHECK(*r == status::awaiting_attachments);
    CHECK(d.awaiting() == 2);
    r = d.feed_binary("\x00\x01"sv);
    REQUIRE(r);
    CHECK(*r == status::awaiting_attachments);
    r = d.feed_binary("");
    REQUIRE(r);
    CHECK(*r == status::ready);
    CHECK(d.packet().type == sio_type::binary_event);
    CHECK(d.packet().event == "up");
    REQUIRE(d.attachments().size() == 2);
    CHECK(d.attachments()[0] == "\x00\x01"sv);
    CHECK(d.attachments()[1].empty());

    // The next packet starts clean.
    r = d.feed_text("3/a,4[]");
    REQUIRE(r);
    CHECK(*r == status::ready);
    CHECK(d.attachments().empty());
    CHECK(d.packet().type == sio_type::ack);
}

TEST_CASE("text while attachments are awaited, and binary when none is, are errors",
          "[socketio][decoder][errors]") {
    sio_decoder d;
    CHECK(d.feed_binary("x").error() == sio_error::unexpected_binary);
    REQUIRE(d.feed_text("61-1[{\"_placeholder\":true,\"num\":0}]"));
    CHECK(d.feed_text("2[\"x\"]").error() == sio_error::unexpected_text);
    CHECK(d.awaiting() == 0);
    // After the error it is idle and usable again.
    auto r = d.feed_text("2[\"x\"]");
    REQUIRE(r);
    CHECK(*r == status::ready);
}

TEST_CASE("attachment bytes and packet bytes are bounded", "[socketio][decoder][limits]") {
    sio_decoder d(sio_limits{.max_packet_bytes = 64, .max_attachment_bytes = 10});
    REQUIRE(d.feed_text("52-[\"x\"]"));
    REQUIRE(d.feed_binary("12345"));
    CHECK(d.feed_binary("123456").error() == sio_error::attachments_too_large);
    CHECK(d.awaiting() == 0);
    REQUIRE(d.feed_text("52-[\"x\"]"));
    REQUIRE(d.feed_binary("12345"));
    auto r = d.feed_binary("12345");
    REQUIRE(r);
    CHECK(*r == status::ready);
    CHECK(d.feed_text("2[\"" + std::string(64, 'a') + "\"]").error() ==
          sio_error::packet_too_large);
}

TEST_CASE("a bad packet leaves the decoder idle with the error", "[socketio][decoder][errors]") {
    sio_decoder d;
    CHECK(d.feed_text("2[]").error() == sio_error::bad_payload);
    CHECK(d.awaiting() == 0);
    CHECK(d.feed_text("511-[\"x\"]").error() == sio_error::too_many_attachments);
    CHECK(d.feed_binary("a").error() == sio_error::unexpected_binary);
}
