#include "mesh.h"

#include <catch2/catch.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using namespace ringcast;
using core::mesh;
using core::mesh_message;
using core::mesh_port;

namespace {
// The ring and port tests carry a number in the payload pointer: a kind whose destroy does
// nothing, so no allocation per message under TSan.
const core::mesh_kind_info numbered_kind{"test.numbered", [](void*) noexcept {}, 0};

mesh_message numbered(uint64_t n) {
    return mesh_message{&numbered_kind, reinterpret_cast<void*>(static_cast<uintptr_t>(n))};
}
uint64_t number_of(const mesh_message& m) {
    return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(m.payload));
}

// Typed kinds for the handler-table tests: payloads that count their destructions.
int alive = 0;
struct tracked {
    explicit tracked(int v) : value(v) { ++alive; }
    tracked(const tracked&) = delete;
    ~tracked() { --alive; }
    int value;
};
struct first_kind {
    using payload = tracked;
    static constexpr std::string_view name = "test.first";
};
struct second_kind {
    using payload = tracked;
    static constexpr std::string_view name = "test.second";
};

template <typename K> mesh_message typed(int value) {
    return mesh_message{&core::mesh_kind_info_of<K>, new tracked(value)};
}

struct receiver {
    std::vector<std::pair<char, int>> seen;
    std::vector<std::unique_ptr<tracked>> kept;
    shard_id last_from{};
    void on_mesh(first_kind, shard_id from, std::unique_ptr<tracked> p) noexcept {
        seen.emplace_back('1', p->value);
        last_from = from;
        kept.push_back(std::move(p)); // keeps it: the handler owns the payload
    }
    void on_mesh(second_kind, shard_id from, std::unique_ptr<tracked> p) noexcept {
        seen.emplace_back('2', p->value); // drops it here
        last_from = from;
    }
};
} // namespace

TEST_CASE("mesh keeps per-pair order when the ring overflows into the producer's queue",
          "[core][mesh]") {
    mesh m(2, 4);
    mesh_port producer(m, 0, [](unsigned) {});
    mesh_port consumer(m, 1, [](unsigned) {});
    for (uint64_t i = 0; i < 10; ++i) {
        producer.send(1, numbered(i));
    }
    CHECK(producer.overflowed() == 6);
    std::vector<uint64_t> got;
    for (int pass = 0; pass < 5 && got.size() < 10; ++pass) {
        consumer.drain([&](unsigned from, const mesh_message& msg) {
            CHECK(from == 0);
            got.push_back(number_of(msg));
        });
        producer.flush();
    }
    REQUIRE(got.size() == 10);
    for (uint64_t i = 0; i < 10; ++i) {
        CHECK(got[i] == i);
    }
    CHECK(producer.overflowed() == 0);
}

TEST_CASE("mesh reports congestion above the overflow mark and clears it below half",
          "[core][mesh]") {
    mesh m(3, 4);
    mesh_port producer(m, 0, [](unsigned) {});
    mesh_port consumer(m, 1, [](unsigned) {});
    mesh_port other(m, 2, [](unsigned) {});
    const std::size_t mark = core::mesh_congestion_mark;
    for (uint64_t i = 0; i < 4 + mark; ++i) { // the ring takes 4, the overflow `mark`
        producer.send(1, numbered(i));
    }
    CHECK(!producer.congested(1));
    CHECK(!other.congested(0));
    producer.send(1, numbered(4 + mark));
    // Seen by the producer for every peer, and by every other shard for the producer.
    CHECK(producer.congested(1));
    CHECK(producer.congested(2));
    CHECK(other.congested(0));
    CHECK(!other.congested(1));
    // Draining a little is not enough: it clears only under half the mark.
    std::size_t drained = 0;
    while (producer.overflowed() >= mark / 2) {
        drained += consumer.drain([](unsigned, const mesh_message&) {});
        producer.flush();
        if (producer.overflowed() >= mark / 2) {
            CHECK(other.congested(0));
        }
    }
    CHECK(!other.congested(0));
    CHECK(!producer.congested(1));
    // Nothing was dropped on the way.
    while (drained < 5 + mark) {
        drained += consumer.drain([](unsigned, const mesh_message&) {});
        producer.flush();
    }
    CHECK(drained == 5 + mark);
}

TEST_CASE("mesh rings the doorbell only of a consumer that said it may sleep", "[core][mesh]") {
    mesh m(3);
    std::vector<unsigned> rung;
    mesh_port producer(m, 0, [&](unsigned target) { rung.push_back(target); });
    mesh_port sleeper(m, 1, [](unsigned) {});
    REQUIRE(sleeper.prepare_to_sleep());
    producer.send(1, numbered(1));
    producer.send(1, numbered(2));
    producer.send(2, numbered(3)); // shard 2 is awake: no doorbell
    producer.flush();
    CHECK(rung == std::vector<unsigned>{1}); // one doorbell per target per pass
    rung.clear();
    producer.flush();
    CHECK(rung.empty()); // nothing new pushed: no doorbell
}

TEST_CASE("mesh consumer does not sleep while a message waits for it", "[core][mesh]") {
    mesh m(2);
    mesh_port producer(m, 0, [](unsigned) {});
    mesh_port consumer(m, 1, [](unsigned) {});
    producer.send(1, numbered(7));
    producer.flush();
    CHECK_FALSE(consumer.prepare_to_sleep());
    CHECK(m.sleeping(1).load() == 0);
    std::size_t n = consumer.drain([](unsigned, const mesh_message&) {});
    CHECK(n == 1);
    CHECK(consumer.prepare_to_sleep());
}

// The sleep protocol (mesh.h, steps 1-3) under real concurrency, checked by the order of
// events, not by time. The producer sends in rounds of 1 to 200 messages (the ring holds 64,
// so many rounds overflow) and after each round waits, flushing its overflow meanwhile, until
// the consumer has received everything sent so far. The consumer blocks with no timeout
// until a doorbell arrives. Two kinds of round pin down an interleaving instead of hoping
// the scheduler produces it:
//   * early (every 8th round, from the 4th): the consumer has drained its ring and waits at
//     a gate before announcing sleep; the producer pushes and flushes, then opens the gate.
//     The flag was clear, so no doorbell: prepare_to_sleep() must see the message (step 2).
//   * late (every 8th round): the producer waits until the consumer is blocked, checks its
//     flag is set (step 1), pushes and flushes: a doorbell must follow (step 3).
// The other rounds let the push race prepare_to_sleep(). A wake-up lost in an early or late
// round is counted and the consumer is poked so the test goes on; one lost in a racing
// round leaves both sides waiting on each other, and the hang guard (there only so the test
// ends instead of hanging) reports it. Under -Db_sanitize=thread this also checks the
// memory ordering of the handshake.
TEST_CASE("mesh delivers every message in order and never loses a wake-up",
          "[core][mesh][threads]") {
    constexpr uint64_t messages = 100000;
    // Far beyond any scheduling delay; below meson's timeout for unit_core, so a lost
    // wake-up ends with the diagnostic below rather than a killed process.
    constexpr auto hang_guard = std::chrono::seconds(20);
    mesh m(2, 64);
    std::mutex mutex;
    std::condition_variable bell;
    // Guarded by mutex:
    uint64_t doorbells = 0;
    uint64_t seen_bells = 0; // the doorbells the consumer has woken for
    bool blocked = false;   // the consumer is inside its doorbell wait
    bool poke = false;      // the producer wakes the consumer without a doorbell
    bool want_gate = false; // early round: stop at the gate before announcing sleep
    bool at_gate = false;
    bool gate_open = false;
    std::atomic<uint64_t> received{0};
    std::atomic<bool> gave_up{false}; // the consumer hit the hang guard
    mesh_port producer(m, 0, [&](unsigned) {
        std::lock_guard lock(mutex);
        ++doorbells;
        bell.notify_one();
    });
    mesh_port consumer(m, 1, [](unsigned) {});

    // Waits (yielding) until `ready()` holds under the mutex, then runs `then()` under it;
    // false when the consumer gave up.
    const auto await = [&](auto&& ready, auto&& then) {
        for (;;) {
            {
                std::lock_guard lock(mutex);
                if (ready()) {
                    then();
                    return true;
                }
            }
            if (gave_up.load()) {
                return false;
            }
            std::this_thread::yield();
        }
    };

    // Written by the sender thread, read after join.
    uint64_t sent = 0;
    uint64_t rounds = 0;
    uint64_t early = 0;
    uint64_t late = 0;
    uint64_t flag_clear = 0; // late rounds whose blocked consumer had no sleep flag set
    uint64_t not_rung = 0;   // late rounds whose push was not followed by a doorbell
    std::string first_not_rung; // what the first such round saw, for the failure message
    std::thread sender([&] {
        std::mt19937_64 rng(11);
        while (sent < messages && !gave_up.load()) {
            ++rounds;
            const bool is_late = rounds % 8 == 0;
            const bool is_early = rounds % 8 == 4;
            uint64_t rung_before = 0;
            if (is_early) {
                ++early;
                {
                    std::lock_guard lock(mutex);
                    want_gate = true;
                    poke = true; // it may be asleep from the last round
                    bell.notify_one();
                }
                if (!await([&] { return at_gate; }, [] {})) {
                    return;
                }
            }
            if (is_late) {
                ++late;
                // Blocked, and nothing but a doorbell wakes it: it announced sleep and has
                // not called woke_up() since. A consumer that is blocked but already has a
                // wake-up waiting (a spare doorbell from the last round rang after it drained
                // and blocked) does not count: it would wake and clear its flag by itself
                // (a failed CI run caught the test assuming otherwise).
                if (!await([&] { return blocked && doorbells == seen_bells && !poke; }, [&] {
                        flag_clear += m.sleeping(1).load() == 0 ? 1 : 0;
                        rung_before = doorbells;
                    })) {
                    return;
                }
            }
            const bool small = rng() % 2 == 0;
            const uint64_t batch = std::min(messages - sent, 1 + rng() % (small ? 4 : 200));
            const uint32_t flag_before_push = m.sleeping(1).load();
            for (uint64_t k = 0; k < batch; ++k) {
                producer.send(1, numbered(sent++));
            }
            const uint32_t flag_before_flush = m.sleeping(1).load();
            producer.flush();
            {
                std::lock_guard lock(mutex);
                if (is_late && doorbells == rung_before) {
                    if (++not_rung == 1) {
                        first_not_rung = "round " + std::to_string(rounds) + ": batch " +
                                         std::to_string(batch) + ", flag " +
                                         std::to_string(flag_before_push) + " before the push, " +
                                         std::to_string(flag_before_flush) +
                                         " before the flush, consumer " +
                                         (blocked ? "still blocked" : "awake") + ", poke " +
                                         std::to_string(poke);
                    }
                    poke = true;
                }
                gate_open = is_early;
                bell.notify_one();
            }
            while (received.load() < sent && !gave_up.load()) {
                producer.flush(); // retries the overflow, rings again if needed
                std::this_thread::yield();
            }
        }
    });

    uint64_t expected = 0;
    uint64_t out_of_order = 0;
    uint64_t sleeps = 0;
    uint64_t missed_recheck = 0; // early rounds where prepare_to_sleep() missed the push
    bool hung = false;
    bool ring_empty_when_hung = true;
    while (expected < messages && !hung) {
        const std::size_t n = consumer.drain([&](unsigned, const mesh_message& msg) {
            out_of_order += number_of(msg) != expected;
            ++expected;
        });
        received.store(expected);
        if (n > 0) {
            continue;
        }
        bool gated = false;
        {
            std::unique_lock lock(mutex);
            if (want_gate) {
                at_gate = true;
                poke = false;
                hung = !bell.wait_for(lock, hang_guard, [&] { return gate_open; });
                at_gate = want_gate = gate_open = false;
                gated = true;
            }
        }
        if (hung || !consumer.prepare_to_sleep()) {
            continue;
        }
        if (gated) {
            // The push before the announcement is in the ring and no doorbell will come.
            ++missed_recheck;
            consumer.woke_up();
            continue;
        }
        std::unique_lock lock(mutex);
        if (doorbells == seen_bells && !poke) { // else: a spare doorbell or a poke
            blocked = true;
            ++sleeps;
            hung = !bell.wait_for(lock, hang_guard,
                                  [&] { return doorbells != seen_bells || poke; });
            blocked = false;
        }
        poke = false;
        seen_bells = doorbells;
        lock.unlock();
        consumer.woke_up();
    }
    if (hung) {
        ring_empty_when_hung = m.ring(0, 1).empty();
        gave_up.store(true);
    }
    sender.join();
    INFO(expected << " received of " << sent << " sent in " << rounds << " rounds (" << early
                  << " early, " << late << " late), " << sleeps << " sleeps, " << seen_bells
                  << " doorbells");
    INFO("hung with the ring " << (ring_empty_when_hung ? "empty" : "holding messages"));
    INFO("first late round without a doorbell: " << first_not_rung);
    CHECK_FALSE(hung);
    CHECK(expected == messages);
    CHECK(out_of_order == 0);
    // Both pinned interleavings ran (a round carries at most 200 messages)...
    CHECK(early >= messages / 200 / 8);
    CHECK(late >= messages / 200 / 8);
    CHECK(sleeps >= late);
    // ...and the protocol held in every one of them.
    CHECK(missed_recheck == 0);
    CHECK(flag_clear == 0);
    CHECK(not_rung == 0);
}

TEST_CASE("mesh handlers give each kind's payload to its own handler, which owns it",
          "[core][mesh]") {
    REQUIRE(&core::mesh_kind_info_of<first_kind> != &core::mesh_kind_info_of<second_kind>);
    REQUIRE(core::mesh_kind_info_of<first_kind>.index !=
            core::mesh_kind_info_of<second_kind>.index);
    CHECK(core::mesh_kind_info_of<second_kind>.name == "test.second");
    alive = 0;
    receiver r;
    core::mesh_handlers handlers;
    CHECK_FALSE(handlers.handles(core::mesh_kind_info_of<first_kind>));
    handlers.on<first_kind>(r);
    handlers.on<second_kind>(r);
    CHECK(handlers.handles(core::mesh_kind_info_of<first_kind>));
    CHECK(handlers.handles(core::mesh_kind_info_of<second_kind>));

    // Through a real ring, interleaved kinds keep their order.
    mesh m(2);
    mesh_port producer(m, 0, [](unsigned) {});
    mesh_port consumer(m, 1, [](unsigned) {});
    producer.send(1, typed<first_kind>(1));
    producer.send(1, typed<second_kind>(2));
    producer.send(1, typed<first_kind>(3));
    CHECK(alive == 3);
    const std::size_t n = consumer.drain([&](unsigned from, const mesh_message& msg) {
        handlers.dispatch(shard_id(static_cast<uint16_t>(from)), msg);
    });
    CHECK(n == 3);
    CHECK(r.seen == std::vector<std::pair<char, int>>{{'1', 1}, {'2', 2}, {'1', 3}});
    CHECK(r.last_from == shard_id(0));
    CHECK(alive == 2); // the second kind's handler let its payload go; the first kept two
    r.kept.clear();
    CHECK(alive == 0);
}

TEST_CASE("mesh destroys the payloads still travelling when the shards stop", "[core][mesh]") {
    alive = 0;
    mesh m(2, 4);
    {
        mesh_port producer(m, 0, [](unsigned) {});
        mesh_port consumer(m, 1, [](unsigned) {});
        for (int i = 0; i < 10; ++i) { // 4 in the ring, 6 in the producer's overflow
            producer.send(1, i % 2 == 0 ? typed<first_kind>(i) : typed<second_kind>(i));
        }
        REQUIRE(producer.overflowed() == 6);
        REQUIRE(alive == 10);
        consumer.discard_inbound(); // what the stopping consumer does
        CHECK(alive == 6);
        CHECK(m.ring(0, 1).empty());
    } // the producer's port goes with its shard, and its overflow with it
    CHECK(alive == 0);
}
