// pubsub command parser: every op, every refusal with its message, id echo, strict JSON
// everywhere in the message, and `data` kept byte for byte.
#include "shown.h"

#include <catch2/catch.hpp>

#include "ringcast/pubsub.h"

#include <string>
#include <thread>
#include <string_view>
#include <vector>

using namespace ringcast::pubsub;

namespace {

using testing::shown;

command accepted(std::string_view text) {
    INFO("command: " << shown(text));
    auto r = parse_command(text);
    if (!r) {
        FAIL_CHECK("refused: " << r.error().message);
    }
    REQUIRE(r);
    return *r;
}

command_error refused(std::string_view text) {
    INFO("command: " << shown(text));
    auto r = parse_command(text);
    REQUIRE_FALSE(r);
    return r.error();
}

bool inside(std::string_view view, std::string_view text) {
    return view.data() >= text.data() && view.data() + view.size() <= text.data() + text.size();
}

} // namespace

TEST_CASE("parse_command reads a subscribe with channel and id", "[pubsub][protocol]") {
    const std::string_view text = R"({"op":"subscribe","channel":"queue-updates","id":1})";
    const command c = accepted(text);
    CHECK(c.op == command_op::subscribe);
    CHECK(c.channel == "queue-updates");
    CHECK(c.has_id);
    CHECK(c.id == 1);
    CHECK_FALSE(c.has_recover);
    CHECK(inside(c.channel, text));
}

TEST_CASE("parse_command reads a subscribe with a recover point", "[pubsub][protocol]") {
    const std::string_view text =
        R"({"op":"subscribe","channel":"test-progress-42","recover":{"epoch":"e1","offset":17},"id":2})";
    const command c = accepted(text);
    CHECK(c.op == command_op::subscribe);
    CHECK(c.has_recover);
    CHECK(c.recover.epoch == "e1");
    CHECK(c.recover.offset == 17);
    CHECK(inside(c.recover.epoch, text));
    CHECK(c.id == 2);
}

TEST_CASE("parse_command reads a recover point given as a time, and refuses a mix of both "
          "forms",
          "[pubsub][protocol]") {
    const command c = accepted(
        R"({"op":"subscribe","channel":"feed:x","recover":{"since":1796522800887},"id":2})");
    CHECK(c.has_recover);
    CHECK(c.recover.by_time);
    CHECK(c.recover.since_ms == 1796522800887);
    CHECK_FALSE(accepted(R"({"op":"subscribe","channel":"feed:x","recover":{"epoch":"e1","offset":1}})")
                    .recover.by_time);
    CHECK(refused(R"({"op":"subscribe","channel":"feed:x","recover":{"since":5,"epoch":"e1","offset":1}})")
              .code == 400);
    CHECK(refused(R"({"op":"subscribe","channel":"feed:x","recover":{"since":5,"offset":1}})").code ==
          400);
    CHECK(refused(R"({"op":"subscribe","channel":"feed:x","recover":{"since":-1}})").code == 400);
    CHECK(refused(R"({"op":"subscribe","channel":"feed:x","recover":{"since":"5"}})").code == 400);
}

TEST_CASE("parse_command reads an unsubscribe", "[pubsub][protocol]") {
    const command c = accepted(R"({"op":"unsubscribe","channel":"queue-updates","id":3})");
    CHECK(c.op == command_op::unsubscribe);
    CHECK(c.channel == "queue-updates");
    CHECK(c.id == 3);
}

TEST_CASE("parse_command reads a publish with every field", "[pubsub][protocol]") {
    const std::string_view text =
        R"({"op":"publish","channel":"chat:lobby","event":"text","data":{"text":"hi"},"priority":1,"id":4})";
    const command c = accepted(text);
    CHECK(c.op == command_op::publish);
    CHECK(c.channel == "chat:lobby");
    CHECK(c.event == "text");
    CHECK(c.data == R"({"text":"hi"})");
    CHECK(c.prio == priority::critical);
    CHECK(c.id == 4);
    CHECK(inside(c.event, text));
    CHECK(inside(c.data, text));
}

TEST_CASE("parse_command fills publish defaults: event message, priority 3, data null",
          "[pubsub][protocol]") {
    const command c = accepted(R"({"op":"publish","channel":"chat:lobby"})");
    CHECK(c.event == "message");
    CHECK(c.prio == priority::normal);
    CHECK(c.data == "null");
    CHECK_FALSE(c.has_id);
}

TEST_CASE("parse_command reads a ping with or without id", "[pubsub][protocol]") {
    const command with_id = accepted(R"({"op":"ping","id":5})");
    CHECK(with_id.op == command_op::ping);
    CHECK(with_id.has_id);
    CHECK(with_id.id == 5);
    const command without = accepted(R"({"op":"ping"})");
    CHECK(without.op == command_op::ping);
    CHECK_FALSE(without.has_id);
}

TEST_CASE("parse_command accepts every priority from 1 to 4", "[pubsub][protocol]") {
    const std::vector<std::pair<std::string, priority>> cases = {
        {"1", priority::critical}, {"2", priority::high}, {"3", priority::normal}, {"4", priority::low}};
    for (const auto& [text, want] : cases) {
        const std::string cmd = R"({"op":"publish","channel":"c","priority":)" + text + "}";
        CHECK(accepted(cmd).prio == want);
    }
}

TEST_CASE("parse_command accepts ids from 0 to 2^53", "[pubsub][protocol]") {
    CHECK(accepted(R"({"op":"ping","id":0})").id == 0);
    CHECK(accepted(R"({"op":"ping","id":9007199254740992})").id == 9007199254740992ull);
    CHECK(accepted(R"({"op":"ping","id":  42  })").id == 42);
}

TEST_CASE("parse_command refuses ids that are not integers from 0 to 2^53", "[pubsub][protocol]") {
    const auto bad = GENERATE(as<std::string>{}, "9007199254740993", "18446744073709551615",
                              "18446744073709551616", "-1", "-0", "1.0", "1e3", "0.5", "01",
                              "\"1\"", "null", "true", "[1]", "{}");
    const std::string text = R"({"op":"ping","id":)" + bad + "}";
    const command_error e = refused(text);
    CHECK(e.code == 400);
    CHECK(e.message == "id must be an integer from 0 to 2^53");
    CHECK_FALSE(e.has_id);
}

TEST_CASE("parse_command echoes the id when it refuses a command for another reason",
          "[pubsub][protocol]") {
    SECTION("id after the bad field") {
        const command_error e = refused(R"({"op":"bogus","id":7})");
        CHECK(e.message == "unknown op");
        CHECK(e.has_id);
        CHECK(e.id == 7);
    }
    SECTION("id before the bad field") {
        const command_error e = refused(R"({"id":8,"op":"subscribe","channel":"bad name"})");
        CHECK(e.message == "channel is not a valid channel name");
        CHECK(e.has_id);
        CHECK(e.id == 8);
    }
    SECTION("missing field") {
        const command_error e = refused(R"({"op":"subscribe","id":9})");
        CHECK(e.message == "channel is missing");
        CHECK(e.has_id);
        CHECK(e.id == 9);
    }
    SECTION("broken JSON after the id") {
        const command_error e = refused(R"({"op":"ping","id":10,"x":[1,}})");
        CHECK(e.message == "command is not valid JSON");
        CHECK(e.has_id);
        CHECK(e.id == 10);
    }
    SECTION("invalid data after the id") {
        const command_error e = refused(R"({"id":11,"op":"publish","channel":"c","data":[1,]})");
        CHECK(e.message == "data is not valid JSON");
        CHECK(e.has_id);
        CHECK(e.id == 11);
    }
    SECTION("no id at all") {
        const command_error e = refused(R"({"op":"bogus"})");
        CHECK_FALSE(e.has_id);
    }
}

TEST_CASE("parse_command refuses a missing or unknown op", "[pubsub][protocol]") {
    CHECK(refused(R"({"id":1})").message == "op is missing");
    CHECK(refused(R"({})").message == "op is missing");
    for (const char* text : {R"({"op":"Subscribe","channel":"c"})", R"({"op":"","channel":"c"})",
                             R"({"op":1})", R"({"op":null})", R"({"op":["ping"]})",
                             R"({"op":"p\u0069ng"})", R"({"op":"reply"})"}) {
        const command_error e = refused(text);
        CHECK(e.code == 400);
        CHECK(e.message == "unknown op");
    }
}

TEST_CASE("parse_command refuses subscribe, unsubscribe and publish without a channel",
          "[pubsub][protocol]") {
    for (const char* op : {"subscribe", "unsubscribe", "publish"}) {
        const std::string text = std::string(R"({"op":")") + op + R"("})";
        const command_error e = refused(text);
        CHECK(e.code == 400);
        CHECK(e.message == "channel is missing");
    }
}

TEST_CASE("parse_command refuses channel names outside the charset or with escapes",
          "[pubsub][protocol]") {
    const std::string too_long = R"({"op":"subscribe","channel":")" + std::string(256, 'a') + R"("})";
    const auto text = GENERATE_COPY(as<std::string>{}, R"({"op":"subscribe","channel":""})",
                                    R"({"op":"subscribe","channel":"a b"})",
                                    R"({"op":"subscribe","channel":"caf\u00e9"})",
                                    R"({"op":"subscribe","channel":"café"})",
                                    R"({"op":"subscribe","channel":"a\/b"})",
                                    R"({"op":"subscribe","channel":"\u0061"})",
                                    R"({"op":"subscribe","channel":"a/b"})",
                                    R"({"op":"subscribe","channel":7})",
                                    R"({"op":"subscribe","channel":null})",
                                    R"({"op":"subscribe","channel":["a"]})", too_long);
    const command_error e = refused(text);
    CHECK(e.code == 400);
    CHECK(e.message == "channel is not a valid channel name");
}

TEST_CASE("parse_command accepts a 255-byte channel name", "[pubsub][protocol]") {
    const std::string name(255, 'z');
    const std::string text = R"({"op":"subscribe","channel":")" + name + R"("})";
    CHECK(accepted(text).channel == name);
}

TEST_CASE("parse_command refuses invalid event names", "[pubsub][protocol]") {
    const auto event = GENERATE(as<std::string>{}, R"("")", R"("a\"b")", R"("a\\b")",
                                R"("\u0041")", R"("é")", R"(1)", R"(null)");
    const std::string text = R"({"op":"publish","channel":"c","event":)" + event + "}";
    const command_error e = refused(text);
    CHECK(e.message == "event is not a valid event name");
}

TEST_CASE("parse_command accepts printable ASCII event names", "[pubsub][protocol]") {
    const std::string_view text = R"({"op":"publish","channel":"c","event":"test:progress !#$%&'()*+,-./~"})";
    CHECK(accepted(text).event == "test:progress !#$%&'()*+,-./~");
}

TEST_CASE("parse_command refuses priorities outside 1 to 4", "[pubsub][protocol]") {
    const auto p = GENERATE(as<std::string>{}, "0", "5", "-1", "3.0", "\"3\"", "null", "1e0", "03");
    const std::string text = R"({"op":"publish","channel":"c","priority":)" + p + "}";
    CHECK(refused(text).message == "priority must be an integer from 1 to 4");
}

TEST_CASE("parse_command refuses malformed recover points", "[pubsub][protocol]") {
    const std::string head = R"({"op":"subscribe","channel":"c","id":3,"recover":)";
    SECTION("not an object or incomplete") {
        const auto r = GENERATE(as<std::string>{}, "1", "null", R"("e1")", "[]", "{}",
                                R"({"epoch":"e1"})", R"({"offset":1})");
        const command_error e = refused(head + r + "}");
        CHECK(e.message == "recover must be an object with epoch and offset, or with since");
        CHECK(e.id == 3);
    }
    SECTION("bad epoch") {
        const auto epoch = GENERATE(as<std::string>{}, R"("")", R"("a:b")", R"("\u0061")", "1",
                                    R"(")" + std::string(65, 'e') + R"(")");
        const command_error e = refused(head + R"({"epoch":)" + epoch + R"(,"offset":1}})");
        CHECK(e.message == "recover.epoch must be 1-64 characters of [A-Za-z0-9_.@-]");
    }
    SECTION("bad offset") {
        const auto offset = GENERATE(as<std::string>{}, "-1", "1.5", R"("1")", "18446744073709551616");
        const command_error e = refused(head + R"({"epoch":"e","offset":)" + offset + "}}");
        CHECK(e.message == "recover.offset must be an integer from 0 to 2^64-1");
    }
}

TEST_CASE("parse_command reads ack and presence", "[pubsub][protocol]") {
    auto ack = parse_command(R"({"op":"ack","channel":"orders:1","offset":18446744073709551615,"id":3})");
    REQUIRE(ack);
    CHECK(ack->op == command_op::ack);
    CHECK(ack->channel == "orders:1");
    CHECK(ack->offset == UINT64_MAX);
    CHECK(ack->id == 3);
    auto presence = parse_command(R"({"op":"presence","channel":"room:7"})");
    REQUIRE(presence);
    CHECK(presence->op == command_op::presence);
    CHECK(presence->channel == "room:7");
    const auto refused = [](std::string_view text) {
        auto r = parse_command(text);
        REQUIRE_FALSE(r);
        return std::string(r.error().message);
    };
    CHECK(refused(R"({"op":"ack","channel":"orders:1"})") == "offset is missing");
    CHECK(refused(R"({"op":"ack","offset":1})") == "channel is missing");
    CHECK(refused(R"({"op":"presence"})") == "channel is missing");
    CHECK(refused(R"({"op":"ack","channel":"o","offset":-1})") ==
          "offset must be an integer from 0 to 2^64-1");
    CHECK(refused(R"({"op":"ack","channel":"o","offset":"1"})") ==
          "offset must be an integer from 0 to 2^64-1");
    CHECK(refused(R"({"op":"ack","channel":"o","offset":18446744073709551616})") ==
          "offset must be an integer from 0 to 2^64-1");
}

TEST_CASE("parse_command accepts the largest recover offset and ignores unknown recover keys",
          "[pubsub][protocol]") {
    const command c = accepted(
        R"({"op":"subscribe","channel":"c","recover":{"x":[1,{"y":null}],"epoch":"E.1@x-_","offset":18446744073709551615}})");
    CHECK(c.recover.epoch == "E.1@x-_");
    CHECK(c.recover.offset == 18446744073709551615ull);
}

TEST_CASE("parse_command keeps data byte for byte", "[pubsub][protocol]") {
    const auto data = GENERATE(as<std::string>{}, R"({"text":"hi"})", R"({ "a" : [ 1 , 2.5e-3 , { } ] , "b" : "x\"y\\z\u00e9" })",
                               R"([ ])", R"([1,[2,[3,[4]]]])", R"("str\ning")", R"("")", R"("é✓😀")",
                               "-0", "0", "12.5E+10", "-1e-7", "18446744073709551615",
                               "-9223372036854775808", "1e-400", "123456789012345678901234567890.5", "true",
                               "false", "null", "{\n\t\"deep\" :\r\n {\"x\":[true ,false,null]}\n}");
    SECTION("compact") {
        const std::string text = R"({"op":"publish","channel":"c","data":)" + data + R"(,"id":1})";
        const command c = accepted(text);
        CHECK(shown(c.data) == shown(data));
        CHECK(inside(c.data, text));
    }
    SECTION("surrounded by whitespace, last field") {
        const std::string text = "{\"op\":\"publish\",\"channel\":\"c\",\"data\": \n\t " + data + " \r\n}";
        CHECK(shown(accepted(text).data) == shown(data));
    }
}

TEST_CASE("parse_command refuses data beyond simdjson's documented limits", "[pubsub][protocol]") {
    // RFC 8259 §9 lets a parser limit number range; §8.2 leaves unpaired surrogates
    // undefined. simdjson refuses integer literals outside int64/uint64, numbers that
    // overflow a double, and unpaired surrogate escapes: those are never forwarded.
    const auto data = GENERATE(as<std::string>{}, "18446744073709551616", "-9223372036854775809",
                               "1e309", "[-1e400]", R"("\ud800")", R"({"k":"\udc00"})");
    const std::string text = R"({"op":"publish","channel":"c","data":)" + data + "}";
    CHECK(refused(text).message == "data is not valid JSON");
}

TEST_CASE("parse_command accepts a surrogate pair escape in data", "[pubsub][protocol]") {
    CHECK(accepted(R"({"op":"publish","channel":"c","data":"\ud83d\ude00"})").data ==
          R"("\ud83d\ude00")");
}

TEST_CASE("parse_command keeps the last value of a duplicate key", "[pubsub][protocol]") {
    const command c = accepted(
        R"({"op":"ping","op":"publish","channel":"a","channel":"b","data":1,"data":[2],"id":1,"id":2,"priority":4,"priority":2})");
    CHECK(c.op == command_op::publish);
    CHECK(c.channel == "b");
    CHECK(c.data == "[2]");
    CHECK(c.id == 2);
    CHECK(c.prio == priority::high);
}

TEST_CASE("parse_command refuses a duplicate key whose value is invalid", "[pubsub][protocol]") {
    CHECK(refused(R"({"op":"publish","channel":"c","data":[,],"data":1})").message ==
          "data is not valid JSON");
    CHECK(refused(R"({"op":"ping","id":1,"id":-1})").message == "id must be an integer from 0 to 2^53");
}

TEST_CASE("parse_command ignores unknown keys whose values are valid JSON", "[pubsub][protocol]") {
    const command c = accepted(
        R"({"x":{"a":[1,2,{"b":null}]},"op":"ping","y":"s\"\\\u0041","z":-1.5e300,"w":[],"v":true,"é":false})");
    CHECK(c.op == command_op::ping);
}

TEST_CASE("parse_command matches keys after unescaping them", "[pubsub][protocol]") {
    const command c = accepted(R"({"\u006fp":"subscribe","ch\u0061nnel":"c","\u0069d":4})");
    CHECK(c.op == command_op::subscribe);
    CHECK(c.channel == "c");
    CHECK(c.id == 4);
}

TEST_CASE("parse_command checks known fields whatever the op", "[pubsub][protocol]") {
    CHECK(refused(R"({"op":"ping","channel":"bad name"})").message ==
          "channel is not a valid channel name");
    CHECK(refused(R"({"op":"ping","priority":9})").message ==
          "priority must be an integer from 1 to 4");
}

TEST_CASE("parse_command refuses a message that is not a JSON object", "[pubsub][protocol]") {
    const auto text = GENERATE(as<std::string>{}, "[]", R"(["op","ping"])", R"("op")", "1", "null", "true");
    const command_error e = refused(text);
    CHECK(e.code == 400);
    CHECK(e.message == "command must be a JSON object");
}

TEST_CASE("parse_command refuses invalid JSON anywhere in the message", "[pubsub][protocol]") {
    const auto text = GENERATE(as<std::string>{},
        // the document itself
        "", " ", "{", "}", R"({"op":"ping")", R"({"op":"ping",})", R"({"op":"ping"}})",
        R"({"op":"ping"} x)", R"({"op":"ping"}{})", R"({"op":"ping"},)", R"({"op" "ping"})",
        R"({"op":"ping" "id":1})", R"({,"op":"ping"})", R"({"op":"ping"])", R"({'op':'ping'})",
        R"({op:"ping"})", R"({"op":"ping"/*c*/})", R"({"op":"pi)",
        std::string("{\"op\":\"ping\"}\0", 14), std::string("{\"op\":\"p\0ng\"}", 13),
        // keys
        R"({"a\x":1,"op":"ping"})", "{\"\xff\":1,\"op\":\"ping\"}", R"({1:2,"op":"ping"})",
        R"({"\ud800":1,"op":"ping"})",
        // unknown keys' values
        R"({"op":"ping","x":tru})", R"({"op":"ping","x":nul})", R"({"op":"ping","x":01})",
        R"({"op":"ping","x":1.})", R"({"op":"ping","x":.5})", R"({"op":"ping","x":-})",
        R"({"op":"ping","x":+1})", R"({"op":"ping","x":NaN})", R"({"op":"ping","x":Infinity})",
        R"({"op":"ping","x":0x10})", R"({"op":"ping","x":[1,]})", R"({"op":"ping","x":[,1]})",
        R"({"op":"ping","x":{"a":1,}})", R"({"op":"ping","x":{"a"}})", R"({"op":"ping","x":{"a":}})",
        R"({"op":"ping","x":[1}})", R"({"op":"ping","x":{"a":1]})", R"({"op":"ping","x":"\x"})",
        R"({"op":"ping","x":"\u12"})", R"({"op":"ping","x":"\uZZZZ"})", "{\"op\":\"ping\",\"x\":\"a\tb\"}",
        "{\"op\":\"ping\",\"x\":\"\xc3\x28\"}", "{\"op\":\"ping\",\"x\":\"\xed\xa0\x80\"}",
        "{\"op\":\"ping\",\"x\":\"\xf4\x90\x80\x80\"}", "{\"op\":\"ping\",\"x\":\"\xc0\xaf\"}",
        R"({"op":"ping","x":[[[[]]]})", R"({"op":"ping","x":tRue})", R"({"op":"ping","x":truefalse})",
        // data
        R"({"op":"publish","channel":"c","data":})", R"({"op":"publish","channel":"c","data":[1 2]})",
        R"({"op":"publish","channel":"c","data":{"a":1 "b":2}})", R"({"op":"publish","channel":"c","data":"\q"})",
        "{\"op\":\"publish\",\"channel\":\"c\",\"data\":\"\xff\"}", R"({"op":"publish","channel":"c","data":1e})",
        R"({"op":"publish","channel":"c","data":[}")", R"({"op":"publish","channel":"c","data":undefined})",
        // a stray ':' or '}' right after a value (on-demand skips unread values by counting
        // brackets; found by the fuzzer)
        R"({"op":"ping","x":"c":"e1"},"id":2})", R"({"op":"ping","x":1:2},"id":2})",
        R"({"op":"ping","x":true:2},"id":2})", R"({"op":"ping","x":null:2},"id":2})",
        R"({"op":"ping","id":1:2},"id":2})", R"({"op":"ping","x":[1]:2},"id":2})",
        R"({"op":"subscribe","channel":"c":"e1","offset"&17},"id":2})",
        R"({"op":"subscribe","channel":"c","recover":{"epoch":"e":1},"offset":1}})",
        R"({"op":"publish","channel":"c","data":"x":1},"id":2})",
        // names with raw bytes JSON forbids
        "{\"op\":\"subscribe\",\"channel\":\"a\x01\"}", "{\"op\":\"subscribe\",\"channel\":\"\xc3\"}");
    INFO("command: " << shown(text));
    const auto r = parse_command(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == 400);
}

TEST_CASE("parse_command accepts whitespace around every token", "[pubsub][protocol]") {
    const command c = accepted(" \t\r\n{ \"op\" : \"publish\" ,\n\"channel\"\t:\"c\" , \"id\" : 3 } \n");
    CHECK(c.op == command_op::publish);
    CHECK(c.channel == "c");
    CHECK(c.id == 3);
}

TEST_CASE("parse_command refuses data nested deeper than the parser's depth limit",
          "[pubsub][protocol]") {
    auto nested = [](std::size_t depth) {
        return R"({"op":"publish","channel":"c","data":)" + std::string(depth, '[') +
               std::string(depth, ']') + "}";
    };
    CHECK(parse_command(nested(200)));
    CHECK_FALSE(parse_command(nested(5000)));
}

TEST_CASE("parse_command views point into the caller's text, not a copy", "[pubsub][protocol]") {
    std::string text = R"({"op":"publish","channel":"chat:a","event":"e","data":[1]})";
    const command c = accepted(text);
    text[text.find("chat:a")] = 'C';
    text[text.find("[1]") + 1] = '7';
    CHECK(c.channel == "Chat:a");
    CHECK(c.data == "[7]");
}

TEST_CASE("parse_command handles a large message after small ones on the same thread",
          "[pubsub][protocol]") {
    CHECK(accepted(R"({"op":"ping"})").op == command_op::ping);
    std::string big = R"({"op":"publish","channel":"c","data":[)";
    for (int i = 0; i < 50000; ++i) {
        big += i == 0 ? "" : ",";
        big += R"({"k":"v"})";
    }
    big += "]}";
    const command c = accepted(big);
    CHECK(c.data.size() == big.size() - std::string_view(R"({"op":"publish","channel":"c","data":})").size());
    CHECK(accepted(R"({"op":"ping","id":1})").id == 1);
}

TEST_CASE("parse_command refuses an empty message even as a thread's first input",
          "[pubsub][protocol]") {
    // The per-thread buffer is allocated lazily; an empty first input must not skip that.
    command_error first{};
    bool refused_empty = false;
    std::thread([&] {
        const auto r = parse_command(std::string_view());
        refused_empty = !r;
        if (!r) {
            first = r.error();
        }
    }).join();
    CHECK(refused_empty);
    CHECK(first.message == "command is not valid JSON");
    std::thread([&] { refused_empty = !parse_publish_body(std::string_view()); }).join();
    CHECK(refused_empty);
}

TEST_CASE("parse_command reads a refresh with its token; the token is required and checked",
          "[pubsub][protocol][auth]") {
    const command c = accepted(R"({"op":"refresh","token":"aGVhZA.cGF5bG9hZA.c2ln-_","id":9})");
    CHECK(c.op == command_op::refresh);
    CHECK(c.token == "aGVhZA.cGF5bG9hZA.c2ln-_");
    CHECK(c.has_id);
    CHECK(c.id == 9);
    CHECK(refused(R"({"op":"refresh","id":1})").message == "token is missing");
    CHECK(refused(R"({"op":"refresh","id":1})").id == 1);
    for (const char* bad : {R"({"op":"refresh","token":""})", R"({"op":"refresh","token":"a b"})",
                            R"({"op":"refresh","token":"a\u002eb"})",
                            R"({"op":"refresh","token":7})",
                            R"({"op":"refresh","token":"a+b/c="})"}) {
        INFO(bad);
        CHECK(refused(bad).message.starts_with("token must be a compact JWT"));
    }
    CHECK(valid_token(std::string(max_token_chars, 'a')));
    CHECK_FALSE(valid_token(std::string(max_token_chars + 1, 'a')));
}
