#include "timer_wheel.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <utility>
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

// The shard's close timeout lives on this wheel, and its callbacks close connections, which
// cancels and re-arms their timers, while the bucket that fired is being walked. Every
// timer of one bucket below, so whichever fires first meets the others in its own bucket.
TEST_CASE("timer wheel callback may cancel other timers of the bucket being walked",
          "[core][timer]") {
    timer_wheel w(8, 0);
    for (uint32_t slot = 0; slot < 8; ++slot) {
        w.schedule(slot, 100);
    }
    std::vector<uint32_t> fired;
    w.advance(100, [&](uint32_t slot) {
        fired.push_back(slot);
        if (fired.size() == 1) {
            for (uint32_t other = 0; other < 8; ++other) {
                if (other % 2 != slot % 2) {
                    w.cancel(other); // alternate timers: whatever the walk's order, one of
                }                    // them is next to the one firing
            }
        }
    });
    REQUIRE(fired.size() == 4); // the first and the three others of its parity
    for (uint32_t slot : fired) {
        CHECK(slot % 2 == fired[0] % 2);
    }
    CHECK(w.size() == 0);
    for (uint32_t slot = 0; slot < 8; ++slot) {
        CHECK_FALSE(w.scheduled(slot));
    }
    CHECK(advance(w, 100 + 2 * timer_wheel::tick_ms * timer_wheel::bucket_count).empty());
}

TEST_CASE("timer wheel callback may re-arm other timers of the bucket being walked",
          "[core][timer]") {
    timer_wheel w(8, 0);
    for (uint32_t slot = 0; slot < 8; ++slot) {
        w.schedule(slot, 100);
    }
    // The first to fire closes the others, as a close(after_flush) does: each gets a close
    // timeout 10 s later. Each must fire then, once, and never again.
    std::vector<std::pair<uint32_t, uint64_t>> fired;
    uint64_t now = 100;
    const auto step = [&](uint32_t slot) {
        fired.emplace_back(slot, now);
        if (fired.size() == 1) {
            for (uint32_t other = 0; other < 8; ++other) {
                if (other != slot) {
                    w.schedule(other, 10100);
                }
            }
        }
    };
    w.advance(now, step);
    REQUIRE(fired.size() == 1);
    CHECK(w.size() == 7);
    for (now = 110; now <= 100 + 2 * timer_wheel::tick_ms * timer_wheel::bucket_count;
         now += timer_wheel::tick_ms) {
        w.advance(now, step);
    }
    REQUIRE(fired.size() == 8);
    for (std::size_t i = 1; i < fired.size(); ++i) {
        CHECK(fired[i].second == 10100);
    }
    CHECK(w.size() == 0);
}

TEST_CASE("timer wheel fires a timer a callback arms in the past at the next advance at the "
          "latest",
          "[core][timer]") {
    timer_wheel w(4, 0);
    w.schedule(0, 50);
    // One advance over many ticks (a slow loop pass): the callback at tick 5 arms timer 1
    // for a deadline that has passed, as a resend or close timeout computed from an old
    // stamp does. The walk already visited that deadline's bucket.
    std::vector<uint32_t> fired;
    w.advance(1000, [&](uint32_t slot) {
        fired.push_back(slot);
        if (slot == 0) {
            w.schedule(1, 20);
        }
    });
    if (fired.size() == 1) {
        fired = advance(w, 1000 + timer_wheel::tick_ms);
        CHECK(fired == std::vector<uint32_t>{1});
    } else {
        CHECK(fired == std::vector<uint32_t>{0, 1});
    }
    CHECK(w.size() == 0);
}

TEST_CASE("timer wheel reports how long the loop may sleep", "[core][timer]") {
    timer_wheel w(4, 0);
    CHECK(w.next_wait_ms(0, 100) == 100);
    w.schedule(0, 40);
    CHECK(w.next_wait_ms(0, 100) == 40);
    CHECK(w.next_wait_ms(0, 20) == 20);
}
