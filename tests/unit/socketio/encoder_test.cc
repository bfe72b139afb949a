// Tests for src/socketio/encoder.cc: the packets the server sends decode back to what was
// meant, and the fan-out splice writes the bytes the reference server writes.
#include <ringcast/socketio.h>

#include <catch2/catch.hpp>
#include <string>

using namespace ringcast::socketio;
using namespace std::string_view_literals;

TEST_CASE("CONNECT reply with sid, and pid when recovery is on", "[socketio][encode]") {
    CHECK(encode_connect("/", "abc") == "0{\"sid\":\"abc\"}");
    CHECK(encode_connect("/chat", "abc", "pid1") == "0/chat,{\"sid\":\"abc\",\"pid\":\"pid1\"}");
    const std::string text = encode_connect("/chat", "abc", "pid1");
    auto back = decode_sio(text); // views into `text`
    REQUIRE(back);
    CHECK(back->type == sio_type::connect);
    CHECK(back->nsp == "/chat");
}

TEST_CASE("CONNECT_ERROR, DISCONNECT, ACK", "[socketio][encode]") {
    CHECK(encode_connect_error("/", "not authorized") == "4{\"message\":\"not authorized\"}");
    CHECK(encode_connect_error("/a", "x", "{\"code\":4001}") ==
          "4/a,{\"message\":\"x\",\"data\":{\"code\":4001}}");
    CHECK(encode_disconnect("/") == "1");
    CHECK(encode_disconnect("/chat") == "1/chat,");
    CHECK(encode_ack("/", 12, "\"ok\",1") == "312[\"ok\",1]");
    CHECK(encode_ack("/chat", 0, "") == "3/chat,0[]");
    for (const std::string& s :
         {encode_connect_error("/", "m"), encode_disconnect("/x"), encode_ack("/x", 9, "null")}) {
        CHECK(decode_sio(s));
    }
}

TEST_CASE("EVENT with args, ack id and recovery offset", "[socketio][encode]") {
    CHECK(encode_event("/", "news", "") == "2[\"news\"]");
    CHECK(encode_event("/", "news", "{\"a\":1},2") == "2[\"news\",{\"a\":1},2]");
    CHECK(encode_event("/chat", "m", "1", 7, "17-3") == "2/chat,7[\"m\",1,\"17-3\"]");
    CHECK(encode_event("/", "m", "", std::nullopt, "5") == "2[\"m\",\"5\"]");
    const std::string text = encode_event("/chat", "a\"b\n", "[1]", 3);
    auto back = decode_sio(text);
    REQUIRE(back);
    CHECK(back->event == "a\"b\n");
    CHECK(back->args == "[1]");
    CHECK(*back->ack_id == 3);
}

TEST_CASE("the fan-out splice writes an Engine.IO message around the data as is",
          "[socketio][encode]") {
    std::string out = "keep:";
    append_eio_event(out, "/", "chat:lobby", "{\"text\":\"hi\"}");
    CHECK(out == "keep:42[\"chat:lobby\",{\"text\":\"hi\"}]");
    out.clear();
    append_eio_event(out, "/feeds", "price", "1.5", "99");
    CHECK(out == "42/feeds,[\"price\",1.5,\"99\"]");
    auto eio = decode_eio_text(out);
    REQUIRE(eio);
    CHECK(eio->type == eio_type::message);
    auto sio = decode_sio(eio->data);
    REQUIRE(sio);
    CHECK(sio->event == "price");
    CHECK(sio->args == "1.5,\"99\"");
}

TEST_CASE("JSON strings are escaped as JSON.stringify escapes them", "[socketio][encode]") {
    std::string out;
    append_json_string(out, "a\"\\/\b\f\n\r\t\x01\x1f\x7f\xc3\xa9"sv);
    CHECK(out == "\"a\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xc3\xa9\"");
    out.clear();
    append_json_string(out, "\0"sv);
    CHECK(out == "\"\\u0000\"");
}
