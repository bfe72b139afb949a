// JSON text helpers of ringcast (src/cli/json_text.cc).
#include "json_text.h"

#include <catch2/catch.hpp>

using namespace ringcast::cli;

TEST_CASE("json_problem accepts any JSON value and names what is wrong", "[cli][json]") {
    CHECK_FALSE(json_problem("{\"a\":[1,2,{}]}"));
    CHECK_FALSE(json_problem("-1"));
    CHECK_FALSE(json_problem("\"text\""));
    CHECK_FALSE(json_problem(" null "));
    CHECK(json_problem("{bad"));
    CHECK(json_problem(""));
    CHECK(json_problem("hello"));
    CHECK(json_problem("{\"a\":1} x"));
}

TEST_CASE("json_quote escapes quotes, backslashes and control bytes only", "[cli][json]") {
    CHECK(json_quote("chat:lobby") == "\"chat:lobby\"");
    CHECK(json_quote("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(json_quote("l1\nl2\t\x01") == "\"l1\\nl2\\t\\u0001\"");
    CHECK(json_quote("héllo") == "\"héllo\"");
    CHECK_FALSE(json_problem(json_quote("any \x1f thing \"quoted\"")));
}

TEST_CASE("one_line turns line breaks between tokens into spaces", "[cli][json]") {
    CHECK(one_line("{\"a\":\n 1,\r\n\"b\":2}") == "{\"a\":  1,  \"b\":2}");
    CHECK(one_line("{\"s\":\"a\\nb\"}") == "{\"s\":\"a\\nb\"}");
}

TEST_CASE("indent_json indents by two spaces and keeps values byte for byte", "[cli][json]") {
    CHECK(indent_json("{\"a\":1,\"b\":[true,{}],\"c\":[],\"d\":\"x,{y}:\\\"z\"}") ==
          "{\n"
          "  \"a\": 1,\n"
          "  \"b\": [\n"
          "    true,\n"
          "    {}\n"
          "  ],\n"
          "  \"c\": [],\n"
          "  \"d\": \"x,{y}:\\\"z\"\n"
          "}");
    CHECK(indent_json(" 1.50e3 ") == "1.50e3");
    CHECK(indent_json("{ }") == "{}");
    CHECK(indent_json("]]") == "\n]\n]"); // unbalanced: no crash, no indent below zero
}

TEST_CASE("read_reply reads ok and error replies, other frames are not replies", "[cli][json]") {
    auto ok = read_reply(R"({"op":"reply","id":1,"ok":true,"channel":"c","epoch":"e1",)"
                         R"("offset":17,"recovered":true})");
    REQUIRE(ok);
    CHECK(ok->id == 1u);
    CHECK(ok->ok);
    CHECK(ok->epoch == "e1");
    CHECK(ok->offset == 17u);
    CHECK(ok->recovered == true);

    auto refused = read_reply(R"({"op":"reply","id":null,"ok":false,)"
                              R"("error":{"code":429,"message":"too many commands"}})");
    REQUIRE(refused);
    CHECK_FALSE(refused->id);
    CHECK_FALSE(refused->ok);
    CHECK(refused->error_code == 429);
    CHECK(refused->error_message == "too many commands");

    CHECK_FALSE(read_reply(R"({"op":"presence","type":"join","channel":"c","userId":"7"})"));
    CHECK_FALSE(read_reply(R"({"id":"m-1","event":"e"})"));
    CHECK_FALSE(read_reply("{bad"));
}

TEST_CASE("api_error_message reads the API's error body", "[cli][json]") {
    CHECK(api_error_message(R"({"error":{"code":401,"message":"token expired"}})") ==
          "token expired");
    CHECK_FALSE(api_error_message(R"({"ok":true})"));
    CHECK_FALSE(api_error_message("<html>"));
}

TEST_CASE("classify_frame tells messages, replies and events apart", "[cli][json]") {
    CHECK(classify_frame(R"({"id":"m-1","event":"e","channel":"c","data":{"op":"reply"}})") ==
          frame_kind::message);
    CHECK(classify_frame(R"({"op":"reply","id":1,"ok":true})") == frame_kind::reply);
    CHECK(classify_frame(R"({ "op" : "reply", "id": 1 })") == frame_kind::reply);
    CHECK(classify_frame(R"({"op":"presence","type":"join"})") == frame_kind::event);
    CHECK(classify_frame(R"({"op":"notice","type":"unsubscribed"})") == frame_kind::event);
    CHECK(classify_frame("[1]") == frame_kind::message);
    CHECK(classify_frame("{bad") == frame_kind::message);
}
