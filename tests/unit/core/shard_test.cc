// A real shard (one thread, its own io_uring) on loopback listeners, driven by plain
// sockets from the test thread: what the shard promises its handler about listeners
// (roles, reserved slots) and a connection's timers. Checked by the order of events; the
// only clock is a hang guard that fails the test instead of blocking the suite.
#include "loopback.h"

#include <ringcast/core.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <string>
#include <vector>

using namespace ringcast;
using testing::connect_loopback;
using testing::journal;
using testing::listen_loopback;

namespace {

const char* role_name(core::listener l) {
    switch (l) {
    case core::listener::main:
        return "main";
    case core::listener::api:
        return "api";
    case core::listener::metrics:
        return "metrics";
    }
    return "?";
}

const char* timer_name(core::conn_timer t) {
    switch (t) {
    case core::conn_timer::liveness:
        return "liveness";
    case core::conn_timer::expiry:
        return "expiry";
    case core::conn_timer::acks:
        return "acks";
    }
    return "?";
}

/// Records opens and closes by role. On the first byte "t" it arms both timers — expiry
/// soon, liveness later — and on the expiry re-arms liveness again: the expiry must fire
/// first and exactly once, the liveness timer once, after it.
class recording_handler final : public core::conn_handler {
public:
    recording_handler(core::conn_io& io, journal& j) : _io(io), _journal(j) {}

    void* on_open(conn_handle, core::listener from, core::admission) noexcept override {
        _journal.add(std::string("open ") + role_name(from));
        return new core::listener(from);
    }
    void on_data(conn_handle h, void*, std::span<std::byte> bytes) noexcept override {
        if (!bytes.empty() && bytes[0] == std::byte{'t'}) {
            _io.set_timer(h, core::conn_timer::liveness, _io.now_ms() + 200);
            _io.set_timer(h, core::conn_timer::expiry, _io.now_ms() + 20);
            _journal.add("armed");
        }
    }
    void on_timer(conn_handle h, void*, core::conn_timer which) noexcept override {
        _journal.add(std::string("timer ") + timer_name(which));
        if (which == core::conn_timer::expiry) {
            // Moving the liveness clock must not bring the expiry back.
            _io.set_timer(h, core::conn_timer::liveness, _io.now_ms() + 100);
        } else {
            _io.close(h, core::close_mode::now);
        }
    }
    void on_shutdown(conn_handle h, void*) noexcept override {
        _io.close(h, core::close_mode::now);
    }
    bool on_drain(conn_handle h, void* user) noexcept override {
        auto* role = static_cast<core::listener*>(user);
        _journal.add(std::string("drain ") + role_name(*role));
        _io.close(h, core::close_mode::now);
        return true;
    }
    void on_output_budget(conn_handle h, void*) noexcept override {
        _io.close(h, core::close_mode::now);
    }
    void on_connect_result(conn_handle, void*, std::error_code) noexcept override {
        _journal.add("unexpected connect result"); // it never connects
    }
    void on_closed(conn_handle, void* user) noexcept override {
        auto* role = static_cast<core::listener*>(user);
        _journal.add(std::string("closed ") + role_name(*role));
        delete role;
    }

private:
    core::conn_io& _io;
    journal& _journal;
};

/// One shard serving a capped main listener and a reserved api listener with one slot.
struct running_shard {
    journal events;
    core::stop_token stop;
    core::shard_group_ptr group;
    uint16_t main_port = 0;
    uint16_t api_port = 0;

    running_shard() {
        core::runtime_config config;
        config.max_connections_per_shard = 16;
        config.listeners.push_back(
            {core::listener::main, core::listener_slots::capped, 0, {listen_loopback(main_port)}});
        config.listeners.push_back(
            {core::listener::api, core::listener_slots::reserved, 1, {listen_loopback(api_port)}});
        auto started = core::start_shards(
            config,
            [this](core::conn_io& io) { return std::make_unique<recording_handler>(io, events); },
            stop);
        REQUIRE(started);
        group = std::move(*started);
    }
    ~running_shard() {
        // A flag only: pairs with the relaxed load in shard::run (stop_token).
        stop.requested.store(true, std::memory_order_relaxed);
        core::wait_shards(std::move(group));
    }
};

bool closed_by_server(int fd) {
    return testing::closed_by_peer(fd);
}

} // namespace

TEST_CASE("shard: each listener's connections reach the handler with its role, and a reserved "
          "listener refuses past its own slots",
          "[core][shard]") {
    running_shard s;
    const int client = connect_loopback(s.main_port);
    REQUIRE(s.events.wait_for("open main"));
    const int backend = connect_loopback(s.api_port);
    REQUIRE(s.events.wait_for("open api"));
    // The api listener's one reserved slot is taken: the next is closed unanswered, and
    // the handler never sees it.
    const int extra = connect_loopback(s.api_port);
    CHECK(closed_by_server(extra));
    // Its slot was not taken from the main listener's cap: main still admits.
    const int second = connect_loopback(s.main_port);
    REQUIRE(s.events.wait_for("open main", 2));
    ::close(backend);
    REQUIRE(s.events.wait_for("closed api"));
    // The reserved slot is free again.
    const int again = connect_loopback(s.api_port);
    REQUIRE(s.events.wait_for("open api", 2));
    const auto events = s.events.snapshot();
    CHECK(std::count(events.begin(), events.end(), "open api") == 2);
    CHECK(std::count(events.begin(), events.end(), "open main") == 2);
    for (const int fd : {client, extra, second, again}) {
        ::close(fd);
    }
}

TEST_CASE("shard: a connection's timers fire independently, each once, in deadline order",
          "[core][shard][timer]") {
    running_shard s;
    const int client = connect_loopback(s.main_port);
    REQUIRE(s.events.wait_for("open main"));
    REQUIRE(::send(client, "t", 1, 0) == 1);
    REQUIRE(s.events.wait_for("closed main")); // the liveness timer closes it
    CHECK(closed_by_server(client));
    ::close(client);
    const auto events = s.events.snapshot();
    const std::vector<std::string> expected{"open main", "armed", "timer expiry",
                                            "timer liveness", "closed main"};
    CHECK(events == expected);
}

TEST_CASE("shard: a drain offers the main listener's connections to on_drain once each, "
          "never the api listener's, and only in the closing phase",
          "[core][shard][drain]") {
    running_shard s;
    std::vector<int> clients;
    for (int i = 0; i < 4; ++i) {
        clients.push_back(connect_loopback(s.main_port));
        REQUIRE(s.events.wait_for("open main", i + 1));
    }
    const int backend = connect_loopback(s.api_port);
    REQUIRE(s.events.wait_for("open api"));
    // Announced: nothing closes yet. The window is stored before the phase (stop_token).
    s.stop.drain_window_ms.store(0, std::memory_order_relaxed);
    s.stop.drain.store(core::drain_phase::announced, std::memory_order_release);
    const int late = connect_loopback(s.main_port); // still accepted while announced
    REQUIRE(s.events.wait_for("open main", 5));
    s.stop.drain.store(core::drain_phase::closing, std::memory_order_release);
    REQUIRE(s.events.wait_for("closed main", 5));
    for (const int fd : clients) {
        CHECK(closed_by_server(fd));
    }
    CHECK(closed_by_server(late));
    const auto events = s.events.snapshot();
    CHECK(std::count(events.begin(), events.end(), "drain main") == 5);
    CHECK(std::count(events.begin(), events.end(), "drain api") == 0);
    CHECK(std::count(events.begin(), events.end(), "closed api") == 0);
    // The first drain follows the last open: announced closed nothing.
    const auto first_drain = std::find(events.begin(), events.end(), "drain main");
    CHECK(std::count(first_drain, events.end(), "open main") == 0);
    for (const int fd : clients) {
        ::close(fd);
    }
    ::close(late);
    ::close(backend);
}
