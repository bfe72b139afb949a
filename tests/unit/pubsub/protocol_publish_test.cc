// pubsub backend publish bodies: single requests, batches, field errors that name the
// field (and the batch index), and strict JSON everywhere.
#include "shown.h"

#include <catch2/catch.hpp>

#include "ringcast/pubsub.h"

#include <string>
#include <string_view>
#include <vector>

using namespace ringcast::pubsub;

namespace {

using testing::shown;

std::vector<publish_request> accepted(std::string_view body) {
    INFO("body: " << shown(body));
    auto r = parse_publish_body(body);
    if (!r) {
        FAIL_CHECK("refused: " << r.error().message);
    }
    REQUIRE(r);
    return std::move(r).value().requests;
}

body_shape shape_of(std::string_view body) {
    INFO("body: " << shown(body));
    auto r = parse_publish_body(body);
    REQUIRE(r);
    return r->shape;
}

std::string refused(std::string_view body) {
    INFO("body: " << shown(body));
    auto r = parse_publish_body(body);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == 400);
    return r.error().message;
}

std::string batch_of(std::size_t n) {
    std::string body = R"({"messages":[)";
    for (std::size_t i = 0; i < n; ++i) {
        body += i == 0 ? "" : ",";
        body += R"({"channel":"c)" + std::to_string(i) + R"(","data":)" + std::to_string(i) + "}";
    }
    return body + "]}";
}

} // namespace

TEST_CASE("parse_publish_body reads a single request with every field", "[pubsub][protocol]") {
    const std::string_view body =
        R"({"channel":"test-progress-42","event":"test:progress","data":{"pct": 40},"priority":2,"userId":"7"})";
    const auto requests = accepted(body);
    REQUIRE(requests.size() == 1);
    const publish_request& r = requests[0];
    CHECK(r.channel == "test-progress-42");
    CHECK(r.event == "test:progress");
    CHECK(r.data == R"({"pct": 40})");
    CHECK(r.prio == priority::high);
    CHECK(r.user_id == "7");
    CHECK(r.channels.empty());
    CHECK(r.data.data() > body.data());
    CHECK(r.data.data() + r.data.size() < body.data() + body.size());
}

TEST_CASE("parse_publish_body fills defaults and leaves every field optional",
          "[pubsub][protocol]") {
    const auto requests = accepted("{}");
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].channel.empty());
    CHECK(requests[0].event == "message");
    CHECK(requests[0].data == "null");
    CHECK(requests[0].prio == priority::normal);
    CHECK(requests[0].user_id.empty());
}

TEST_CASE("parse_publish_body reads a broadcast to a channel list", "[pubsub][protocol]") {
    const auto requests = accepted(R"({"event":"e","data":[1],"channels":["a","b:c","a"]})");
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].channels == std::vector<std::string_view>{"a", "b:c", "a"});
}

TEST_CASE("parse_publish_body reads a batch in order", "[pubsub][protocol]") {
    const auto requests = accepted(
        R"({"messages":[{"channel":"a","data":1},{"channel":"b","event":"x","priority":1},{"userId":"u"}]})");
    REQUIRE(requests.size() == 3);
    CHECK(requests[0].channel == "a");
    CHECK(requests[0].data == "1");
    CHECK(requests[1].channel == "b");
    CHECK(requests[1].event == "x");
    CHECK(requests[1].prio == priority::critical);
    CHECK(requests[1].data == "null");
    CHECK(requests[2].user_id == "u");
}

TEST_CASE("parse_publish_body accepts 1 and 1000 requests and refuses 0 and 1001",
          "[pubsub][protocol]") {
    CHECK(accepted(batch_of(1)).size() == 1);
    const std::string body = batch_of(1000); // the views point into it
    const auto thousand = accepted(body);
    REQUIRE(thousand.size() == 1000);
    CHECK(thousand[999].channel == "c999");
    CHECK(thousand[999].data == "999");
    CHECK(refused(batch_of(0)) == "messages must be an array of 1 to 1000 requests");
    CHECK(refused(batch_of(1001)) == "messages must be an array of 1 to 1000 requests");
    CHECK(refused(R"({"messages":{}})") == "messages must be an array of 1 to 1000 requests");
}

TEST_CASE("parse_publish_body names the batch index and field of a refused item",
          "[pubsub][protocol]") {
    const std::string head = R"({"messages":[{"channel":"a"},{"channel":"b"},{"channel":"c"},)";
    CHECK(refused(head + R"({"channel":"bad name"}]})") ==
          "messages[3].channel is not a valid channel name");
    CHECK(refused(head + R"({"event":""}]})") == "messages[3].event is not a valid event name");
    CHECK(refused(head + R"({"data":[1,]}]})") == "messages[3].data is not valid JSON");
    CHECK(refused(head + R"({"priority":0}]})") == "messages[3].priority must be an integer from 1 to 4");
    CHECK(refused(head + R"({"userId":"a:b"}]})") ==
          "messages[3].userId is not a valid user id (1-64 characters of [A-Za-z0-9_.@-])");
    CHECK(refused(head + R"({"channels":["a","b c"]}]})") ==
          "messages[3].channels[1] is not a valid channel name");
    CHECK(refused(head + R"({"channels":[]}]})") ==
          "messages[3].channels must be an array of 1 to 1000 channel names");
    CHECK(refused(head + R"(7]})") == "messages[3] must be an object");
}

TEST_CASE("parse_publish_body names the field of a refused single request", "[pubsub][protocol]") {
    CHECK(refused(R"({"channel":"a/b"})") == "channel is not a valid channel name");
    CHECK(refused(R"({"channel":"\u0061"})") == "channel is not a valid channel name");
    CHECK(refused(R"({"event":"a\"b"})") == "event is not a valid event name");
    CHECK(refused(R"({"data":tru})") == "data is not valid JSON");
    CHECK(refused(R"({"priority":"3"})") == "priority must be an integer from 1 to 4");
    CHECK(refused(R"({"userId":""})") ==
          "userId is not a valid user id (1-64 characters of [A-Za-z0-9_.@-])");
    CHECK(refused(R"({"channels":"a"})") == "channels must be an array of 1 to 1000 channel names");
    CHECK(refused(R"({"channels":[1]})") == "channels[0] is not a valid channel name");
}

TEST_CASE("parse_publish_body accepts 1000 channels and refuses 1001", "[pubsub][protocol]") {
    auto body = [](std::size_t n) {
        std::string s = R"({"channels":[)";
        for (std::size_t i = 0; i < n; ++i) {
            s += (i == 0 ? "\"c" : ",\"c") + std::to_string(i) + "\"";
        }
        return s + "]}";
    };
    CHECK(accepted(body(1000))[0].channels.size() == 1000);
    CHECK(refused(body(1001)) == "channels must be an array of 1 to 1000 channel names");
}

TEST_CASE("parse_publish_body refuses messages combined with request fields",
          "[pubsub][protocol]") {
    CHECK(refused(R"({"channel":"a","messages":[{"channel":"b"}]})") ==
          "messages cannot be combined with channel, event, data, priority, userId or channels");
    CHECK(refused(R"({"messages":[{"channel":"b"}],"data":1})") ==
          "messages cannot be combined with channel, event, data, priority, userId or channels");
}

TEST_CASE("parse_publish_body keeps the last of duplicate keys and ignores unknown ones",
          "[pubsub][protocol]") {
    const auto requests = accepted(
        R"({"messages":[{"channel":"x"}],"ignored":{"a":[1,2]},"messages":[{"channel":"a","channel":"b","extra":null}]})");
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].channel == "b");
}

TEST_CASE("parse_publish_body keeps data byte for byte", "[pubsub][protocol]") {
    const auto data = GENERATE(as<std::string>{}, "{ \"a\" : [ 1, 2 ] }", "\"s\\n\"", "-1.5e3",
                               "true", "false", "null", "[ ]");
    const std::string body = R"({"messages":[{"data": )" + data + R"( }]})";
    CHECK(shown(accepted(body)[0].data) == shown(data));
}

TEST_CASE("parse_publish_body refuses a body that is not a JSON object", "[pubsub][protocol]") {
    CHECK(refused("[]") == "body must be a JSON object");
    CHECK(refused("\"x\"") == "body must be a JSON object");
}

TEST_CASE("parse_publish_body refuses invalid JSON anywhere", "[pubsub][protocol]") {
    const auto body = GENERATE(as<std::string>{}, "", "{", R"({"channel":"a")", R"({"channel":"a"} x)",
                               R"({"channel":"a",})", R"({"x":[1,,2]})", R"({"x":"\x"})",
                               "{\"x\":\"\xff\"}", R"({"messages":[{"channel":"a"},]})",
                               R"({"messages":[{"channel":"a"} {"channel":"b"}]})",
                               R"({"messages":[{"x":01}]})", R"({"messages":[{"channel":"a"}})",
                               R"({"channels":["a",]})", R"({"channels":["a" "b"]})",
                               R"({"channel":"a":1},"x":2})", R"({"channels":["a":1]})",
                               R"({"messages":[{"userId":"u":1}],"x":2})");
    INFO("body: " << shown(body));
    const auto r = parse_publish_body(body);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == 400);
}

TEST_CASE("parse_publish_body takes the batch shape from the parsed key, not from the text",
          "[pubsub][protocol]") {
    CHECK(shape_of(R"({"channel":"c","data":1})") == body_shape::single);
    // The word inside values and unknown keys' values is data, not shape.
    CHECK(shape_of(R"({"channel":"c","event":"messages","data":{"messages":[1]}})") ==
          body_shape::single);
    CHECK(shape_of(R"({"channel":"c","data":"\"messages\""})") == body_shape::single);
    CHECK(shape_of(R"({"channel":"c","note":{"messages":[{"channel":"x"}]}})") ==
          body_shape::single);
    // An escaped key is the same key once unescaped.
    CHECK(shape_of(R"({"\u006dessages":[{"channel":"c"}]})") == body_shape::batch);
    // A batch of one is still a batch: its reply is a list of one.
    CHECK(shape_of(R"({"messages":[{"channel":"c"}]})") == body_shape::batch);
    CHECK(shape_of(batch_of(3)) == body_shape::batch);
}
