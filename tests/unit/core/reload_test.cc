// core::reload_shards and core::status_of across threads: the main thread publishes
// settings while two real shards run, each shard's handler gets them on its own thread
// between loop passes, in order, ending with the last; the loop-pass counts move. Run under
// ThreadSanitizer by CI's tsan stage ([reload]), which checks the version/mutex pairing.
#include "loopback.h"

#include <ringcast/core.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

using namespace ringcast;
using testing::listen_loopback;

namespace {

struct numbered final : core::reload_payload {
    explicit numbered(uint64_t v) : value(v) {}
    uint64_t value;
};

/// What one shard's handler saw, written by that shard's thread only; read by the test
/// thread through the atomics (relaxed: counts, and `in_order` written before `last`).
struct seen {
    std::atomic<uint64_t> last{0};
    std::atomic<uint64_t> calls{0};
    std::atomic<bool> in_order{true};
};

class reload_handler final : public core::conn_handler {
public:
    explicit reload_handler(seen& s) : _seen(s) {}
    void* on_open(conn_handle, core::listener, core::admission) noexcept override {
        return nullptr;
    }
    void on_data(conn_handle, void*, std::span<std::byte>) noexcept override {}
    void on_timer(conn_handle, void*, core::conn_timer) noexcept override {}
    void on_shutdown(conn_handle, void*) noexcept override {}
    bool on_drain(conn_handle, void*) noexcept override { return false; }
    void on_output_budget(conn_handle, void*) noexcept override {}
    void on_connect_result(conn_handle, void*, std::error_code) noexcept override {}
    void on_closed(conn_handle, void*) noexcept override {}
    void on_reload(const std::shared_ptr<const core::reload_payload>& p) noexcept override {
        const auto* n = dynamic_cast<const numbered*>(p.get());
        const uint64_t before = _seen.last.load(std::memory_order_relaxed);
        if (n == nullptr || n->value < before) {
            _seen.in_order.store(false, std::memory_order_relaxed);
            return;
        }
        _seen.calls.fetch_add(1, std::memory_order_relaxed);
        _seen.last.store(n->value, std::memory_order_relaxed);
    }

private:
    seen& _seen;
};

} // namespace

TEST_CASE("reload_shards: every shard gets the settings in order, the last one last",
          "[core][reload]") {
    uint16_t ports[2] = {};
    core::runtime_config config;
    config.max_connections_per_shard = 4;
    config.listeners.push_back({core::listener::main, core::listener_slots::capped, 0,
                                {listen_loopback(ports[0]), listen_loopback(ports[1])}});
    std::vector<seen> by_shard(2);
    std::atomic<unsigned> made{0};
    core::stop_token stop;
    auto started = core::start_shards(
        config,
        [&](core::conn_io& io) {
            made.fetch_add(1, std::memory_order_relaxed);
            return std::make_unique<reload_handler>(by_shard[unsigned(io.id())]);
        },
        stop);
    REQUIRE(started);
    core::shard_group& group = **started;
    const core::group_status first = core::status_of(group);
    REQUIRE(first.loop_passes.size() == 2);

    constexpr uint64_t rounds = 500;
    for (uint64_t v = 1; v <= rounds; ++v) {
        core::reload_shards(group, std::make_shared<numbered>(v));
        if (v % 50 == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    // Hang guard only: an idle shard passes at least every 100 ms.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((by_shard[0].last.load(std::memory_order_relaxed) != rounds ||
            by_shard[1].last.load(std::memory_order_relaxed) != rounds) &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const core::group_status later = core::status_of(group);
    stop.requested.store(true, std::memory_order_relaxed); // pairs with shard::run's load
    core::wait_shards(std::move(*started));

    CHECK(made.load() == 2);
    for (const seen& s : by_shard) {
        CHECK(s.last.load() == rounds);
        CHECK(s.in_order.load());
        CHECK(s.calls.load() >= 1);
        CHECK(s.calls.load() <= rounds); // only the latest when several came between passes
    }
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK(later.loop_passes[i] > first.loop_passes[i]);
    }
}
