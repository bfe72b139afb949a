// echo — N connections, each keeping `window` messages of `size` bytes in flight.
//
// Every message is a masked text frame built once per window slot at setup:
//
//   slot s % W:  [ header | mask key | masked payload: 16 hex digits of seq | filler ]
//
// Sending sequence number s patches only the 16 masked digits of slot s % W and queues a
// reference to the slot; consecutive slots are contiguous, so one send carries every
// message queued while the previous send was in flight. A slot is rewritten only after
// the server echoed its previous message (the window guarantees it), so queued bytes never
// change under the kernel. Each slot has its own masking key, reused every W messages:
// RFC 6455 §5.3 asks for a fresh key per frame to protect proxies from cache poisoning,
// which a loopback benchmark does not need, and the server cannot tell.
//
// Checks: every echo must be a text frame of `size` bytes carrying the next expected
// sequence number and the exact filler; anything else counts as a mismatch (an error).
// RTT is measured from queueing a message to handling its echo, per CQE batch.
#include "scenario.h"
#include "stats.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace ringcast::bench {

namespace {

constexpr std::size_t seq_digits = 16;
/// Per-connection receive buffer: 64 KB takes ~600 echoed 100-byte frames per recv.
constexpr uint32_t echo_recv_buffer_bytes = 64 * 1024;

void write_hex(uint64_t v, std::byte* out) noexcept {
    static constexpr char digits[] = "0123456789abcdef";
    for (int i = int(seq_digits) - 1; i >= 0; --i) {
        out[i] = std::byte(digits[v & 15]);
        v >>= 4;
    }
}

bool read_hex(std::span<const std::byte> in, uint64_t& v) noexcept {
    v = 0;
    for (std::size_t i = 0; i < seq_digits; ++i) {
        const auto c = char(in[i]);
        unsigned d = 0;
        if (c >= '0' && c <= '9') {
            d = unsigned(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = unsigned(c - 'a' + 10);
        } else {
            return false;
        }
        v = v << 4 | d;
    }
    return true;
}

class echo_scenario final : public conn_handler {
public:
    echo_scenario(run_context& ctx) : _ctx(ctx), _opt(ctx.options()) {}

    int run(report& out);

    void on_open(uint32_t conn, uint64_t now) noexcept override {
        if (!_sending) {
            return;
        }
        for (uint32_t i = 0; i < _opt.window; ++i) {
            send_next(conn, now);
        }
    }

    void on_message(uint32_t conn, ws::opcode type, std::span<const std::byte> payload,
                    uint64_t now) noexcept override {
        per_conn& pc = _conns[conn];
        uint64_t seq = pc.expect_seq;
        bool ok = type == ws::opcode::text && payload.size() == _opt.size;
        if (ok) {
            uint64_t got = 0;
            if (!read_hex(payload, got)) {
                ok = false;
            } else {
                if (got != pc.expect_seq) {
                    ok = false;
                }
                if (got >= pc.expect_seq && got < pc.next_seq) {
                    seq = got; // realign so one loss is one error, not a cascade
                }
            }
            ok =
                ok && std::memcmp(payload.data() + seq_digits, _filler.data(), _filler.size()) == 0;
        }
        if (!ok) {
            ++_mismatches;
        }
        if (pc.in_flight > 0) {
            --pc.in_flight;
        }
        pc.expect_seq = seq + 1;
        if (_measuring) {
            const uint64_t rtt =
                now - _send_ns[std::size_t(conn) * _opt.window + seq % _opt.window];
            _total.record(rtt);
            _interval.record(rtt);
            ++_messages;
        }
        if (_sending) {
            send_next(conn, now);
        }
    }

    void on_closed(uint32_t, close_cause cause) noexcept override {
        if (_measuring && cause != close_cause::local) {
            ++_lost_in_window;
        }
    }

    void on_tick(uint64_t now) noexcept override {
        if (now < _next_progress) {
            return;
        }
        _next_progress = now + 1'000'000'000u;
        if (!_measuring) {
            return;
        }
        const double dt = double(now - _last_progress_ns) / 1e9;
        const double cpu = self_cpu_seconds();
        const double server = _opt.server_pid > 0 ? process_cpu_seconds(_opt.server_pid) : -1;
        const double host = host_busy_seconds();
        char server_pct[16] = "n/a";
        if (server >= 0) {
            std::snprintf(server_pct, sizeof server_pct, "%.0f%%",
                          100.0 * (server - _last_server_cpu) / dt);
        }
        char line[256];
        std::snprintf(line, sizeof line,
                      "echo %4.0fs  open %u  msgs/s %s  rtt p50 %.0fus p99 %.0fus  "
                      "errors %llu  cpu bench %.0f%% server %s host %.0f%%",
                      double(now - _window_start_ns) / 1e9, _client->open_count(),
                      human(double(_messages - _last_messages) / dt).c_str(),
                      double(_interval.percentile(0.5)) / 1e3,
                      double(_interval.percentile(0.99)) / 1e3,
                      static_cast<unsigned long long>(_mismatches + _lost_in_window),
                      100.0 * (cpu - _last_cpu) / dt, server_pct, 100.0 * (host - _last_host) / dt);
        _ctx.progress(line);
        _interval.reset();
        _last_messages = _messages;
        _last_progress_ns = now;
        _last_cpu = cpu;
        _last_server_cpu = server;
        _last_host = host;
    }

private:
    struct per_conn {
        uint64_t next_seq = 0;
        uint64_t expect_seq = 0;
        uint32_t in_flight = 0;
    };

    bool build_frames();
    void send_next(uint32_t conn, uint64_t now) noexcept {
        per_conn& pc = _conns[conn];
        if (pc.in_flight >= _opt.window) {
            return;
        }
        const uint64_t seq = pc.next_seq;
        const std::size_t index = std::size_t(conn) * _opt.window + seq % _opt.window;
        std::byte* frame = _frames.get() + index * _frame_bytes;
        std::array<std::byte, seq_digits> digits;
        write_hex(seq, digits.data());
        ws::apply_mask(digits, _keys[index]);
        std::memcpy(frame + _header_bytes, digits.data(), digits.size());
        _send_ns[index] = now;
        if (_client->queue_data(conn, std::span<const std::byte>(frame, _frame_bytes)) !=
            queue_status::queued) {
            ++_send_refused;
            return;
        }
        ++pc.next_seq;
        ++pc.in_flight;
    }

    run_context& _ctx;
    const bench_options& _opt;
    client* _client = nullptr;
    std::vector<per_conn> _conns;
    std::unique_ptr<std::byte[]> _frames; ///< connections × window slots × frame bytes
    std::vector<std::array<std::byte, 4>> _keys;
    std::vector<uint64_t> _send_ns;
    std::vector<std::byte> _filler;
    std::size_t _header_bytes = 0;
    std::size_t _frame_bytes = 0;
    latency_histogram _total;
    latency_histogram _interval;
    uint64_t _messages = 0;
    uint64_t _mismatches = 0;
    uint64_t _lost_in_window = 0;
    uint64_t _send_refused = 0;
    uint64_t _next_progress = 0;
    uint64_t _window_start_ns = 0;
    uint64_t _last_progress_ns = 0;
    uint64_t _last_messages = 0;
    double _last_cpu = 0;
    double _last_server_cpu = 0;
    double _last_host = 0;
    bool _measuring = false;
    bool _sending = true;
};

bool echo_scenario::build_frames() {
    const uint32_t n = _ctx.connections();
    const std::size_t slots = std::size_t(n) * _opt.window;
    _header_bytes = ws::frame_header_size(_opt.size, true);
    _frame_bytes = _header_bytes + _opt.size;
    _frames.reset(new (std::nothrow) std::byte[slots * _frame_bytes]);
    if (_frames == nullptr) {
        std::fprintf(stderr, "ringcast-bench: cannot allocate %zu bytes of echo frames\n",
                     slots * _frame_bytes);
        return false;
    }
    _filler.resize(_opt.size - seq_digits);
    for (std::size_t i = 0; i < _filler.size(); ++i) {
        _filler[i] = std::byte('a' + i % 26);
    }
    _keys.resize(slots);
    _send_ns.assign(slots, 0);
    _conns.assign(n, per_conn{});
    std::vector<std::byte> payload(_opt.size);
    std::memcpy(payload.data() + seq_digits, _filler.data(), _filler.size());
    for (std::size_t i = 0; i < slots; ++i) {
        std::byte* frame = _frames.get() + i * _frame_bytes;
        _keys[i] = _client->random_mask();
        const std::size_t h =
            ws::write_frame_header(frame, ws::opcode::text, _opt.size, ws::fin::yes, &_keys[i]);
        if (h != _header_bytes) {
            std::fprintf(stderr,
                         "ringcast-bench: ws::write_frame_header wrote %zu bytes, "
                         "frame_header_size said %zu\n",
                         h, _header_bytes);
            return false;
        }
        write_hex(0, payload.data());
        std::memcpy(frame + h, payload.data(), payload.size());
        ws::apply_mask(std::span<std::byte>(frame + h, _opt.size), _keys[i]);
    }
    return true;
}

int echo_scenario::run(report& out) {
    client cl(_ctx.make_client_config(echo_recv_buffer_bytes), *this);
    if (!cl.ok()) {
        std::fprintf(stderr, "ringcast-bench: %s\n", cl.setup_error().c_str());
        return 2;
    }
    _client = &cl;
    if (!build_frames()) {
        return 2;
    }
    const uint32_t n = _ctx.connections();

    // Phase 1: open every connection (each starts echoing at once; not measured yet).
    const uint64_t connect_deadline =
        now_ns() + uint64_t(_opt.connect_timeout_ms) * 1'000'000u * 2 + 5'000'000'000u;
    cl.run_until(connect_deadline,
                 [&] { return cl.counters().connects_started == n && cl.pending_opens() == 0; });
    cl.stop_connecting();

    // Phase 2: the measured window.
    _ctx.reach(checkpoint::window_start);
    const uint64_t start = now_ns();
    const double cpu_start = self_cpu_seconds();
    const client_counters c0 = cl.counters();
    _window_start_ns = _last_progress_ns = start;
    _next_progress = start + 1'000'000'000u;
    _last_cpu = cpu_start;
    _last_server_cpu = _opt.server_pid > 0 ? process_cpu_seconds(_opt.server_pid) : -1;
    _last_host = host_busy_seconds();
    _measuring = true;
    cl.run_until(start + uint64_t(_opt.seconds * 1e9), [] { return false; });
    _measuring = false;
    const uint64_t end = now_ns();
    const double cpu_end = self_cpu_seconds();
    const client_counters c1 = cl.counters();
    _ctx.reach(checkpoint::window_end);

    // Phase 3: stop sending, close cleanly (bounded), then drop whatever is left.
    _sending = false;
    cl.begin_close_all();
    cl.run_until(now_ns() + 2'000'000'000u, [&] { return cl.live_count() == 0; });
    cl.abort_all();

    const double secs = double(end - start) / 1e9;
    const auto rate = [&](double v) { return secs > 0 ? v / secs : 0.0; };
    const client_counters& cf = cl.counters();
    const uint64_t never_opened = n - cf.opened;
    const uint64_t errors = _mismatches + cf.protocol_errors + _lost_in_window + never_opened;
    out.hist = _total;
    out.set("connections", double(cf.opened), merge_rule::sum);
    out.set("messages_per_s", rate(double(_messages)), merge_rule::sum);
    out.add_percentiles("rtt_us");
    out.set("errors", double(errors), merge_rule::sum);
    out.set("bytes_per_s", rate(double(_messages) * _opt.size), merge_rule::sum);
    out.set("connections_requested", double(n), merge_rule::sum);
    out.set("window", _opt.window);
    out.set("size", _opt.size);
    out.set("seconds", secs, merge_rule::max);
    out.set("messages", double(_messages), merge_rule::sum);
    out.set("mismatches", double(_mismatches), merge_rule::sum);
    out.set("connect_failures", double(never_opened), merge_rule::sum);
    out.set("connections_lost", double(_lost_in_window), merge_rule::sum);
    out.set("protocol_errors", double(cf.protocol_errors), merge_rule::sum);
    out.set("send_refused", double(_send_refused), merge_rule::sum);
    out.set("wire_bytes_per_s",
            rate(double(c1.bytes_sent - c0.bytes_sent + c1.bytes_received - c0.bytes_received)),
            merge_rule::sum);
    out.set("sends_per_s", rate(double(c1.send_calls - c0.send_calls)), merge_rule::sum);
    out.set("recvs_per_s", rate(double(c1.recv_calls - c0.recv_calls)), merge_rule::sum);
    out.set("loop_iterations_per_s", rate(double(c1.loop_iterations - c0.loop_iterations)),
            merge_rule::sum);
    out.set("cqes_per_iteration",
            c1.loop_iterations > c0.loop_iterations
                ? double(c1.cqes - c0.cqes) / double(c1.loop_iterations - c0.loop_iterations)
                : 0,
            merge_rule::max);
    out.set("bench_cpu_pct", secs > 0 ? 100.0 * (cpu_end - cpu_start) / secs : 0, merge_rule::sum);
    return 0;
}

} // namespace

int run_echo(run_context& ctx, report& out) {
    echo_scenario s(ctx);
    return s.run(out);
}

} // namespace ringcast::bench
