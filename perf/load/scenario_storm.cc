// storm — open N connections as fast as the server takes them: handshakes/s, failures,
// connect latency.
//
// Phases: window_start → connect (at most --connect-concurrency handshakes in flight,
// spread over 127.0.0.1..K like idle) until every connection is ready or failed →
// window_end (the server's CPU over the storm) → close cleanly.
//
// "Ready" is what an application waits for: ringcast and plain ws, the 101 with a valid
// Sec-WebSocket-Accept; socketio, the Socket.IO connect answer (40{"sid":..}) after the
// Engine.IO open. handshakes_per_s = ready / (last ready − first connect started);
// connect_us is per connection, from its connect() to ready.
#include "scenario.h"
#include "stats.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace ringcast::bench {

namespace {

constexpr uint32_t storm_recv_buffer_bytes = 2048;
constexpr uint64_t s_ns = 1'000'000'000u;

class storm_scenario final : public conn_handler {
public:
    explicit storm_scenario(run_context& ctx) : _ctx(ctx), _opt(ctx.options()) {}

    int run(report& out);

    void on_open(uint32_t conn, uint64_t now) noexcept override {
        if (!_layer.ready_on_open() && _layer.protocol() == wire_protocol::socketio) {
            return; // ready when the Socket.IO connect is answered
        }
        ready(conn, now);
    }
    void on_message(uint32_t conn, ws::opcode, std::span<const std::byte> payload,
                    uint64_t now) noexcept override {
        const std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
        if (_layer.protocol() != wire_protocol::socketio) {
            ++_messages;
            return;
        }
        switch (_layer.on_text(*_client, conn, text)) {
        case protocol_layer::verdict::ready:
            ready(conn, now);
            break;
        case protocol_layer::verdict::refused:
            ++_refused;
            _client->begin_close(conn);
            break;
        case protocol_layer::verdict::delivery:
            ++_messages;
            break;
        case protocol_layer::verdict::handled:
        case protocol_layer::verdict::ack:
            break;
        }
    }
    void on_closed(uint32_t conn, close_cause cause) noexcept override {
        if (!_ready[conn] && cause != close_cause::local) {
            ++_lost_before_ready; // failed connects are in the client's counters too
        }
    }
    void on_tick(uint64_t now) noexcept override {
        if (now < _next_progress) {
            return;
        }
        const double dt = double(now - _last_progress_ns) / 1e9;
        _next_progress = now + s_ns;
        const client_counters& c = _client->counters();
        char line[256];
        std::snprintf(line, sizeof line,
                      "storm %4.0fs  ready %u/%u  handshakes/s %s  in flight %u  failed %llu",
                      double(now - _start_ns) / 1e9, _ready_count, _ctx.connections(),
                      human(dt > 0 ? double(_ready_count - _last_ready) / dt : 0).c_str(),
                      _client->pending_opens(),
                      static_cast<unsigned long long>(c.connect_failed + c.connect_timeout +
                                                      c.handshake_failed));
        _ctx.progress(line);
        _last_ready = _ready_count;
        _last_progress_ns = now;
    }

private:
    void ready(uint32_t conn, uint64_t now) noexcept {
        if (_ready[conn]) {
            return;
        }
        _ready[conn] = true;
        ++_ready_count;
        _last_ready_ns = now;
        const uint64_t started = _client->started_ns(conn);
        _connect.record(now > started ? now - started : 0);
    }

    run_context& _ctx;
    const bench_options& _opt;
    client* _client = nullptr;
    protocol_layer _layer;
    std::vector<bool> _ready;
    latency_histogram _connect;
    uint32_t _ready_count = 0;
    uint32_t _last_ready = 0;
    uint64_t _refused = 0;
    uint64_t _messages = 0;
    uint64_t _lost_before_ready = 0;
    uint64_t _start_ns = 0;
    uint64_t _last_ready_ns = 0;
    uint64_t _next_progress = 0;
    uint64_t _last_progress_ns = 0;
};

int storm_scenario::run(report& out) {
    client cl(_ctx.make_client_config(storm_recv_buffer_bytes), *this);
    if (!cl.ok()) {
        std::fprintf(stderr, "ringcast-bench: %s\n", cl.setup_error().c_str());
        return 2;
    }
    _client = &cl;
    _layer = protocol_layer(_opt.protocol, cl);
    const uint32_t n = _ctx.connections();
    _ready.assign(n, false);

    _ctx.reach(checkpoint::window_start);
    const double cpu_start = self_cpu_seconds();
    _start_ns = now_ns();
    _last_progress_ns = _start_ns;
    _next_progress = _start_ns + s_ns;
    // Bounded like idle's connect phase: every connect has its own timeout as well.
    const uint64_t deadline = _start_ns + uint64_t(_opt.connect_timeout_ms) * 1'000'000u +
                              uint64_t(n) * 1'000'000u + 5 * s_ns;
    const bool wait_for_connect = _layer.protocol() == wire_protocol::socketio;
    cl.run_until(deadline, [&] {
        if (cl.counters().connects_started < n || cl.pending_opens() != 0) {
            return false;
        }
        // socketio: opened connections still owe their 40; the others are ready on open.
        return !wait_for_connect ||
               _ready_count + _refused + _lost_before_ready >= cl.counters().opened;
    });
    cl.stop_connecting();
    const double cpu_end = self_cpu_seconds();
    const uint64_t end = _last_ready_ns > _start_ns ? _last_ready_ns : now_ns();
    _ctx.reach(checkpoint::window_end);

    cl.begin_close_all();
    cl.run_until(now_ns() + 5 * s_ns, [&] { return cl.live_count() == 0; });
    cl.abort_all();

    const client_counters& c = cl.counters();
    const double secs = double(end - _start_ns) / 1e9;
    out.hist = _connect;
    out.set("protocol", double(_opt.protocol)); // 0 ringcast, 1 ws, 2 socketio
    out.set("connections_requested", double(n), merge_rule::sum);
    out.set("ready", double(_ready_count), merge_rule::sum);
    out.set("failures", double(n - _ready_count), merge_rule::sum);
    out.set("opened", double(c.opened), merge_rule::sum);
    out.set("connect_failed", double(c.connect_failed), merge_rule::sum);
    out.set("connect_timeout", double(c.connect_timeout), merge_rule::sum);
    out.set("handshake_failed", double(c.handshake_failed), merge_rule::sum);
    out.set("refused", double(_refused), merge_rule::sum);
    out.set("lost_before_ready", double(_lost_before_ready), merge_rule::sum);
    out.set("storm_seconds", secs, merge_rule::max);
    out.set("handshakes_per_s", secs > 0 ? double(_ready_count) / secs : 0, merge_rule::sum);
    out.add_percentiles("connect_us");
    out.set("connect_concurrency", _opt.connect_concurrency);
    out.set("bench_cpu_pct", secs > 0 ? 100.0 * (cpu_end - cpu_start) / secs : 0, merge_rule::sum);
    return 0;
}

} // namespace

int run_storm(run_context& ctx, report& out) {
    storm_scenario s(ctx);
    return s.run(out);
}

} // namespace ringcast::bench
