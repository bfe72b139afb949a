#include "spsc_ring.h"

#include <catch2/catch.hpp>
#include <memory>
#include <thread>
#include <vector>

using ringcast::core::spsc_ring;

TEST_CASE("spsc ring hands items over in order and reports full and empty", "[core][spsc]") {
    spsc_ring<int> ring(4);
    CHECK(ring.empty());
    CHECK_FALSE(ring.pop().has_value());
    for (int i = 0; i < 4; ++i) {
        int v = i;
        REQUIRE(ring.push(v));
    }
    int extra = 99;
    CHECK_FALSE(ring.push(extra));
    CHECK(extra == 99); // a refused item is left with the producer
    for (int i = 0; i < 4; ++i) {
        auto v = ring.pop();
        REQUIRE(v.has_value());
        CHECK(*v == i);
    }
    CHECK(ring.empty());
}

TEST_CASE("spsc ring keeps working after its indices wrap the slot array many times",
          "[core][spsc]") {
    spsc_ring<uint64_t> ring(8);
    uint64_t next_in = 0;
    uint64_t next_out = 0;
    for (int round = 0; round < 1000; ++round) {
        for (int k = 0; k < 5; ++k) {
            uint64_t v = next_in;
            REQUIRE(ring.push(v));
            ++next_in;
        }
        for (int k = 0; k < 5; ++k) {
            auto v = ring.pop();
            REQUIRE(v.has_value());
            CHECK(*v == next_out++);
        }
    }
}

TEST_CASE("spsc ring moves owning items without leaking or double freeing", "[core][spsc]") {
    spsc_ring<std::unique_ptr<int>> ring(2);
    auto a = std::make_unique<int>(7);
    REQUIRE(ring.push(a));
    CHECK(a == nullptr);
    auto out = ring.pop();
    REQUIRE(out.has_value());
    CHECK(**out == 7);
}

// Two real threads: every item arrives once, in order. Under -Db_sanitize=thread this is the
// data-race check for the ring's memory ordering.
TEST_CASE("spsc ring delivers every item once and in order across two threads",
          "[core][spsc][threads]") {
    constexpr uint64_t items = 200000;
    spsc_ring<std::unique_ptr<uint64_t>> ring(64);
    std::thread producer([&] {
        for (uint64_t i = 0; i < items; ++i) {
            auto item = std::make_unique<uint64_t>(i);
            while (!ring.push(item)) {
                std::this_thread::yield();
            }
        }
    });
    uint64_t expected = 0;
    uint64_t out_of_order = 0;
    while (expected < items) {
        if (auto v = ring.pop()) {
            out_of_order += (**v != expected);
            ++expected;
        } else {
            std::this_thread::yield();
        }
    }
    producer.join();
    CHECK(out_of_order == 0);
    CHECK(ring.empty());
}
