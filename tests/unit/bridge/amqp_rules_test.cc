// The RabbitMQ bridge's rules and mapping (include/ringcast/bridge.h): --amqp-bridge
// EXCHANGE:BINDING_KEY:CHANNEL as read at start, AMQP topic matching, and templates
// expanded from a delivery's routing key and JSON body.
#include <ringcast/bridge.h>

#include <catch2/catch.hpp>

#include <string>

using namespace ringcast;
using namespace ringcast::bridge;

namespace {

amqp_mapper mapper_of(std::initializer_list<const char*> texts) {
    std::vector<amqp_rule> rules;
    for (const char* t : texts) {
        auto r = parse_amqp_rule(t);
        REQUIRE(r);
        rules.push_back(std::move(*r));
    }
    return amqp_mapper(std::move(rules));
}

amqp_message message(std::string_view exchange, std::string_view key, std::string_view body) {
    amqp_message m;
    m.exchange = exchange;
    m.routing_key = key;
    m.body = body;
    m.id = "m-1";
    return m;
}

} // namespace

TEST_CASE("an amqp rule: exchange, binding key, and the channel after the second colon",
          "[bridge][amqp]") {
    auto r = parse_amqp_rule("quota:quota.*:user:{userId}");
    REQUIRE(r);
    CHECK(r->exchange == "quota");
    CHECK(r->binding_key == "quota.*");
    CHECK(r->channel.text == "user:{userId}");
    CHECK(r->channel.needs_body);
    auto k = parse_amqp_rule("amq.topic:#:events-{routingKey}");
    REQUIRE(k);
    CHECK_FALSE(k->channel.needs_body);
}

TEST_CASE("amqp rules that are refused, each with a sentence", "[bridge][amqp]") {
    for (const char* bad : {"", "abc", "quota", "quota:quota.*", "quota:quota.*:",
                            ":quota.*:x", "quota::x", "quo ta:k:x", "quota:k y:x",
                            "quota:k:user:{userId", "quota:k:user:}", "quota:k:{}",
                            "quota:k:{a b}", "quota:k:sys:{userId}", "quota:k:a b",
                            "quota:k:job/{jobId}", "q/x:k:x", "quota:k/x:x"}) {
        auto r = parse_amqp_rule(bad);
        INFO(bad);
        CHECK_FALSE(r);
        if (!r) {
            CHECK_FALSE(r.error().empty());
        }
    }
    CHECK_FALSE(parse_amqp_rule("q:k:" + std::string(256, 'a')));
    CHECK_FALSE(parse_amqp_rule(std::string(128, 'e') + ":k:x"));
}

TEST_CASE("topic binding keys match routing keys as RabbitMQ does", "[bridge][amqp]") {
    CHECK(topic_matches("quota.*", "quota.exceeded"));
    CHECK_FALSE(topic_matches("quota.*", "quota"));
    CHECK_FALSE(topic_matches("quota.*", "quota.a.b"));
    CHECK(topic_matches("quota.#", "quota"));
    CHECK(topic_matches("quota.#", "quota.a.b"));
    CHECK(topic_matches("#", "anything.at.all"));
    CHECK(topic_matches("#.done", "job.7.done"));
    CHECK_FALSE(topic_matches("#.done", "job.7.failed"));
    CHECK(topic_matches("*.*.done", "job.7.done"));
    CHECK(topic_matches("a.#.z", "a.z"));
    CHECK(topic_matches("a.#.z", "a.b.c.z"));
    CHECK_FALSE(topic_matches("a.#.z", "a.b.c"));
    CHECK(topic_matches("device.state", "device.state"));
    CHECK_FALSE(topic_matches("device.state", "device.states"));
    // A '*' inside a word is literal.
    CHECK_FALSE(topic_matches("dev*.x", "device.x"));
    CHECK(topic_matches("#.#.#", "a"));
}

TEST_CASE("templates expand the routing key and the body's string and integer fields",
          "[bridge][amqp]") {
    auto m = mapper_of({"quota:quota.*:user:{userId}", "quota:quota.*:quota-{routingKey}",
                        "devices:device.#:device-{deviceId}@{exchange}"});
    amqp_mapped out;
    REQUIRE(m.map(message("quota", "quota.exceeded", R"({"userId":"u-42","used":7})"), out) ==
            amqp_mapping::mapped);
    CHECK(out.channels == std::vector<std::string>{"user:u-42", "quota-quota.exceeded"});
    CHECK(out.event == "quota.exceeded");
    CHECK(out.data == R"({"exchange":"quota","routingKey":"quota.exceeded","id":"m-1",)"
                      R"("redelivered":false,"body":{"userId":"u-42","used":7}})");
    REQUIRE(m.map(message("devices", "device.state.on", R"({"deviceId":17})"), out) ==
            amqp_mapping::mapped);
    CHECK(out.channels == std::vector<std::string>{"device-17@devices"});
    REQUIRE(m.map(message("devices", "device.x", R"({"deviceId":18446744073709551615})"), out) ==
            amqp_mapping::mapped);
    CHECK(out.channels == std::vector<std::string>{"device-18446744073709551615@devices"});
    REQUIRE(m.map(message("devices", "device.x", R"({"deviceId":-3})"), out) ==
            amqp_mapping::mapped);
    CHECK(out.channels == std::vector<std::string>{"device--3@devices"});
}

TEST_CASE("messages no rule takes are unmatched; those no channel comes of, unmapped",
          "[bridge][amqp]") {
    auto m = mapper_of({"quota:quota.*:user:{userId}"});
    amqp_mapped out;
    CHECK(m.map(message("quota", "billing.paid", R"({"userId":"u"})"), out) ==
          amqp_mapping::unmatched);
    CHECK(m.map(message("other", "quota.exceeded", R"({"userId":"u"})"), out) ==
          amqp_mapping::unmatched);
    for (const char* body : {R"({"used":1})", R"({"userId":""})", R"({"userId":"a b"})",
                             R"({"userId":1.5})", R"({"userId":true})", R"({"userId":null})",
                             R"({"userId":{"x":1}})", R"(["u"])", "u-42", "", "{"}) {
        INFO(body);
        CHECK(m.map(message("quota", "quota.exceeded", body), out) == amqp_mapping::unmapped);
        CHECK_FALSE(std::string(out.why).empty());
        CHECK(out.channels.empty());
    }
    // A value that turns the channel into a sys: one.
    auto s = mapper_of({"e:k:{ns}:x"});
    CHECK(s.map(message("e", "k", R"({"ns":"sys"})"), out) == amqp_mapping::unmapped);
    CHECK(s.map(message("e", "k", R"({"ns":"job"})"), out) == amqp_mapping::mapped);
    // Too large, or neither JSON nor UTF-8 text.
    auto any = mapper_of({"e:#:fixed"});
    amqp_message big = message("e", "k", "{}");
    big.body_too_large = true;
    CHECK(any.map(big, out) == amqp_mapping::unmapped);
    const std::string huge(max_event_bytes + 1, 'x');
    CHECK(any.map(message("e", "k", huge), out) == amqp_mapping::unmapped);
    CHECK(any.map(message("e", "k", "\xff\xfe"), out) == amqp_mapping::unmapped);
}

TEST_CASE("a body that is text goes into the data as a string", "[bridge][amqp]") {
    auto m = mapper_of({"e:#:fixed", "e:k.*:fixed"});
    amqp_mapped out;
    amqp_message msg = message("e", "k.1", "plain \"text\"");
    msg.redelivered = true;
    REQUIRE(m.map(msg, out) == amqp_mapping::mapped);
    CHECK(out.channels == std::vector<std::string>{"fixed"}); // the same channel once
    CHECK(out.data == R"({"exchange":"e","routingKey":"k.1","id":"m-1","redelivered":true,)"
                      R"("body":"plain \"text\""})");
    // A routing key that is no event name: the event is "message".
    REQUIRE(m.map(message("e", "", "1"), out) == amqp_mapping::mapped);
    CHECK(out.event == "message");
}

TEST_CASE("amqp queue prefixes", "[bridge][amqp]") {
    CHECK(valid_amqp_prefix("ringcast"));
    CHECK(valid_amqp_prefix("node-2.eu"));
    for (const char* bad : {"", "a b", "a*", "a:b", "a/b"}) {
        CHECK_FALSE(valid_amqp_prefix(bad));
    }
    CHECK_FALSE(valid_amqp_prefix(std::string(65, 'x')));
}
