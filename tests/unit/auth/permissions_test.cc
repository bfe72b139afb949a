// Tests for src/auth/permissions.cc: --namespace parsing and the subscribe / publish rules.
#include <ringcast/auth.h>

#include <catch2/catch.hpp>
#include <string>

using namespace ringcast::auth;

namespace {

namespace_table table_of(std::initializer_list<const char*> options) {
    namespace_table table;
    for (const char* option : options) {
        auto rule = parse_namespace_rule(option);
        INFO(option << ": " << (rule ? "" : rule.error()));
        REQUIRE(rule);
        REQUIRE(table.add(std::move(*rule)));
    }
    return table;
}

identity user(std::string id, std::vector<std::string> channels = {},
              std::vector<std::string> roles = {}) {
    identity who;
    who.user_id = std::move(id);
    who.channels = std::move(channels);
    who.roles = std::move(roles);
    return who;
}

std::string verdict(access_verdict v) {
    return v.allowed ? "allowed" : std::string(v.reason);
}

} // namespace

TEST_CASE("--namespace parses NAME:RULE[,RULE...]", "[auth][namespaces]") {
    auto chat = parse_namespace_rule("chat:public,publish");
    REQUIRE(chat);
    CHECK(chat->name == "chat");
    CHECK(chat->access == ns_access::public_access);
    CHECK(chat->publish);
    auto team = parse_namespace_rule("team:private");
    REQUIRE(team);
    CHECK(team->access == ns_access::private_access);
    CHECK_FALSE(team->publish);
    auto admin = parse_namespace_rule("ops.admin:role=admin,role=ops,publish");
    REQUIRE(admin);
    CHECK(admin->access == ns_access::role);
    CHECK(admin->roles == std::vector<std::string>{"admin", "ops"});
}

TEST_CASE("--namespace carries history per namespace, with or without an access rule",
          "[auth][namespaces]") {
    auto chat = parse_namespace_rule("chat:public,publish,history=100,history-ttl=300");
    REQUIRE(chat);
    CHECK(chat->access_given);
    CHECK(chat->publish);
    CHECK(chat->history == 100);
    CHECK(chat->history_ttl_s == 300);
    auto feed = parse_namespace_rule("feed:history=5");
    REQUIRE(feed);
    CHECK_FALSE(feed->access_given);
    CHECK(feed->access == ns_access::public_access);
    CHECK(feed->history == 5);
    CHECK(feed->history_ttl_s == 0);
    auto most = parse_namespace_rule("m:history=100000,history-ttl=31536000");
    REQUIRE(most);
    CHECK(most->history == max_history_messages);
    CHECK(most->history_ttl_s == max_history_ttl_s);
    auto plain = parse_namespace_rule("team:private");
    REQUIRE(plain);
    CHECK(plain->access_given);
    CHECK(plain->history == 0);
}

TEST_CASE("--namespace carries presence and ack, which need no access word", "[auth][namespaces]") {
    auto room = parse_namespace_rule("room:presence");
    REQUIRE(room);
    CHECK(room->presence);
    CHECK_FALSE(room->ack);
    CHECK_FALSE(room->access_given);
    auto orders = parse_namespace_rule("orders:private,history=50,ack,presence");
    REQUIRE(orders);
    CHECK(orders->ack);
    CHECK(orders->presence);
    CHECK(orders->history == 50);
    const auto error = [](const char* option) {
        auto r = parse_namespace_rule(option);
        return r ? std::string("ok") : r.error();
    };
    CHECK(error("orders:ack").find("ack needs history=N") != std::string::npos);
    CHECK(error("orders:public,ack").find("ack needs history=N") != std::string::npos);
    CHECK(error("room:presence,presence").find("presence given twice") != std::string::npos);
    CHECK(error("o:history=5,ack,ack").find("ack given twice") != std::string::npos);
    CHECK(error("o:Presence").find("unknown rule") != std::string::npos);
}

TEST_CASE("--namespace refusals say what is wrong", "[auth][namespaces]") {
    const auto error = [](const char* option) {
        auto r = parse_namespace_rule(option);
        return r ? std::string("ok") : r.error();
    };
    CHECK(error("chat").find("NAME:RULE") != std::string::npos);
    CHECK(error(":public").find("name") != std::string::npos);
    CHECK(error("c h:public").find("name") != std::string::npos);
    CHECK(error("user:public").find("built in") != std::string::npos);
    CHECK(error("sys:public").find("built in") != std::string::npos);
    CHECK(error("sys:role=admin,publish").find("built in") != std::string::npos);
    CHECK(error("chat:").find("unknown rule") != std::string::npos);
    CHECK(error("chat:publish").find("needs one of") != std::string::npos);
    CHECK(error("chat:public,private").find("more than one") != std::string::npos);
    CHECK(error("chat:role=a,public").find("more than one") != std::string::npos);
    CHECK(error("chat:public,role=a").find("more than one") != std::string::npos);
    CHECK(error("chat:role=").find("role name") != std::string::npos);
    CHECK(error("chat:role=a,role=a").find("twice") != std::string::npos);
    CHECK(error("chat:public,publish,publish").find("twice") != std::string::npos);
    CHECK(error("chat:Public").find("unknown rule") != std::string::npos);
    CHECK(error("chat:public,").find("unknown rule") != std::string::npos);
    CHECK(error("chat:history=0").find("from 1 to 100000") != std::string::npos);
    CHECK(error("chat:history=100001").find("from 1 to 100000") != std::string::npos);
    CHECK(error("chat:history=").find("from 1 to") != std::string::npos);
    CHECK(error("chat:history=1x").find("from 1 to") != std::string::npos);
    CHECK(error("chat:history=-1").find("from 1 to") != std::string::npos);
    CHECK(error("chat:history=99999999999999").find("from 1 to") != std::string::npos);
    CHECK(error("chat:history=5,history=6").find("twice") != std::string::npos);
    CHECK(error("chat:history=5,history-ttl=0").find("from 1 to 31536000") !=
          std::string::npos);
    CHECK(error("chat:history-ttl=60").find("needs history=") != std::string::npos);
    CHECK(error("chat:public,history-ttl=60").find("needs history=") != std::string::npos);
    CHECK(error("chat:publish,history=5").find("needs one of") != std::string::npos);
    namespace_table table = table_of({"chat:public"});
    auto again = parse_namespace_rule("chat:private");
    REQUIRE(again);
    CHECK_FALSE(table.add(std::move(*again)));
}

TEST_CASE("channels without a namespace are public; user:<id> is its user's only",
          "[auth][permissions]") {
    const namespace_table none;
    const identity alice = user("alice");
    CHECK(verdict(may_subscribe(alice, "lobby", none)) == "allowed");
    CHECK(verdict(may_subscribe(alice, "user:alice", none)) == "allowed");
    CHECK(verdict(may_subscribe(alice, "user:bob", none)) == "channel belongs to another user");
    CHECK(verdict(may_subscribe(alice, "user:alice2", none)) == "channel belongs to another user");
    CHECK(verdict(may_subscribe(alice, "user:", none)) == "channel belongs to another user");
    CHECK(verdict(may_subscribe(alice, "user:alice:x", none)) == "channel belongs to another user");
    CHECK(verdict(may_subscribe(alice, "chat:x", none)) == "namespace not configured");
    CHECK(verdict(may_subscribe(alice, ":x", none)) == "namespace not configured");
    CHECK(channel_namespace("a:b:c") == "a");
    CHECK(channel_namespace("abc").empty());
}

TEST_CASE("public, private and role namespaces", "[auth][permissions]") {
    const namespace_table table = table_of(
        {"chat:public", "team:private", "admin:role=admin,role=ops", "news:public,publish"});
    const identity alice = user("alice", {"team:red", "team:blue-*"}, {"ops"});
    const identity bob = user("bob", {"*"}, {"viewer"});
    const identity carol = user("carol");
    CHECK(verdict(may_subscribe(carol, "chat:lobby", table)) == "allowed");
    CHECK(verdict(may_subscribe(alice, "team:red", table)) == "allowed");
    CHECK(verdict(may_subscribe(alice, "team:blue-7", table)) == "allowed");
    CHECK(verdict(may_subscribe(alice, "team:blue-", table)) == "allowed");
    CHECK(verdict(may_subscribe(alice, "team:blue", table)) == "channel not granted by token");
    CHECK(verdict(may_subscribe(alice, "team:redder", table)) == "channel not granted by token");
    CHECK(verdict(may_subscribe(carol, "team:red", table)) == "channel not granted by token");
    CHECK(verdict(may_subscribe(bob, "team:anything", table)) == "allowed");
    CHECK(verdict(may_subscribe(alice, "admin:audit", table)) == "allowed");
    CHECK(verdict(may_subscribe(bob, "admin:audit", table)) == "role required");
    // The channels claim grants nothing outside private namespaces.
    CHECK(verdict(may_subscribe(bob, "user:alice", table)) == "channel belongs to another user");
    CHECK(verdict(may_subscribe(bob, "other:x", table)) == "namespace not configured");
}

TEST_CASE("channel patterns: exact names, and prefixes ending in '*'", "[auth][permissions]") {
    const identity who = user("u", {"test-progress-*", "exact", "team:*"});
    CHECK(channel_granted(who, "test-progress-42"));
    CHECK(channel_granted(who, "test-progress-"));
    CHECK_FALSE(channel_granted(who, "test-progress"));
    CHECK(channel_granted(who, "exact"));
    CHECK_FALSE(channel_granted(who, "exactly"));
    CHECK_FALSE(channel_granted(who, "exac"));
    CHECK(channel_granted(who, "team:x"));
    CHECK_FALSE(channel_granted(user("u"), "anything"));
}

TEST_CASE("clients publish only where a namespace says publish", "[auth][permissions]") {
    const namespace_table table = table_of(
        {"chat:public,publish", "news:public", "team:private,publish", "admin:role=admin,publish"});
    const identity alice = user("alice", {"team:red"}, {"admin"});
    const identity bob = user("bob");
    CHECK(verdict(may_publish(bob, "chat:lobby", table)) == "allowed");
    CHECK(verdict(may_publish(bob, "news:today", table)) == "publish not allowed");
    CHECK(verdict(may_publish(alice, "team:red", table)) == "allowed");
    CHECK(verdict(may_publish(bob, "team:red", table)) == "channel not granted by token");
    CHECK(verdict(may_publish(alice, "admin:x", table)) == "allowed");
    CHECK(verdict(may_publish(bob, "admin:x", table)) == "role required");
    CHECK(verdict(may_publish(bob, "lobby", table)) == "publish not allowed");
    CHECK(verdict(may_publish(bob, "user:bob", table)) == "publish not allowed");
    CHECK(verdict(may_publish(bob, "user:alice", table)) == "channel belongs to another user");
    CHECK(verdict(may_publish(bob, "nowhere:x", table)) == "namespace not configured");
}

TEST_CASE("sys: channels are for the admin role only, and no client publishes there",
          "[auth][permissions]") {
    // Whatever the table says: sys is built in, and even a namespace granting everything
    // does not reach it.
    const namespace_table table = table_of({"chat:public,publish"});
    const identity admin = user("ops", {"*"}, {"admin"});
    const identity viewer = user("bob", {"sys:stats", "*"}, {"ops", "Admin"});
    CHECK(verdict(may_subscribe(admin, "sys:stats", table)) == "allowed");
    CHECK(verdict(may_subscribe(admin, "sys:other", table)) == "allowed");
    CHECK(verdict(may_subscribe(viewer, "sys:stats", table)) == "admin role required");
    CHECK(verdict(may_subscribe(user("anon"), "sys:stats", table)) == "admin role required");
    CHECK(verdict(may_publish(admin, "sys:stats", table)) == "publish not allowed");
    CHECK(verdict(may_publish(viewer, "sys:stats", table)) == "admin role required");
}
