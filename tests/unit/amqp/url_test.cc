// --amqp-url (include/ringcast/amqp.h): amqp:// URLs as RabbitMQ's URI spec reads them.
#include <ringcast/amqp.h>

#include <catch2/catch.hpp>

using namespace ringcast::amqp;

TEST_CASE("an amqp URL gives host, port, user, password and vhost", "[amqp][url]") {
    auto u = parse_amqp_url("amqp://bridge:s%40cret@mq.internal:5673/prod");
    REQUIRE(u);
    CHECK(u->host == "mq.internal");
    CHECK(u->port == 5673);
    CHECK(u->username == "bridge");
    CHECK(u->password == "s@cret");
    CHECK(u->vhost == "prod");
}

TEST_CASE("an amqp URL without user or path means guest and the vhost /", "[amqp][url]") {
    for (const char* text : {"amqp://127.0.0.1", "amqp://127.0.0.1/", "amqp://127.0.0.1:5672/%2f"}) {
        INFO(text);
        auto u = parse_amqp_url(text);
        REQUIRE(u);
        CHECK(u->username == "guest");
        CHECK(u->password == "guest");
        CHECK(u->vhost == "/");
        CHECK(u->port == 5672);
    }
    auto v6 = parse_amqp_url("amqp://[::1]:5000");
    REQUIRE(v6);
    CHECK(v6->host == "::1");
    CHECK(v6->port == 5000);
}

TEST_CASE("amqp URLs that are refused, each with a sentence", "[amqp][url]") {
    for (const char* bad : {"", "abc", "redis://127.0.0.1", "amqps://127.0.0.1", "amqp://",
                            "amqp://:5672", "amqp://h:", "amqp://h:0", "amqp://h:99999",
                            "amqp://h:abc", "amqp://[::1", "amqp://a b", "amqp://h/a/b",
                            "amqp://h/%zz", "amqp://@h", "amqp://h?x=1"}) {
        INFO(bad);
        auto u = parse_amqp_url(bad);
        CHECK_FALSE(u);
        if (!u) {
            CHECK_FALSE(u.error().empty());
        }
    }
}
