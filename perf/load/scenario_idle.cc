// idle — open N connections, hold them, measure what they cost the server.
//
// Phases: connect (at most --connect-concurrency handshakes in flight, spread over
// 127.0.0.1..K) → window_start → settle 1 s (or half the hold) → all_held: the runner
// samples the server's RSS and the kernel's socket memory → hold until --seconds after
// window_start, answering server pings (the client does that itself) → window_end →
// close cleanly. The runner turns the samples into "RSS delta per connection".
//
// Receive buffers are small (2 KB): an idle connection only ever sees the 101 response,
// pings and a close frame.
#include "scenario.h"
#include "stats.h"

#include <cstdio>

namespace ringcast::bench {

namespace {

constexpr uint32_t idle_recv_buffer_bytes = 2048;
/// How long the connections sit before the memory sample: lets the server finish lazy
/// per-connection work (timers, first ping) so the sample shows the steady state.
constexpr uint64_t settle_ns = 1'000'000'000u;

class idle_scenario final : public conn_handler {
public:
    explicit idle_scenario(run_context& ctx) : _ctx(ctx), _opt(ctx.options()) {}

    int run(report& out);

    void on_open(uint32_t conn, uint64_t) noexcept override {
        _connect.record(_client->open_latency_ns(conn));
    }
    void on_message(uint32_t conn, ws::opcode, std::span<const std::byte> payload,
                    uint64_t) noexcept override {
        if (_layer.protocol() == wire_protocol::socketio) {
            // Engine.IO open → our 40; pings → pongs: a Socket.IO connection stays alive
            // only while the client speaks its protocol.
            const auto v = _layer.on_text(
                *_client, conn,
                std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()));
            _socketio_ready += v == protocol_layer::verdict::ready ? 1 : 0;
            return;
        }
        ++_messages;
    }
    void on_closed(uint32_t, close_cause cause) noexcept override {
        if (_holding && cause != close_cause::local) {
            ++_dropped_while_held;
        }
    }
    void on_tick(uint64_t now) noexcept override {
        if (now < _next_progress) {
            return;
        }
        _next_progress = now + 1'000'000'000u;
        const client_counters& c = _client->counters();
        char line[256];
        std::snprintf(
            line, sizeof line, "idle %4.0fs  %s  open %u/%u  failed %llu  dropped %llu  pings %llu",
            double(now - _start_ns) / 1e9, phase_name(), _client->open_count(), _ctx.connections(),
            static_cast<unsigned long long>(c.connect_failed + c.connect_timeout +
                                            c.handshake_failed),
            static_cast<unsigned long long>(_dropped_while_held),
            static_cast<unsigned long long>(c.pings_answered));
        _ctx.progress(line);
    }

private:
    enum class phase : uint8_t { connecting, holding, closing };
    const char* phase_name() const noexcept {
        switch (_phase) {
        case phase::connecting:
            return "connecting";
        case phase::holding:
            return "holding";
        case phase::closing:
            return "closing";
        }
        return "";
    }

    run_context& _ctx;
    const bench_options& _opt;
    client* _client = nullptr;
    protocol_layer _layer;
    uint64_t _socketio_ready = 0;
    latency_histogram _connect;
    uint64_t _messages = 0;
    uint64_t _dropped_while_held = 0;
    uint64_t _start_ns = 0;
    uint64_t _next_progress = 0;
    bool _holding = false;
    phase _phase = phase::connecting;
};

int idle_scenario::run(report& out) {
    client cl(_ctx.make_client_config(idle_recv_buffer_bytes), *this);
    if (!cl.ok()) {
        std::fprintf(stderr, "ringcast-bench: %s\n", cl.setup_error().c_str());
        return 2;
    }
    _client = &cl;
    _layer = protocol_layer(_opt.protocol, cl);
    const uint32_t n = _ctx.connections();
    _start_ns = now_ns();
    _next_progress = _start_ns + 1'000'000'000u;

    // Connect phase: ends when every connection opened or failed; bounded so a server
    // that stops accepting cannot stall the run (every connect has its own timeout too).
    const uint64_t connect_deadline = _start_ns + uint64_t(_opt.connect_timeout_ms) * 1'000'000u +
                                      uint64_t(n) * 1'000'000u + 5'000'000'000u;
    cl.run_until(connect_deadline,
                 [&] { return cl.counters().connects_started == n && cl.pending_opens() == 0; });
    cl.stop_connecting();
    const uint64_t connected = now_ns();
    const double connect_secs = double(connected - _start_ns) / 1e9;

    _ctx.reach(checkpoint::window_start);
    _holding = true;
    _phase = phase::holding;
    const double cpu_start = self_cpu_seconds();
    const uint64_t hold_end = connected + uint64_t(_opt.seconds * 1e9);
    const uint64_t settle = std::min<uint64_t>(settle_ns, (hold_end - connected) / 2);
    cl.run_until(connected + settle, [] { return false; });
    const uint32_t open_when_sampled = cl.open_count();
    _ctx.reach(checkpoint::all_held);
    cl.run_until(hold_end, [] { return false; });
    const uint32_t open_at_end = cl.open_count();
    const double cpu_end = self_cpu_seconds();
    const double hold_secs = double(now_ns() - connected) / 1e9;
    _ctx.reach(checkpoint::window_end);
    _holding = false;
    _phase = phase::closing;

    cl.begin_close_all();
    cl.run_until(now_ns() + 5'000'000'000u, [&] { return cl.live_count() == 0; });
    cl.abort_all();

    const client_counters& c = cl.counters();
    out.hist = _connect;
    out.set("connections_requested", double(n), merge_rule::sum);
    out.set("connections", double(open_when_sampled), merge_rule::sum);
    out.set("failures", double(n - c.opened), merge_rule::sum);
    out.set("connect_failed", double(c.connect_failed), merge_rule::sum);
    out.set("connect_timeout", double(c.connect_timeout), merge_rule::sum);
    out.set("handshake_failed", double(c.handshake_failed), merge_rule::sum);
    out.set("dropped_while_held", double(_dropped_while_held), merge_rule::sum);
    out.set("open_at_end", double(open_at_end), merge_rule::sum);
    out.set("pings_answered", double(c.pings_answered), merge_rule::sum);
    out.set("protocol", double(_opt.protocol)); // 0 ringcast, 1 ws, 2 socketio
    out.set("socketio_connected", double(_socketio_ready), merge_rule::sum);
    out.set("messages_received", double(_messages), merge_rule::sum);
    out.set("connect_seconds", connect_secs, merge_rule::max);
    out.set("connects_per_s", connect_secs > 0 ? double(c.opened) / connect_secs : 0,
            merge_rule::sum);
    out.add_percentiles("connect_us");
    out.set("hold_seconds", hold_secs, merge_rule::max);
    out.set("bench_cpu_pct", hold_secs > 0 ? 100.0 * (cpu_end - cpu_start) / hold_secs : 0,
            merge_rule::sum);
    return 0;
}

} // namespace

int run_idle(run_context& ctx, report& out) {
    idle_scenario s(ctx);
    return s.run(out);
}

} // namespace ringcast::bench
