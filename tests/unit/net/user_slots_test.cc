// net::user_slots: the home shard's count behind --max-connections-per-user.
#include "user_slots.h"

#include <catch2/catch.hpp>
#include <string>

using namespace ringcast;

TEST_CASE("a user takes slots up to the limit, then is refused without a change",
          "[net][user_slots]") {
    net::user_slots slots(3);
    CHECK(slots.take("alice"));
    CHECK(slots.take("alice"));
    CHECK(slots.take("alice"));
    CHECK(slots.held("alice") == 3);
    CHECK_FALSE(slots.take("alice"));
    CHECK_FALSE(slots.take("alice"));
    CHECK(slots.held("alice") == 3);
    // Another user is counted on its own.
    CHECK(slots.take("bob"));
    CHECK(slots.held("bob") == 1);
    CHECK(slots.users() == 2);
}

TEST_CASE("giving a slot back admits one more; the last one erases the user",
          "[net][user_slots]") {
    net::user_slots slots(2);
    REQUIRE(slots.take("u"));
    REQUIRE(slots.take("u"));
    REQUIRE_FALSE(slots.take("u"));
    slots.give_back("u");
    CHECK(slots.held("u") == 1);
    CHECK(slots.take("u"));
    CHECK_FALSE(slots.take("u"));
    slots.give_back("u");
    slots.give_back("u");
    CHECK(slots.held("u") == 0);
    CHECK(slots.users() == 0);
    // A user that left starts from zero again.
    CHECK(slots.take("u"));
    CHECK(slots.held("u") == 1);
}

TEST_CASE("a limit of one: a user holds a single connection", "[net][user_slots]") {
    net::user_slots slots(1);
    CHECK(slots.take("solo"));
    CHECK_FALSE(slots.take("solo"));
    slots.give_back("solo");
    CHECK(slots.take("solo"));
}

TEST_CASE("the map holds only users with slots: churn leaves nothing behind",
          "[net][user_slots]") {
    net::user_slots slots(10);
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 1000; ++i) {
            REQUIRE(slots.take("user-" + std::to_string(i)));
        }
        CHECK(slots.users() == 1000);
        for (int i = 0; i < 1000; ++i) {
            slots.give_back("user-" + std::to_string(i));
        }
        CHECK(slots.users() == 0);
    }
}

TEST_CASE("user ids are compared as bytes", "[net][user_slots]") {
    net::user_slots slots(1);
    CHECK(slots.take("Alice"));
    CHECK(slots.take("alice"));
    CHECK(slots.take(std::string("al\0ice", 6)));
    CHECK(slots.users() == 3);
}
