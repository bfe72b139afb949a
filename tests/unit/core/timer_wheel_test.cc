#include "timer_wheel.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <vector>

using ringcast::core::timer_wheel;

namespace {
std::vector<uint32_t> advance(timer_wheel& w, uint64_t now) {
    std::vector<uint32_t> fired;
    w.advance(now, [&](uint32_t slot) { fired.push_back(slot); });
    return fired;
}
} // namespace

TEST_CASE("timer wheel fires a timer at its deadline and not before", "[core][timer]") {
    timer_wheel w(16, 1000);
    w.schedule(3, 1250);
    CHECK(advance(w, 1240).empty());
    CHECK(w.scheduled(3));
    CHECK(advance(w, 1250) == std::vector<uint32_t>{3});
    CHECK_FALSE(w.scheduled(3));
    CHECK(w.size() == 0);
}

TEST_CASE("timer wheel re-scheduling replaces the earlier deadline", "[core][timer]") {
    timer_wheel w(16, 0);
    w.schedule(1, 100);
    w.schedule(1, 500);
    CHECK(w.size() == 1);
    CHECK(advance(w, 200).empty());
    CHECK(advance(w, 500) == std::vector<uint32_t>{1});
}

TEST_CASE("timer wheel cancel removes a timer from the middle of a bucket", "[core][timer]") {
    timer_wheel w(16, 0);
    w.schedule(1, 100);
    w.schedule(2, 100);
    w.schedule(3, 100);
    w.cancel(2);
    auto fired = advance(w, 100);
    std::sort(fired.begin(), fired.end());
    CHECK(fired == std::vector<uint32_t>{1, 3});
}

TEST_CASE("timer wheel keeps a deadline more than one revolution away until it is due",
          "[core][timer]") {
    const uint64_t revolution = timer_wheel::tick_ms * timer_wheel::bucket_count;
    timer_wheel w(4, 0);
    w.schedule(0, revolution + 50);
    for (uint64_t t = 0; t < revolution + 40; t += 1000) {
        CHECK(advance(w, t).empty());
    }
    CHECK(advance(w, revolution + 50) == std::vector<uint32_t>{0});
}

TEST_CASE("timer wheel fires every due timer after a stall longer than a revolution",
          "[core][timer]") {
    timer_wheel w(8, 0);
    for (uint32_t slot = 0; slot < 8; ++slot) {
        w.schedule(slot, 100 + slot * 7000);
    }
    auto fired = advance(w, 10 * timer_wheel::tick_ms * timer_wheel::bucket_count);
    CHECK(fired.size() == 8);
}

TEST_CASE("timer wheel callback may re-arm the timer that fired", "[core][timer]") {
    timer_wheel w(2, 0);
    w.schedule(0, 10);
    int fired = 0;
    for (uint64_t now = 10; now <= 50; now += 10) {
        w.advance(now, [&](uint32_t slot) {
            ++fired;
            w.schedule(slot, now + 10);
        });
    }
    CHECK(fired == 5);
    CHECK(w.scheduled(0));
}

TEST_CASE("timer wheel reports how long the loop may sleep", "[core][timer]") {
    timer_wheel w(4, 0);
    CHECK(w.next_wait_ms(0, 100) == 100);
    w.schedule(0, 40);
    CHECK(w.next_wait_ms(0, 100) == 40);
    CHECK(w.next_wait_ms(0, 20) == 20);
}
