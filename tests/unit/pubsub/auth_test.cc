// The engine's decisions for an authenticated session (include/ringcast/pubsub.h
// open_session with an identity): subscribe and publish by the namespace rules, the
// refresh command (verified, same user, permissions recomputed, a notice per revoked
// subscription ahead of the reply, the expiry timer moved) and its refusals. Tokens are
// signed by tests/unit/auth/token_maker, independently of src/auth.
#include "../auth/token_maker.h"
#include "fake_io.h"
#include "shown.h"

#include <ringcast/auth.h>
#include <ringcast/pubsub.h>

#include <catch2/catch.hpp>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

using namespace ringcast;
using namespace ringcast::pubsub;
using testing::fake_io;
using testing::handle;
using testing::texts_to;

namespace {

std::shared_ptr<const auth::namespace_table> rules() {
    auto table = std::make_shared<auth::namespace_table>();
    for (const char* rule : {"chat:public,publish", "private:private", "admin:role=admin"}) {
        auto parsed = auth::parse_namespace_rule(rule);
        REQUIRE(parsed);
        REQUIRE(table->add(std::move(*parsed)));
    }
    return table;
}

config with_rules() {
    config cfg;
    cfg.namespaces = rules();
    return cfg;
}

int64_t now_s() {
    return static_cast<int64_t>(std::time(nullptr));
}

auth::identity alice(std::vector<std::string> channels, std::vector<std::string> roles = {}) {
    auth::identity who;
    who.user_id = "alice";
    who.channels = std::move(channels);
    who.roles = std::move(roles);
    who.expires_at_s = now_s() + 600;
    return who;
}

/// An HS256 token for `sub` with `extra` claims (",\"channels\":[…]"), expiring in `ttl_s`.
std::string token(std::string_view sub, std::string_view extra, int64_t ttl_s = 600,
                  std::string_view secret = auth::test::keys().secret) {
    const std::string payload = "{\"sub\":\"" + std::string(sub) +
                                "\",\"exp\":" + std::to_string(now_s() + ttl_s) +
                                std::string(extra) + "}";
    return auth::test::sign_token("HS256", R"({"alg":"HS256","typ":"JWT"})", payload, nullptr,
                                  secret);
}

std::string command_text(std::string_view op, std::string_view channel, int id) {
    return "{\"op\":\"" + std::string(op) + "\",\"channel\":\"" + std::string(channel) +
           "\",\"id\":" + std::to_string(id) + "}";
}

std::string last(const fake_io& io, uint32_t slot) {
    const auto texts = texts_to(io, slot);
    REQUIRE_FALSE(texts.empty());
    return texts.back();
}

} // namespace

TEST_CASE("an authenticated session subscribes and publishes only where the namespace rules "
          "allow",
          "[pubsub][engine][auth]") {
    fake_io io;
    engine e(io, with_rules());
    session s;
    e.open_session(handle(1), s, alice({"private:test-progress-*"}));
    REQUIRE(s.identity() != nullptr);
    CHECK(s.user_id() == "alice");
    CHECK(e.stats().subscriptions == 1); // user:alice

    struct expectation {
        const char* channel;
        const char* error; // nullptr: allowed
    };
    const expectation subscribes[] = {
        {"lobby", nullptr},
        {"user:alice", nullptr},
        {"user:bob", "channel belongs to another user"},
        {"chat:room", nullptr},
        {"private:test-progress-42", nullptr},
        {"private:other", "channel not granted by token"},
        {"admin:ops", "role required"},
        {"unknown:x", "namespace not configured"},
    };
    int id = 1;
    for (const auto& x : subscribes) {
        INFO(x.channel);
        e.on_text(handle(1), s, command_text("subscribe", x.channel, id));
        const std::string reply = last(io, 1);
        INFO(reply);
        if (x.error == nullptr) {
            CHECK(reply.starts_with("{\"op\":\"reply\",\"id\":" + std::to_string(id) +
                                    ",\"ok\":true"));
        } else {
            CHECK(reply == "{\"op\":\"reply\",\"id\":" + std::to_string(id) +
                               R"(,"ok":false,"error":{"code":403,"message":")" + x.error + "\"}}");
        }
        ++id;
    }
    CHECK(e.stats().permission_refused == 4);

    e.on_text(handle(1), s, command_text("publish", "chat:room", 20));
    CHECK(last(io, 1) == R"({"op":"reply","id":20,"ok":true,"offset":1})");
    for (const char* channel : {"lobby", "private:test-progress-42", "user:alice"}) {
        INFO(channel);
        e.on_text(handle(1), s, command_text("publish", channel, 21));
        CHECK(
            last(io, 1) ==
            R"({"op":"reply","id":21,"ok":false,"error":{"code":403,"message":"publish not allowed"}})");
    }
    e.on_text(handle(1), s, command_text("publish", "admin:ops", 22));
    CHECK(last(io, 1) ==
          R"({"op":"reply","id":22,"ok":false,"error":{"code":403,"message":"role required"}})");
    CHECK(e.stats().permission_refused == 8);

    session admin;
    e.open_session(handle(2), admin, alice({}, {"admin"}));
    e.on_text(handle(2), admin, command_text("subscribe", "admin:ops", 1));
    CHECK(last(io, 2).starts_with(R"({"op":"reply","id":1,"ok":true)"));
    e.close_session(handle(1), s);
    e.close_session(handle(2), admin);
}

TEST_CASE("a token whose exp is far beyond any real date arms the expiry timer far ahead, "
          "never at once",
          "[pubsub][engine][auth]") {
    // The verifier accepts any whole-number exp that fits 64 bits (a "never expires" token
    // from an issuer that writes one); in milliseconds such an exp no longer fits, and a
    // product that wraps negative would close the session as expired right away.
    fake_io io;
    auth::key_set keys;
    REQUIRE(keys.add_secret(auth::test::keys().secret));
    auth::verify_options options;
    options.leeway_s = 30;
    auth::verifier tokens(keys, options);
    engine e(io, with_rules(), &tokens);
    io.now = 50000;
    const int64_t far[] = {int64_t{10'000'000'000'000'000}, INT64_MAX - 10, INT64_MAX};
    uint32_t slot = 1;
    for (const int64_t exp : far) {
        INFO("exp " << exp);
        session s;
        auth::identity who = alice({});
        who.expires_at_s = exp;
        const std::size_t before = io.timers.size();
        e.open_session(handle(slot), s, std::move(who));
        REQUIRE(io.timers.size() == before + 1);
        CHECK(io.timers.back().which == core::conn_timer::expiry);
        // At least as far ahead as a token valid for ten years would be.
        CHECK(io.timers.back().deadline_ms > io.now + uint64_t{10} * 365 * 86400 * 1000);
        e.close_session(handle(slot), s);
        ++slot;
    }
}

TEST_CASE("an authenticated session's expiry timer is armed at exp + leeway",
          "[pubsub][engine][auth]") {
    fake_io io;
    auth::key_set keys;
    REQUIRE(keys.add_secret(auth::test::keys().secret));
    auth::verify_options options;
    options.leeway_s = 5;
    auth::verifier tokens(keys, options);
    engine e(io, with_rules(), &tokens);
    session s;
    io.now = 50000;
    e.open_session(handle(1), s, alice({}));
    REQUIRE(io.timers.size() == 1);
    CHECK(io.timers[0].which == core::conn_timer::expiry);
    // exp is 600 s away, plus 5 s of leeway; the wall clock's seconds round down.
    CHECK(io.timers[0].deadline_ms > io.now + 604 * 1000);
    CHECK(io.timers[0].deadline_ms <= io.now + 605 * 1000);
    e.close_session(handle(1), s);
}

TEST_CASE("refresh replaces the token, revokes what the new claims no longer allow with a "
          "notice, and moves the expiry timer",
          "[pubsub][engine][auth]") {
    fake_io io;
    auth::key_set keys;
    REQUIRE(keys.add_secret(auth::test::keys().secret));
    auth::verifier tokens(keys, auth::verify_options{});
    engine e(io, with_rules(), &tokens);
    session s;
    e.open_session(handle(1), s, alice({"private:a", "private:b"}));
    e.on_text(handle(1), s, command_text("subscribe", "private:a", 1));
    e.on_text(handle(1), s, command_text("subscribe", "private:b", 2));
    e.on_text(handle(1), s, command_text("subscribe", "chat:room", 3));
    REQUIRE(e.stats().subscriptions == 4);
    const std::size_t timers_before = io.timers.size();
    const std::size_t sent_before = texts_to(io, 1).size();

    const std::string fresh = token("alice", R"(,"channels":["private:a"])", 900);
    e.on_text(handle(1), s, R"({"op":"refresh","token":")" + fresh + R"(","id":4})");
    const auto texts = texts_to(io, 1);
    REQUIRE(texts.size() == sent_before + 2);
    CHECK(
        texts[sent_before] ==
        R"({"op":"notice","type":"unsubscribed","channel":"private:b","reason":"channel not granted by token"})");
    CHECK(texts[sent_before + 1].starts_with(R"({"op":"reply","id":4,"ok":true,"expiresAt":)"));
    CHECK(e.stats().subscriptions == 3);
    CHECK(e.stats().refreshes == 1);
    CHECK(e.stats().revoked_subscriptions == 1);
    REQUIRE(io.timers.size() == timers_before + 1);
    CHECK(io.timers.back().which == core::conn_timer::expiry);
    REQUIRE(s.identity() != nullptr);
    CHECK(s.identity()->channels == std::vector<std::string>{"private:a"});

    SECTION("another user's token is refused with 403 and changes nothing") {
        e.on_text(handle(1), s,
                  R"({"op":"refresh","token":")" + token("bob", R"(,"channels":["*"])") +
                      R"(","id":5})");
        CHECK(
            last(io, 1) ==
            R"({"op":"reply","id":5,"ok":false,"error":{"code":403,"message":"token for another user"}})");
        CHECK(s.identity()->channels == std::vector<std::string>{"private:a"});
        CHECK(io.timers.size() == timers_before + 1);
    }
    SECTION("a token that does not verify is refused with 401 and its reason") {
        e.on_text(handle(1), s,
                  R"({"op":"refresh","token":")" +
                      token("alice", "", 600, "another-secret-of-at-least-32-bytes!") +
                      R"(","id":6})");
        CHECK(last(io, 1) ==
              R"({"op":"reply","id":6,"ok":false,"error":{"code":401,"message":"bad signature"}})");
        e.on_text(handle(1), s,
                  R"({"op":"refresh","token":")" + token("alice", "", -100) + R"(","id":7})");
        CHECK(last(io, 1) ==
              R"({"op":"reply","id":7,"ok":false,"error":{"code":401,"message":"token expired"}})");
        CHECK(e.stats().refresh_refused == 2);
        CHECK(io.timers.size() == timers_before + 1);
        CHECK(e.stats().subscriptions == 3);
    }
    e.close_session(handle(1), s);
}

TEST_CASE("refresh on a session without a token is refused with 400", "[pubsub][engine][auth]") {
    fake_io io;
    engine e(io, config{});
    session anonymous;
    e.open_session(handle(1), anonymous, "");
    e.on_text(handle(1), anonymous, R"({"op":"refresh","token":"a.b.c","id":1})");
    CHECK(
        last(io, 1) ==
        R"({"op":"reply","id":1,"ok":false,"error":{"code":400,"message":"authentication is off: no token to refresh"}})");
    session backend;
    e.open_session(handle(2), backend, "", true);
    e.on_text(handle(2), backend, R"({"op":"refresh","token":"a.b.c","id":1})");
    CHECK(
        last(io, 2) ==
        R"({"op":"reply","id":1,"ok":false,"error":{"code":400,"message":"a backend session has no token to refresh"}})");
    e.close_session(handle(1), anonymous);
    e.close_session(handle(2), backend);
}
