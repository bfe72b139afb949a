// fanout — N subscribers on C channels, one publisher, deliveries/s, latency and loss.
//
// Phases (every one bounded in time; --procs workers move through them together):
//
//   subscribe  each subscriber connects to /ws, sends {"op":"subscribe","channel":
//              "bench-i","id":1} (i = global index mod C) and waits for its ok reply;
//              socketio: connects (Engine.IO open, 40 → 40{..}), and with --socketio-join
//              emits 42<1>["EVENT","bench-i"] and waits for its ACK 431[{"ok":true..}]
//   barrier    worker 0 (the publisher) waits until every worker has arrived, then sets
//              `go` in the shared area: nothing is published before all subscribed
//   publish    worker 0 publishes for --seconds (fanout_publisher.h); window_start /
//              window_end bracket it for the server CPU sample
//   answers    worker 0 waits for the answers to its publishes (until drain ends), then
//              writes the accepted count per channel to the shared area and sets `done`
//   drain      every worker waits until its subscribers received what was accepted on
//              their channels, at most --drain-ms after the last publish; then closes
//
// Shared area (run_context::shared_area, std::atomic_ref on 8-byte words):
//
//   [0] workers subscribed   [1] go     [2] stopped   [3] done
//   [4] publish start ns     [5] publish end ns        [8 + c] accepted on channel c
//
// Per subscriber, on the hot path: locate "seq": and "t": (memchr for the envelope's first
// 'q'; the data object comes before the pad) and "offset": (read backwards from the end),
// then O(1) bookkeeping — received, a
// 64-message window of seen sequence numbers for duplicates vs late arrivals, the last
// offset, and receive time − t (one CLOCK_MONOTONIC on one host) into the histogram.
//
// --ack-every N (ringcast): after every N messages a subscriber received it acks the last
// one's offset, {"op":"ack","channel":C,"offset":O} without an id (the server answers only
// errors). The frame is written into the subscriber's own ack area (ack_area_bytes) and
// queued by reference; the area is reused from its start once the connection has nothing
// queued or in flight (client::send_idle), so the acks of one receive batch go out as one
// contiguous range. An area full of unsent acks skips the ack (acks_skipped; the next one
// covers it, acks are cumulative).
#include "fanout_publisher.h"
#include "scenario.h"
#include "stats.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace ringcast::bench {

namespace {

constexpr uint64_t ms_ns = 1'000'000;
/// Receive buffers in total per process: 256 MB split over the subscribers, each between
/// 4 KB (one recv per ~16 envelopes) and 64 KB (what echo uses).
constexpr std::size_t recv_budget_bytes = 256u << 20;
/// The publisher's arenas and output strings: window × message size stays below this.
constexpr std::size_t max_in_flight_bytes = 256u << 20;
/// Longest wait at the barrier for the other workers (they may still be connecting).
constexpr uint64_t barrier_timeout_ns = 120'000 * ms_ns;

enum shared_word : std::size_t {
    subscribed_workers = 0,
    go = 1,
    stopped = 2,
    done = 3,
    publish_start_ns = 4,
    publish_end_ns = 5,
    first_channel = 8,
};

/// joining: socketio with --socketio-join, connected and the join event sent, no ACK yet.
enum class sub_state : uint8_t { connecting, subscribing, joining, subscribed, rejected, gone };

/// The ack id of every subscriber's one join event (--socketio-join).
constexpr uint32_t join_ack_id = 1;

/// Bytes of ack frames one subscriber may have queued and unsent: ~60 B each, so 64 acks
/// (a whole receive batch of small envelopes with --ack-every 1).
constexpr std::size_t ack_area_bytes = 4096;

/// One subscriber; 56 bytes, plain data, touched only by this process's loop.
struct subscriber {
    uint64_t highest_seq = 0;
    uint64_t seen = 0; ///< bit d: seq highest_seq - d arrived (d < 64)
    int64_t last_offset = -1;
    uint64_t received = 0;
    uint32_t duplicates = 0;
    uint32_t out_of_order = 0;
    uint32_t out_of_order_offset = 0;
    uint32_t channel = 0;
    uint32_t since_ack = 0;  ///< messages received since the last ack (--ack-every)
    uint16_t ack_used = 0;   ///< bytes of its ack area queued since the connection was idle
    sub_state state = sub_state::connecting;
};

/// Digits at `p` (up to `end`) as a number; -1 when there is none. `*next` gets the end.
int64_t digits_at(const char* p, const char* end, const char** next) noexcept {
    uint64_t v = 0;
    const auto r = std::from_chars(p, end, v);
    *next = r.ptr;
    return r.ptr == p ? -1 : int64_t(v);
}

/// The publisher's data object {"seq":S,"t":T,... inside the envelope: "q" occurs in none
/// of the envelope's field names before it, so memchr('q') (vectorised) lands on "seq"
/// at once; "t" follows S directly. Falls back to memmem when the layout differs.
/// Returns false when either number is missing. glibc memmem on these short texts cost
/// 40 % of the bench's CPU at 2 M deliveries/s; this is a few ns.
bool seq_and_t(std::string_view text, int64_t& seq, int64_t& t) noexcept {
    const char* begin = text.data();
    const char* end = begin + text.size();
    const char* p = begin + 2;
    const char* after = nullptr;
    seq = -1;
    // Bounded by the text: each step moves past one 'q'.
    while (p < end) {
        p = static_cast<const char*>(std::memchr(p, 'q', std::size_t(end - p)));
        if (p == nullptr) {
            break;
        }
        if (end - p > 3 && p[-2] == '"' && p[-1] == 'e' && p[1] == '"' && p[2] == ':' &&
            p[-3] == 's') {
            seq = digits_at(p + 3, end, &after);
            break;
        }
        ++p;
    }
    if (seq < 0) {
        seq = number_after(text, "\"seq\":");
        t = number_after(text, "\"t\":");
        return seq >= 0 && t >= 0;
    }
    if (end - after > 5 && std::memcmp(after, ",\"t\":", 5) == 0) {
        t = digits_at(after + 5, end, &after);
    } else {
        t = number_after(text, "\"t\":");
    }
    return t >= 0;
}

class fanout_scenario final : public conn_handler {
public:
    explicit fanout_scenario(run_context& ctx) : _ctx(ctx), _opt(ctx.options()) {}

    int run(report& out);

    void on_open(uint32_t conn, uint64_t) noexcept override {
        if (conn >= _subs.size()) {
            return; // a publisher connection (ws): it only sends
        }
        subscriber& s = _subs[conn];
        s.state = sub_state::subscribing;
        if (_layer.ready_on_open()) {
            return subscribed(s, -1);
        }
        if (_layer.protocol() != wire_protocol::ringcast) {
            return; // socketio: the server speaks first (Engine.IO open)
        }
        const auto& frame = _subscribe_frames[s.channel];
        if (_client->queue_data(conn, frame) != queue_status::queued) {
            s.state = sub_state::rejected;
            ++_subscribe_failed;
            ++_settled;
        }
    }

    void on_message(uint32_t conn, ws::opcode, std::span<const std::byte> payload,
                    uint64_t now) noexcept override {
        const std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
        if (conn >= _subs.size()) {
            _publisher->on_ws_message(conn, payload);
            return;
        }
        subscriber& s = _subs[conn];
        if (_layer.protocol() != wire_protocol::ringcast) {
            return on_peer_message(conn, s, text, now);
        }
        if (s.state == sub_state::subscribed) {
            // Envelopes start {"id":; after the subscribe reply only errors start {"op":
            // (an ack refused: 400 without an ack namespace, 429 over the command rate).
            if (text.size() > 6 && text[2] == 'o' && text.starts_with("{\"op\":")) {
                return on_reply_while_subscribed(text);
            }
            return on_envelope(conn, s, text, now);
        }
        if (s.state != sub_state::subscribing || text.find("\"op\":\"reply\"") == text.npos) {
            ++_unexpected;
            return;
        }
        if (text.find("\"ok\":true") == text.npos) {
            ++_settled;
            s.state = sub_state::rejected;
            ++_subscribe_failed;
            const int64_t code = number_after(text, "\"code\":");
            _subscribe_error = code > 0 ? uint32_t(code) : 0;
            return;
        }
        subscribed(s, number_after(text, "\"offset\":"));
    }

    void on_closed(uint32_t conn, close_cause cause) noexcept override {
        if (conn >= _subs.size()) {
            if (_publisher != nullptr && cause != close_cause::local) {
                _publisher->on_ws_closed(conn);
            }
            return;
        }
        subscriber& s = _subs[conn];
        if (s.state == sub_state::connecting || s.state == sub_state::subscribing ||
            s.state == sub_state::joining) {
            ++_settled;
            ++_subscribe_failed;
        } else if (s.state == sub_state::subscribed && cause != close_cause::local) {
            ++_subscribers_lost; // its loss shows up as missing deliveries
        }
        if (s.state != sub_state::subscribed) {
            s.state = sub_state::gone;
        }
    }

    void on_tick(uint64_t now) noexcept override {
        if (_publisher != nullptr) {
            _publisher->step(now);
        }
        if (now >= _next_progress) {
            progress(now);
        }
    }

private:
    void subscribed(subscriber& s, int64_t offset) noexcept {
        ++_settled;
        s.state = sub_state::subscribed;
        s.last_offset = offset;
        ++_subscribed;
    }
    void on_peer_message(uint32_t conn, subscriber& s, std::string_view text,
                         uint64_t now) noexcept;
    void on_envelope(uint32_t conn, subscriber& s, std::string_view text,
                     uint64_t now) noexcept;
    void on_reply_while_subscribed(std::string_view text) noexcept;
    void send_ack(uint32_t conn, subscriber& s, int64_t offset) noexcept;
    void build_ack_prefixes(client& cl);
    void emit_interval_json(uint64_t now, double dt, double bench_pct, double server_pct);
    void progress(uint64_t now) noexcept;
    bool build_subscribe_frames(client& cl);
    /// Runs the loop in 1 ms slices until `until()` or `deadline`: the slices bound the
    /// wait inside the client so the publisher's step and the shared flags are looked at
    /// at least once a millisecond.
    template <typename Until> void run_slices(client& cl, uint64_t deadline, Until until) {
        for (uint64_t now = now_ns(); now < deadline && !until(); now = now_ns()) {
            cl.run_until(std::min(deadline, now + ms_ns), [] { return false; });
        }
    }
    std::atomic_ref<uint64_t> word(std::size_t i) const noexcept {
        return std::atomic_ref<uint64_t>(reinterpret_cast<uint64_t*>(_ctx.shared_area().data())[i]);
    }

    run_context& _ctx;
    const bench_options& _opt;
    client* _client = nullptr;
    std::unique_ptr<fanout_publisher> _publisher;
    protocol_layer _layer;
    std::vector<subscriber> _subs;
    std::vector<std::vector<std::byte>> _subscribe_frames; ///< one masked frame per channel
    std::vector<std::vector<std::byte>> _join_frames;      ///< --socketio-join, per channel
    std::vector<std::string> _ack_prefixes;                ///< per channel (--ack-every)
    std::vector<std::array<std::byte, 4>> _ack_masks;      ///< per channel, like subscribe's
    std::unique_ptr<std::byte[]> _ack_areas;               ///< ack_area_bytes per subscriber
    latency_histogram _total;
    latency_histogram _interval;
    uint64_t _deliveries = 0;
    uint64_t _window_deliveries = 0;
    uint64_t _duplicates = 0;
    uint64_t _malformed = 0;
    uint64_t _unexpected = 0;
    uint64_t _acks_sent = 0;
    uint64_t _window_acks = 0;
    uint64_t _acks_skipped = 0;
    uint64_t _ack_errors = 0;
    uint32_t _ack_last_error = 0;
    uint32_t _settled = 0;
    uint32_t _subscribed = 0;
    uint32_t _subscribe_failed = 0;
    uint32_t _subscribe_error = 0;
    uint32_t _subscribers_lost = 0;
    const char* _phase = "subscribing";
    uint64_t _start_ns = 0;
    uint64_t _next_progress = 0;
    uint64_t _last_progress_ns = 0;
    uint64_t _last_deliveries = 0;
    uint64_t _last_sent = 0;
    uint64_t _interval_sent = 0;
    double _last_cpu = 0;
    double _last_server_cpu = -1;
    bool _in_window = false;
};

void fanout_scenario::on_envelope(uint32_t conn, subscriber& s, std::string_view text,
                                  uint64_t now) noexcept {
    int64_t seq = -1;
    int64_t t = -1;
    if (!seq_and_t(text, seq, t)) {
        ++_malformed;
        return;
    }
    ++s.received;
    ++_deliveries;
    if (_in_window) {
        ++_window_deliveries;
    }
    const uint64_t latency = now > uint64_t(t) ? now - uint64_t(t) : 0;
    _total.record(latency);
    _interval.record(latency);
    const auto q = uint64_t(seq);
    if (q > s.highest_seq) {
        const uint64_t shift = q - s.highest_seq;
        s.seen = (shift >= 64 ? 0 : s.seen << shift) | 1;
        s.highest_seq = q;
    } else {
        const uint64_t back = s.highest_seq - q;
        const uint64_t bit = back < 64 ? uint64_t(1) << back : 0;
        if (bit != 0 && (s.seen & bit) != 0) {
            ++s.duplicates;
            ++_duplicates;
        } else {
            s.seen |= bit;
            ++s.out_of_order; // older than 64 behind: a late arrival or a repeat, unknowable
        }
    }
    if (_layer.protocol() != wire_protocol::ringcast) {
        return; // peers have no offsets
    }
    const int64_t offset = envelope_offset(text);
    // By offset: the same offset again is a repeat (already counted by seq when it was
    // within the window); a smaller one is out of order.
    if (offset > s.last_offset) {
        s.last_offset = offset;
    } else if (offset >= 0 && offset < s.last_offset) {
        ++s.out_of_order_offset;
    }
    if (_opt.ack_every != 0 && ++s.since_ack >= _opt.ack_every && offset >= 0) {
        s.since_ack = 0;
        send_ack(conn, s, offset);
    }
}

void fanout_scenario::send_ack(uint32_t conn, subscriber& s, int64_t offset) noexcept {
    std::byte* area = _ack_areas.get() + std::size_t(conn) * ack_area_bytes;
    if (_client->send_idle(conn)) {
        s.ack_used = 0; // everything queued before went out: the area is free again
    }
    const std::string& prefix = _ack_prefixes[s.channel];
    if (s.ack_used + max_ack_frame_bytes(prefix.size()) > ack_area_bytes) {
        ++_acks_skipped;
        return;
    }
    std::byte* at = area + s.ack_used;
    const std::size_t len = write_ack_frame(at, prefix, uint64_t(offset), _ack_masks[s.channel]);
    if (len == 0 || _client->queue_data(conn, std::span<const std::byte>(at, len)) !=
                        queue_status::queued) {
        ++_acks_skipped; // not open any more (closing), or the send list is full
        return;
    }
    s.ack_used = uint16_t(s.ack_used + len);
    ++_acks_sent;
    if (_in_window) {
        ++_window_acks;
    }
}

void fanout_scenario::on_reply_while_subscribed(std::string_view text) noexcept {
    if (text.find("\"ok\":false") == text.npos) {
        ++_unexpected; // a notice, or a reply nothing asked for
        return;
    }
    ++_ack_errors;
    const int64_t code = number_after(text, "\"code\":");
    _ack_last_error = code > 0 ? uint32_t(code) : 0;
}

void fanout_scenario::on_peer_message(uint32_t conn, subscriber& s, std::string_view text,
                                      uint64_t now) noexcept {
    switch (_layer.on_text(*_client, conn, text)) {
    case protocol_layer::verdict::handled:
        return;
    case protocol_layer::verdict::delivery:
        if (s.state == sub_state::subscribed) {
            return on_envelope(conn, s, text, now);
        }
        ++_unexpected;
        return;
    case protocol_layer::verdict::ready:
        if (s.state != sub_state::subscribing) {
            return;
        }
        if (_join_frames.empty()) {
            return subscribed(s, -1);
        }
        // Connected: join the room (ringcastd's /socket.io/); subscribed at the ACK.
        s.state = sub_state::joining;
        if (_client->queue_data(conn, _join_frames[s.channel]) != queue_status::queued) {
            s.state = sub_state::rejected;
            ++_subscribe_failed;
            ++_settled;
        }
        return;
    case protocol_layer::verdict::ack:
        if (s.state != sub_state::joining) {
            ++_unexpected;
            return;
        }
        switch (socketio_ack_ok(text, join_ack_id)) {
        case 1:
            return subscribed(s, number_after(text, "\"offset\":"));
        case 0: {
            ++_settled;
            s.state = sub_state::rejected;
            ++_subscribe_failed;
            const int64_t code = number_after(text, "\"code\":");
            _subscribe_error = code > 0 ? uint32_t(code) : 0;
            return;
        }
        default:
            ++_unexpected;
            return;
        }
    case protocol_layer::verdict::refused:
        if (s.state == sub_state::subscribing || s.state == sub_state::joining) {
            ++_settled;
            ++_subscribe_failed;
            s.state = sub_state::rejected;
        }
        return;
    }
}

void fanout_scenario::progress(uint64_t now) noexcept {
    _next_progress = now + 1'000'000'000u;
    const double dt = _last_progress_ns != 0 ? double(now - _last_progress_ns) / 1e9 : 0;
    const double cpu = self_cpu_seconds();
    const double server = _opt.server_pid > 0 ? process_cpu_seconds(_opt.server_pid) : -1;
    char server_pct[16] = "n/a";
    if (server >= 0 && _last_server_cpu >= 0 && dt > 0) {
        std::snprintf(server_pct, sizeof server_pct, "%.0f%%",
                      100.0 * (server - _last_server_cpu) / dt);
    }
    char pub[48] = "";
    if (_publisher != nullptr) {
        if (dt > 0) {
            std::snprintf(pub, sizeof pub, "  pub/s %s",
                          human(double(_publisher->sent() - _last_sent) / dt).c_str());
        }
        _last_sent = _publisher->sent();
    }
    char line[320];
    std::snprintf(line, sizeof line,
                  "fanout %4.0fs  %s  subscribed %u/%zu%s  deliveries/s %s  p50 %.0fus p99 "
                  "%.0fus  cpu bench %.0f%% server %s",
                  double(now - _start_ns) / 1e9, _phase, _subscribed, _subs.size(), pub,
                  human(dt > 0 ? double(_deliveries - _last_deliveries) / dt : 0).c_str(),
                  double(_interval.percentile(0.5)) / 1e3, double(_interval.percentile(0.99)) / 1e3,
                  dt > 0 ? 100.0 * (cpu - _last_cpu) / dt : 0.0, server_pct);
    _ctx.progress(line);
    if (_opt.sustained && _in_window && dt > 0) {
        emit_interval_json(
            now, dt, 100.0 * (cpu - _last_cpu) / dt,
            server >= 0 && _last_server_cpu >= 0 ? 100.0 * (server - _last_server_cpu) / dt : -1);
    }
    _interval.reset();
    _last_deliveries = _deliveries;
    _last_progress_ns = now;
    _last_cpu = cpu;
    _last_server_cpu = server;
}

/// sustained: one JSON object per second on stdout, before the summary. With --procs each
/// worker prints its own lines (its subscribers' deliveries; worker 0 also the publisher's
/// count), tagged with "worker".
void fanout_scenario::emit_interval_json(uint64_t now, double dt, double bench_pct,
                                         double server_pct) {
    const uint64_t sent = _publisher != nullptr ? _publisher->sent() : 0;
    std::printf("{\"interval\":true,\"worker\":%u,\"t_s\":%.1f,\"deliveries_per_s\":%.0f,"
                "\"published_per_s\":%.0f,\"latency_us\":{\"p50\":%.0f,\"p99\":%.0f,"
                "\"p999\":%.0f,\"max\":%.0f},\"bench_cpu_pct\":%.1f,\"server_cpu_pct\":%.1f,"
                "\"subscribed\":%u,\"subscribers_lost\":%u,\"malformed\":%llu}\n",
                _ctx.worker(), double(now - _start_ns) / 1e9,
                double(_deliveries - _last_deliveries) / dt, double(sent - _interval_sent) / dt,
                double(_interval.percentile(0.5)) / 1e3, double(_interval.percentile(0.99)) / 1e3,
                double(_interval.percentile(0.999)) / 1e3, double(_interval.max()) / 1e3, bench_pct,
                server_pct, _subscribed, _subscribers_lost,
                static_cast<unsigned long long>(_malformed));
    std::fflush(stdout);
    _interval_sent = sent;
}

void fanout_scenario::build_ack_prefixes(client& cl) {
    _ack_prefixes.reserve(_opt.channels);
    _ack_masks.reserve(_opt.channels);
    for (uint32_t c = 0; c < _opt.channels; ++c) {
        _ack_prefixes.push_back(ack_command_prefix(channel_name(_opt, c)));
        _ack_masks.push_back(cl.random_mask());
    }
}

bool fanout_scenario::build_subscribe_frames(client& cl) {
    _subscribe_frames.reserve(_opt.channels);
    for (uint32_t c = 0; c < _opt.channels; ++c) {
        const std::string cmd =
            "{\"op\":\"subscribe\",\"channel\":\"" + channel_name(_opt, c) + "\",\"id\":1}";
        // One key per channel, reused by its subscribers: the frames are read-only and a
        // loopback benchmark has no proxy to poison (see scenario_echo.cc).
        _subscribe_frames.push_back(ws::encode_client_frame(
            ws::opcode::text,
            std::span<const std::byte>(reinterpret_cast<const std::byte*>(cmd.data()), cmd.size()),
            cl.random_mask()));
    }
    return true;
}

int fanout_scenario::run(report& out) {
    for (const char ch : _opt.api_key) {
        if (ch < 0x21 || ch > 0x7e) {
            std::fprintf(stderr, "ringcast-bench: --api-key must be printable ASCII without "
                                 "spaces (it goes into an HTTP header)\n");
            return 2;
        }
    }
    const std::size_t message_bytes = _opt.size + 160;
    if (std::size_t(_opt.publish_window) * _opt.publish_batch * message_bytes >
        max_in_flight_bytes) {
        std::fprintf(stderr,
                     "ringcast-bench: --publish-window %u × --publish-batch %u × ~%zu bytes "
                     "is more than %zu MB in flight; lower one of them\n",
                     _opt.publish_window, _opt.publish_batch, message_bytes,
                     max_in_flight_bytes >> 20);
        return 2;
    }
    const bool is_publisher = _ctx.worker() == 0;
    const uint32_t n = _ctx.connections();
    const uint32_t publisher_slots =
        is_publisher && _opt.publish_ws ? std::min(_opt.publishers, _opt.channels) : 0;
    const auto recv_bytes =
        uint32_t(std::clamp<std::size_t>(std::bit_floor(recv_budget_bytes / n), 4096, 64 * 1024));
    client_config config = _ctx.make_client_config(recv_bytes);
    config.connections = n + publisher_slots;
    client cl(config, *this);
    if (!cl.ok()) {
        std::fprintf(stderr, "ringcast-bench: %s\n", cl.setup_error().c_str());
        return 2;
    }
    _client = &cl;
    _layer = protocol_layer(_opt.protocol, cl);
    build_subscribe_frames(cl);
    if (!_opt.socketio_join.empty()) {
        _join_frames.reserve(_opt.channels);
        for (uint32_t c = 0; c < _opt.channels; ++c) {
            _join_frames.push_back(
                socketio_join_frame(cl, _opt.socketio_join, channel_name(_opt, c), join_ack_id));
        }
    }
    if (_opt.ack_every != 0) {
        build_ack_prefixes(cl);
        _ack_areas = std::make_unique<std::byte[]>(std::size_t(n) * ack_area_bytes);
    }
    _subs.assign(n, subscriber{});
    for (uint32_t i = 0; i < n; ++i) {
        _subs[i].channel = (_ctx.first_global_index() + i) % _opt.channels;
    }
    if (is_publisher) {
        publisher_config pc;
        pc.target = _opt.target;
        if (!_opt.ringcast_publisher()) {
            pc.target = _opt.publish_target;
            pc.raw_path = _opt.publish_target.path;
        } else if (!_opt.publish_url.empty()) {
            pc.target = _opt.publish_target; // another node's /api/publish
        }
        pc.api_key = _opt.api_key;
        pc.channel_prefix = channel_name(_opt, 0);
        pc.channel_prefix.pop_back(); // "bench-" / "chat:bench-" / "NS:bench-"
        pc.channels = _opt.channels;
        pc.rate = _opt.rate;
        pc.size = _opt.size;
        pc.text_pad = _opt.text_pad;
        pc.connections = _opt.publishers;
        pc.batch = _opt.publish_batch;
        pc.window = _opt.publish_window;
        pc.ws = _opt.publish_ws;
        _publisher = std::make_unique<fanout_publisher>(pc);
        if (_opt.publish_ws) {
            _publisher->attach_ws(cl, n);
        }
    }
    _start_ns = now_ns();
    _next_progress = _start_ns + 1'000'000'000u;

    // Subscribe: every connection opened and answered (or failed), bounded like idle's
    // connect phase plus time for the replies.
    const uint32_t total = n + publisher_slots;
    const uint64_t subscribe_deadline = _start_ns + uint64_t(_opt.connect_timeout_ms) * ms_ns +
                                        uint64_t(total) * ms_ns + 10'000 * ms_ns;
    run_slices(cl, subscribe_deadline, [&] {
        return cl.counters().connects_started == total && cl.pending_opens() == 0 &&
               _settled == n && (publisher_slots == 0 || _publisher->ws_ready());
    });
    cl.stop_connecting();
    if (publisher_slots > 0 && !_publisher->ws_ready()) {
        std::fprintf(stderr, "ringcast-bench: the WebSocket publisher connections did not open\n");
    }

    // Barrier: nothing is published until every worker's subscribers are in place.
    _phase = "waiting";
    word(subscribed_workers).fetch_add(1, std::memory_order_acq_rel);
    const uint64_t barrier_deadline = now_ns() + barrier_timeout_ns;
    if (is_publisher) {
        run_slices(cl, barrier_deadline, [&] {
            return word(subscribed_workers).load(std::memory_order_acquire) >= _ctx.workers();
        });
        // HTTP publishers connect only now: a keep-alive connection idle through a long
        // subscribe phase could meet the server's idle timeout.
        std::string error;
        if (!_opt.publish_ws && !_publisher->connect_http(error)) {
            std::fprintf(stderr, "ringcast-bench: %s\n", error.c_str());
            word(go).store(2, std::memory_order_release); // 2: give up, nothing will come
        }
        word(publish_start_ns).store(now_ns(), std::memory_order_relaxed);
        // release: publish_start_ns is visible to whoever acquires `go`.
        if (word(go).load(std::memory_order_relaxed) == 0) {
            word(go).store(1, std::memory_order_release);
        }
    } else {
        run_slices(cl, barrier_deadline,
                   [&] { return word(go).load(std::memory_order_acquire) != 0; });
    }
    if (word(go).load(std::memory_order_acquire) != 1) {
        std::fprintf(stderr,
                     "ringcast-bench: worker %u: the publisher never started (it could "
                     "not connect, or workers did not finish subscribing in time)\n",
                     _ctx.worker());
        cl.abort_all();
        return 1;
    }

    // Publish window.
    _ctx.reach(checkpoint::window_start);
    _phase = "publishing";
    const uint64_t start = word(publish_start_ns).load(std::memory_order_relaxed);
    const double cpu_start = self_cpu_seconds();
    const client_counters c0 = cl.counters();
    _in_window = true;
    _interval_sent = is_publisher ? _publisher->sent() : 0;
    double server_rss_kb = 0;
    const uint64_t window_ns = uint64_t(_opt.seconds * 1e9);
    if (is_publisher) {
        _publisher->start(now_ns());
        run_slices(cl, start + window_ns, [] { return false; });
        _publisher->stop();
        word(publish_end_ns).store(now_ns(), std::memory_order_relaxed);
        word(stopped).store(1, std::memory_order_release);
    } else {
        run_slices(cl, start + window_ns + barrier_timeout_ns,
                   [&] { return word(stopped).load(std::memory_order_acquire) != 0; });
    }
    _in_window = false;
    const double cpu_end = self_cpu_seconds();
    const client_counters c1 = cl.counters();
    _ctx.reach(checkpoint::window_end);
    const uint64_t end = word(publish_end_ns).load(std::memory_order_relaxed);
    const uint64_t drain_end = (end != 0 ? end : now_ns()) + uint64_t(_opt.drain_ms) * ms_ns;

    // Answers (publisher), then the accepted counts for everyone.
    _phase = "draining";
    if (is_publisher) {
        if (_opt.server_pid > 0) {
            server_rss_kb = double(sample_server(_opt.server_pid).vm_rss_kb);
        }
        run_slices(cl, drain_end, [&] { return _publisher->unanswered() == 0; });
        const auto& accepted = _publisher->accepted_per_channel();
        for (uint32_t c = 0; c < _opt.channels; ++c) {
            word(first_channel + c).store(accepted[c], std::memory_order_relaxed);
        }
        // release: the per-channel counts are visible to whoever acquires `done`.
        word(done).store(1, std::memory_order_release);
    } else {
        run_slices(cl, drain_end + barrier_timeout_ns,
                   [&] { return word(done).load(std::memory_order_acquire) != 0; });
    }
    const bool have_counts = word(done).load(std::memory_order_acquire) != 0;
    uint64_t expected = 0;
    for (const auto& s : _subs) {
        if (s.state == sub_state::subscribed) {
            expected += word(first_channel + s.channel).load(std::memory_order_relaxed);
        }
    }
    // Drain: until every accepted message reached every local subscriber, or drain_end.
    run_slices(cl, drain_end, [&] { return _deliveries - _duplicates >= expected; });

    _phase = "closing";
    cl.begin_close_all();
    cl.run_until(now_ns() + 2'000'000'000u, [&] { return cl.live_count() == 0; });
    cl.abort_all();

    uint64_t loss = 0;
    uint64_t extra = 0;
    uint64_t out_of_order = 0;
    uint64_t out_of_order_offset = 0;
    uint32_t subscribers_with_loss = 0;
    for (const auto& s : _subs) {
        out_of_order += s.out_of_order;
        out_of_order_offset += s.out_of_order_offset;
        if (s.state != sub_state::subscribed) {
            continue;
        }
        const uint64_t want = word(first_channel + s.channel).load(std::memory_order_relaxed);
        const uint64_t got = s.received - s.duplicates;
        loss += want > got ? want - got : 0;
        extra += got > want ? got - want : 0;
        subscribers_with_loss += want > got ? 1 : 0;
    }
    const double secs = end > start ? double(end - start) / 1e9 : 0;
    const auto rate = [&](double v) { return secs > 0 ? v / secs : 0.0; };
    const double published = is_publisher ? double(_publisher->accepted()) : 0;
    const client_counters& cf = cl.counters();
    out.hist = _total;
    out.set("protocol", double(_opt.protocol)); // 0 ringcast, 1 ws, 2 socketio
    out.set("subscribers", double(_subscribed), merge_rule::sum);
    out.set("channels", _opt.channels);
    out.set("rate", _opt.rate);
    out.set("size", _opt.size);
    out.set("seconds", secs, merge_rule::max);
    out.set("published", published, merge_rule::sum);
    out.set("expected_deliveries", double(expected), merge_rule::sum);
    out.set("deliveries", double(_deliveries), merge_rule::sum);
    out.set("deliveries_per_s", rate(double(_window_deliveries)), merge_rule::sum);
    out.set("loss", double(loss), merge_rule::sum);
    out.set("duplicates", double(_duplicates), merge_rule::sum);
    out.set("out_of_order", double(out_of_order), merge_rule::sum);
    out.set("out_of_order_offset", double(out_of_order_offset), merge_rule::sum);
    out.set("latency_us.p50", 0, merge_rule::p50);
    out.set("latency_us.p90", 0, merge_rule::p90);
    out.set("latency_us.p99", 0, merge_rule::p99);
    out.set("latency_us.p999", 0, merge_rule::p999);
    out.set("latency_us.max", 0, merge_rule::hist_max);
    out.set("latency_us.mean", 0, merge_rule::hist_mean);
    out.set("server_rss_kb", server_rss_kb, merge_rule::max);
    out.set("bench_cpu_pct", secs > 0 ? 100.0 * (cpu_end - cpu_start) / secs : 0, merge_rule::sum);
    out.set("publishers", is_publisher ? _publisher->connections() : 0, merge_rule::sum);
    out.set("publisher_ws", _opt.publish_ws ? 1 : 0);
    out.set("publish_batch", _opt.publish_batch);
    out.set("publish_window", _opt.publish_window);
    out.set("published_per_s", rate(published), merge_rule::sum);
    out.set("publish_sent", is_publisher ? double(_publisher->sent()) : 0, merge_rule::sum);
    out.set("publish_requests", is_publisher ? double(_publisher->requests()) : 0, merge_rule::sum);
    out.set("publish_rejected", is_publisher ? double(_publisher->rejected()) : 0, merge_rule::sum);
    out.set("publish_last_error", is_publisher ? double(_publisher->last_error()) : 0,
            merge_rule::max);
    out.set("publish_unanswered", is_publisher ? double(_publisher->unanswered()) : 0,
            merge_rule::sum);
    out.set("publish_tokens_dropped", is_publisher ? double(_publisher->tokens_dropped()) : 0,
            merge_rule::sum);
    out.set("publisher_connections_lost", is_publisher ? double(_publisher->connections_lost()) : 0,
            merge_rule::sum);
    out.set("subscribers_requested", double(n), merge_rule::sum);
    out.set("subscribe_failures", double(_subscribe_failed), merge_rule::sum);
    out.set("subscribe_last_error", double(_subscribe_error), merge_rule::max);
    out.set("subscribers_lost", double(_subscribers_lost), merge_rule::sum);
    out.set("subscribers_with_loss", double(subscribers_with_loss), merge_rule::sum);
    out.set("extra_deliveries", double(extra), merge_rule::sum);
    out.set("malformed", double(_malformed), merge_rule::sum);
    out.set("unexpected_messages", double(_unexpected), merge_rule::sum);
    out.set("counts_complete", have_counts ? 1 : 0, merge_rule::max);
    out.set("ack_every", _opt.ack_every);
    out.set("acks_sent", double(_acks_sent), merge_rule::sum);
    out.set("acks_per_s", rate(double(_window_acks)), merge_rule::sum);
    out.set("acks_skipped", double(_acks_skipped), merge_rule::sum);
    out.set("ack_errors", double(_ack_errors), merge_rule::sum);
    out.set("ack_last_error", double(_ack_last_error), merge_rule::max);
    out.set("protocol_errors", double(cf.protocol_errors), merge_rule::sum);
    out.set("recvs_per_s", rate(double(c1.recv_calls - c0.recv_calls)), merge_rule::sum);
    out.set("wire_bytes_per_s",
            rate(double(c1.bytes_sent - c0.bytes_sent + c1.bytes_received - c0.bytes_received)),
            merge_rule::sum);
    out.set("received_bytes_per_s", rate(double(c1.bytes_received - c0.bytes_received)),
            merge_rule::sum);
    // --permessage-deflate: connections that negotiated it, and messages that came compressed.
    out.set("deflate_connections", double(cf.deflate_opened), merge_rule::sum);
    out.set("compressed_per_s", rate(double(c1.compressed_received - c0.compressed_received)),
            merge_rule::sum);
    return have_counts ? 0 : 1;
}

} // namespace

int run_fanout(run_context& ctx, report& out) {
    fanout_scenario s(ctx);
    return s.run(out);
}

} // namespace ringcast::bench
