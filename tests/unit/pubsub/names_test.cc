// pubsub names: the channel, event and user id charsets and length bounds, and namespaces.
#include "shown.h"

#include <catch2/catch.hpp>

#include "ringcast/pubsub.h"

#include <string>
#include <string_view>

using namespace ringcast::pubsub;

namespace {

using testing::shown;

} // namespace

TEST_CASE("valid_channel accepts 1-255 bytes of [A-Za-z0-9_.:@*-]", "[pubsub][protocol]") {
    for (const char* name : {"queue-updates", "test-progress-42", "chat:lobby",
                             "market.binance.btcusdt", "user:7", "a", "*", ":", "A_Z.0-9:@*"}) {
        INFO(name);
        CHECK(valid_channel(name));
    }
    CHECK(valid_channel(std::string(255, 'c')));
}

TEST_CASE("valid_channel refuses empty, long and out-of-charset names", "[pubsub][protocol]") {
    CHECK_FALSE(valid_channel(""));
    CHECK_FALSE(valid_channel(std::string(256, 'c')));
    for (const char* name : {"a b", "a/b", "a\"b", "a\\b", "café", "a,b", "a#b", "a+b", "a\tb",
                             "a~b", "a!b", "a$b", "a%b", "a?b", "a=b", "a[b]", "a{b}", "a'b"}) {
        INFO(shown(name));
        CHECK_FALSE(valid_channel(name));
    }
    CHECK_FALSE(valid_channel(std::string_view("a\0b", 3)));
}

TEST_CASE("valid_event accepts 1-255 printable ASCII bytes except quote and backslash",
          "[pubsub][protocol]") {
    CHECK(valid_event("message"));
    CHECK(valid_event("test:progress"));
    CHECK(valid_event(" "));
    CHECK(valid_event("!#$%&'()*+,-./:;<=>?@[]^_`{|}~"));
    CHECK(valid_event(std::string(255, 'e')));
    for (int c = 0x20; c <= 0x7e; ++c) {
        const std::string one(1, static_cast<char>(c));
        INFO("byte " << c);
        CHECK(valid_event(one) == (c != '"' && c != '\\'));
    }
}

TEST_CASE("valid_event refuses empty, long, control and non-ASCII names", "[pubsub][protocol]") {
    CHECK_FALSE(valid_event(""));
    CHECK_FALSE(valid_event(std::string(256, 'e')));
    CHECK_FALSE(valid_event("a\"b"));
    CHECK_FALSE(valid_event("a\\b"));
    CHECK_FALSE(valid_event("tab\there"));
    CHECK_FALSE(valid_event("\x7f"));
    CHECK_FALSE(valid_event("é"));
    CHECK_FALSE(valid_event(std::string_view("\0", 1)));
}

TEST_CASE("valid_user_id accepts 1-64 bytes of [A-Za-z0-9_.@-]", "[pubsub][protocol]") {
    for (const char* id : {"7", "alice", "a.b@example.com", "A-Z_0.9"}) {
        INFO(id);
        CHECK(valid_user_id(id));
    }
    CHECK(valid_user_id(std::string(64, 'u')));
}

TEST_CASE("valid_user_id refuses empty, long and out-of-charset ids", "[pubsub][protocol]") {
    CHECK_FALSE(valid_user_id(""));
    CHECK_FALSE(valid_user_id(std::string(65, 'u')));
    for (const char* id : {"a:b", "a*b", "a b", "a/b", "é", "a\"b", "a+b"}) {
        INFO(shown(id));
        CHECK_FALSE(valid_user_id(id));
    }
}

TEST_CASE("every byte is classified the same by the three validators' charsets",
          "[pubsub][protocol]") {
    for (int c = 0; c < 256; ++c) {
        const std::string one(1, static_cast<char>(c));
        const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool user = alnum || c == '_' || c == '.' || c == '@' || c == '-';
        INFO("byte " << c);
        CHECK(valid_user_id(one) == user);
        CHECK(valid_channel(one) == (user || c == ':' || c == '*'));
    }
}

TEST_CASE("channel_namespace is the part before the first colon", "[pubsub][protocol]") {
    CHECK(channel_namespace("chat:lobby") == "chat");
    CHECK(channel_namespace("user:7") == "user");
    CHECK(channel_namespace("a:b:c") == "a");
    CHECK(channel_namespace(":x") == "");
    CHECK(channel_namespace("queue-updates").empty());
    CHECK(channel_namespace("").empty());
}
