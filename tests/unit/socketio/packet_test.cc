// Tests for src/socketio/packet.cc: decode_sio over every packet type, every error, the
// limits, and every input cut at every byte.
#include <ringcast/socketio.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace ringcast::socketio;
using namespace std::string_view_literals;

namespace {

sio_packet ok(std::string_view text, const sio_limits& limits = {}) {
    auto p = decode_sio(text, limits);
    INFO(text);
    REQUIRE(p);
    return std::move(p.value());
}

sio_error fails(std::string_view text, const sio_limits& limits = {}) {
    auto p = decode_sio(text, limits);
    INFO(text);
    REQUIRE_FALSE(p);
    return p.error();
}

} // namespace

TEST_CASE("CONNECT with and without namespace and auth payload", "[socketio][packet]") {
    auto plain = ok("0");
    CHECK(plain.type == sio_type::connect);
    CHECK(plain.nsp == "/");
    CHECK(plain.data.empty());
    CHECK_FALSE(plain.ack_id);

    auto auth = ok("0{\"token\":\"eyJ.x.y\"}");
    CHECK(auth.nsp == "/");
    CHECK(auth.data == "{\"token\":\"eyJ.x.y\"}");

    auto chat = ok("0/chat,{\"token\":\"t\",\"pid\":\"p\",\"offset\":\"42\"}");
    CHECK(chat.nsp == "/chat");
    CHECK(chat.data == "{\"token\":\"t\",\"pid\":\"p\",\"offset\":\"42\"}");

    auto bare = ok("0/admin,");
    CHECK(bare.nsp == "/admin");
    CHECK(bare.data.empty());
    CHECK(ok("0/admin").nsp == "/admin"); // socket.io-parser reads to the end without ','

    CHECK(fails("0[1]") == sio_error::bad_payload);
    CHECK(fails("0\"x\"") == sio_error::bad_payload);
    CHECK(fails("0null") == sio_error::bad_payload);
}

TEST_CASE("DISCONNECT takes no payload", "[socketio][packet]") {
    CHECK(ok("1").type == sio_type::disconnect);
    CHECK(ok("1/chat,").nsp == "/chat");
    CHECK(fails("1{}") == sio_error::unexpected_payload);
    CHECK(fails("1/chat,[]") == sio_error::unexpected_payload);
}

TEST_CASE("EVENT: name, args, namespace and ack id", "[socketio][packet]") {
    auto e = ok("2[\"chat message\",\"hi\",{\"a\":[1,2]}]");
    CHECK(e.type == sio_type::event);
    CHECK(e.event == "chat message");
    CHECK(e.args == "\"hi\",{\"a\":[1,2]}");
    CHECK_FALSE(e.ack_id);

    auto acked = ok("2/chat,17[\"join_room\",\"lobby\"]");
    CHECK(acked.nsp == "/chat");
    REQUIRE(acked.ack_id);
    CHECK(*acked.ack_id == 17);
    CHECK(acked.event == "join_room");
    CHECK(acked.args == "\"lobby\"");

    auto zero = ok("20[\"x\"]");
    REQUIRE(zero.ack_id);
    CHECK(*zero.ack_id == 0);
    CHECK(zero.args.empty());

    auto escaped = ok("2[ \"a\\\"b\\u00e9,\" , 1 ]");
    CHECK(escaped.event == "a\"b\xc3\xa9,");
    CHECK(escaped.args == "1");

    auto spaced = ok("2[\"x\"  ]");
    CHECK(spaced.args.empty());

    CHECK(ok("2999999999999999[\"x\"]").ack_id == 999999999999999u);
}

TEST_CASE("EVENT payloads with the wrong shape are refused", "[socketio][packet][errors]") {
    CHECK(fails("2") == sio_error::missing_payload);
    CHECK(fails("2/chat,") == sio_error::missing_payload);
    CHECK(fails("21") == sio_error::missing_payload); // an ack id, then nothing
    CHECK(fails("2[]") == sio_error::bad_payload);
    CHECK(fails("2{}") == sio_error::bad_payload);
    CHECK(fails("2[1]") == sio_error::bad_payload); // numeric names: not accepted here
    CHECK(fails("2[null,1]") == sio_error::bad_payload);
    CHECK(fails("2\"x\"") == sio_error::bad_payload);
    for (const std::string_view name : {"connect"sv, "connect_error"sv, "disconnect"sv,
                                        "disconnecting"sv, "newListener"sv, "removeListener"sv}) {
        CHECK(fails("2[\"" + std::string(name) + "\"]") == sio_error::reserved_event_name);
    }
    CHECK(fails("2[\"dis\\u0063onnect\"]") == sio_error::reserved_event_name);
}

TEST_CASE("ACK: args and id", "[socketio][packet]") {
    auto a = ok("3/chat,5[\"ok\",{\"n\":1}]");
    CHECK(a.type == sio_type::ack);
    CHECK(*a.ack_id == 5);
    CHECK(a.args == "\"ok\",{\"n\":1}");
    CHECK(a.event.empty());
    CHECK(ok("31[]").args.empty());
    CHECK(fails("31") == sio_error::missing_payload);
    CHECK(fails("31{}") == sio_error::bad_payload);
}

TEST_CASE("CONNECT_ERROR carries a string or an object", "[socketio][packet]") {
    CHECK(ok("4{\"message\":\"no\"}").type == sio_type::connect_error);
    CHECK(ok("4/a,\"no\"").data == "\"no\"");
    CHECK(fails("4") == sio_error::missing_payload);
    CHECK(fails("4[1]") == sio_error::bad_payload);
    CHECK(fails("41") == sio_error::missing_payload);
}

TEST_CASE("BINARY_EVENT and BINARY_ACK: attachment count and placeholders",
          "[socketio][packet][binary]") {
    auto b = ok("52-/chat,3[\"upload\",{\"_placeholder\":true,\"num\":0},"
                "[{\"_placeholder\":true,\"num\":1}]]");
    CHECK(b.type == sio_type::binary_event);
    CHECK(b.attachments == 2);
    CHECK(b.nsp == "/chat");
    CHECK(*b.ack_id == 3);
    CHECK(b.event == "upload");

    auto ba = ok("61-4[{\"_placeholder\":true,\"num\":0}]");
    CHECK(ba.type == sio_type::binary_ack);
    CHECK(ba.attachments == 1);
    CHECK(*ba.ack_id == 4);

    CHECK(ok("510-[\"x\"]").attachments == 10);
    // A placeholder that is not one (false flag) is data.
    CHECK(ok("51-[\"x\",{\"_placeholder\":false,\"num\":9}]").attachments == 1);

    CHECK(fails("5[\"x\"]") == sio_error::bad_attachment_count);
    CHECK(fails("5-[\"x\"]") == sio_error::bad_attachment_count);
    CHECK(fails("50-[\"x\"]") == sio_error::bad_attachment_count);
    CHECK(fails("501-[\"x\"]") == sio_error::bad_attachment_count);
    CHECK(fails("51") == sio_error::bad_attachment_count);
    CHECK(fails("51-") == sio_error::missing_payload);
    CHECK(fails("511-[\"x\"]") == sio_error::too_many_attachments);
    CHECK(fails("599999999999999999999999-[\"x\"]") == sio_error::too_many_attachments);
    CHECK(fails("51-[\"x\",{\"_placeholder\":true,\"num\":1}]") == sio_error::bad_placeholder);
    CHECK(fails("51-[\"x\",{\"_placeholder\":true,\"num\":-1}]") == sio_error::bad_placeholder);
    CHECK(fails("51-[\"x\",{\"_placeholder\":true,\"num\":0.5}]") == sio_error::bad_placeholder);
    CHECK(fails("51-[\"x\",{\"_placeholder\":true}]") == sio_error::bad_placeholder);
    CHECK(fails("51-[\"x\",{\"a\":{\"_placeholder\":true,\"num\":\"0\"}}]") ==
          sio_error::bad_placeholder);
    CHECK(fails("61-{}") == sio_error::bad_payload);
}

TEST_CASE("headers and JSON that are not Socket.IO are refused", "[socketio][packet][errors]") {
    CHECK(fails("") == sio_error::empty_packet);
    CHECK(fails("7") == sio_error::unknown_type);
    CHECK(fails("a") == sio_error::unknown_type);
    CHECK(fails("2[\"x\"") == sio_error::bad_json);
    CHECK(fails("2[\"x\"]]") == sio_error::bad_json);
    CHECK(fails("2[\"x\",]") == sio_error::bad_json);
    CHECK(fails("2[\"\xff\"]") == sio_error::bad_json);
    CHECK(fails("2x[\"x\"]") == sio_error::bad_payload);
    // Whitespace before the payload: socket.io-parser would read it as an ack id.
    CHECK(fails("2 [\"x\"]") == sio_error::bad_payload);
    CHECK(fails("21\t[\"x\"]") == sio_error::bad_payload);
    CHECK(fails("0/chat, {}") == sio_error::bad_payload);
    CHECK(fails("2/ch\x01t,[\"x\"]") == sio_error::bad_namespace);
    CHECK(fails("2/ch\xfft,[\"x\"]") == sio_error::bad_namespace);
}

TEST_CASE("limits: packet bytes, namespace bytes, ack id digits", "[socketio][packet][limits]") {
    const sio_limits small{
        .max_packet_bytes = 16, .max_namespace_bytes = 4, .max_ack_id_digits = 3};
    CHECK(ok("2/abc,[\"x\"]", small).nsp == "/abc");
    CHECK(fails("2/abcd,[\"x\"]", small) == sio_error::namespace_too_long);
    CHECK(*ok("2999[\"x\"]", small).ack_id == 999);
    CHECK(fails("21000[\"x\"]", small) == sio_error::ack_id_too_long);
    CHECK(fails("2[\"0123456789abc\"]", small) == sio_error::packet_too_large);
    CHECK(fails("2" + std::string(16, '9') + "[\"x\"]") == sio_error::ack_id_too_long);
    CHECK(fails("2/" + std::string(128, 'n') + ",[\"x\"]") == sio_error::namespace_too_long);
    CHECK(ok("2/" + std::string(127, 'n') + ",[\"x\"]").nsp.size() == 128);
}

TEST_CASE("every packet cut at every byte decodes or fails with a named error",
          "[socketio][packet][cuts]") {
    const std::vector<std::string> packets = {
        "0/chat,{\"token\":\"abc\"}",
        "1/chat,",
        "2/chat,12[\"ev\",{\"a\":\"\\u00e9\"},[1,2.5,null,true]]",
        "3/chat,12[\"ok\"]",
        "4{\"message\":\"nope\"}",
        "52-/chat,7[\"up\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
        "61-9[{\"_placeholder\":true,\"num\":0}]",
    };
    for (const std::string& packet : packets) {
        REQUIRE(decode_sio(packet));
        for (std::size_t n = 0; n < packet.size(); ++n) {
            const std::string cut = packet.substr(0, n); // own buffer: ASan sees overreads
            auto p = decode_sio(cut);
            if (p) {
                CHECK(p->data.size() <= cut.size());
                CHECK(p->args.size() <= p->data.size());
            } else {
                CHECK(!describe(p.error()).empty());
            }
        }
    }
}

TEST_CASE("the CONNECT auth payload yields token, pid and offset", "[socketio][packet][auth]") {
    auto none = parse_connect_auth("");
    REQUIRE(none);
    CHECK_FALSE(none->token);
    auto all = parse_connect_auth(
        "{\"token\":\"eyJ.a\\u002eb\",\"pid\":\"p1\",\"offset\":\"17-3\",\"x\":[1]}");
    REQUIRE(all);
    CHECK(*all->token == "eyJ.a.b");
    CHECK(*all->pid == "p1");
    CHECK(*all->offset == "17-3");
    auto only_token = parse_connect_auth("{\"token\":\"t\",\"offset\":null}");
    CHECK(only_token.error() == sio_error::bad_payload); // offset must be a string
    CHECK(parse_connect_auth("{\"token\":1}").error() == sio_error::bad_payload);
    CHECK(parse_connect_auth("{\"token\":\"a\",\"token\":\"b\"}").error() ==
          sio_error::bad_payload);
    CHECK(parse_connect_auth("{\"tok\\u0065n\":\"a\",\"token\":\"b\"}").error() ==
          sio_error::bad_payload);
    CHECK(parse_connect_auth("[]").error() == sio_error::bad_payload);
    CHECK(parse_connect_auth("{").error() == sio_error::bad_json);
}

TEST_CASE("every Socket.IO error has a reason", "[socketio][packet][errors]") {
    for (int e = 0; e <= static_cast<int>(sio_error::packet_too_large); ++e) {
        CHECK(!describe(static_cast<sio_error>(e)).empty());
    }
}
