// ringcast-bench scenarios — the table every scenario registers in, the options they read,
// and the run_context through which they report phase boundaries.
//
// Adding a scenario (storm, sustained ...): write scenario_<name>.cc with a
// conn_handler and a `int run_<name>(run_context&, report&)`, add one row to
// scenarios() in main.cc and one line in meson.build. The runner (runner.cc) does the
// rest: descriptor limits, --procs fan-out, server probes, merging and the JSON summary.
//
// A scenario runs inside one process (the only one, or one --procs worker) on one thread.
#pragma once

#include "client.h"
#include "protocol.h"
#include "report.h"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::bench {

/// Command-line options, parsed and validated in main.cc (setup time).
struct bench_options {
    std::string scenario;
    std::string url; ///< may contain {channel} (peers with a path per channel)
    endpoint target;
    wire_protocol protocol = wire_protocol::ringcast;
    uint32_t connections = 100;
    uint32_t window = 16; ///< echo: messages in flight per connection
    uint32_t size = 100;  ///< echo: payload bytes per message; fanout: bytes of "data"
    double seconds = 10;  ///< measured phase (echo, fanout) / hold time (idle)
    int server_pid = 0;   ///< 0: no server probes
    uint32_t procs = 1;   ///< worker processes splitting the connections
    uint32_t connect_concurrency = 512;
    uint32_t connect_timeout_ms = 10'000;
    bool progress = true; ///< live progress on stderr once a second
    /// --permessage-deflate: every connection offers permessage-deflate (with
    /// client_no_context_takeover) and inflates what comes compressed.
    bool deflate = false;
    /// --text-pad (fanout): feed-like text in "pad" instead of 'x' repeated.
    bool text_pad = false;
    /// --token-file (ringcast only): global connection i sends ?token=tokens[i mod size];
    /// empty: no token. Fanout's ws publisher connections never present one.
    std::vector<std::string> tokens;

    // fanout (scenario_fanout.cc); the subscribers are `connections`.
    uint32_t channels = 1;      ///< bench-0 .. bench-{C-1}, subscribers round robin
    uint32_t rate = 1000;       ///< messages/s over all channels; 0: as fast as the window allows
    bool publish_ws = false;    ///< false: POST /api/publish; true: {"op":"publish"} on /ws
    uint32_t publishers = 1;    ///< publisher connections (HTTP keep-alive or WebSocket)
    uint32_t publish_batch = 1; ///< http: messages per request ({"messages":[...]} when > 1)
    uint32_t publish_window = 256; ///< unanswered publish requests per publisher connection
    uint32_t drain_ms = 2000;      ///< wait for late deliveries after the last publish
    std::string api_key;           ///< http: Authorization: Bearer KEY when not empty
    /// peers: http://HOST:PORT/PATH/{channel}, raw POSTs; ringcast: http://HOST:PORT/api/publish,
    /// another node than the subscribers' (--engine redis: published on one, delivered on another)
    std::string publish_url;
    endpoint publish_target; ///< parsed publish_url (path keeps {channel})
    /// ringcast: channels NS:bench-i (a namespace with rules, e.g. history=N) whatever the
    /// publisher; empty: bench-i, or chat:bench-i with --publisher ws
    std::string channel_namespace;
    bool sustained = false;        ///< fanout that also prints one JSON line per second
    /// ringcast: each subscriber sends {"op":"ack","channel":C,"offset":O} after every
    /// ack_every messages it received (O = the last one's offset); 0: never.
    uint32_t ack_every = 0;
    /// --socketio-join EVENT (socketio): after the CONNECT answer each subscriber emits
    /// 42<id>["EVENT","<channel>"] and is subscribed at its ACK with ok:true (ringcastd's
    /// /socket.io/: rooms joined by an event, publishes through POST /api/publish); empty:
    /// the room is in the handshake query (perf/peers' Socket.IO server).
    std::string socketio_join;

    /// The publisher speaks ringcast's API (/api/publish or {"op":"publish"}), not a
    /// peer's raw POST: --protocol ringcast, or socketio subscribers of ringcastd.
    bool ringcast_publisher() const noexcept {
        return protocol == wire_protocol::ringcast || !socketio_join.empty();
    }
};

/// Channel c's name as the subscribers and the publisher spell it.
inline std::string channel_name(const bench_options& o, uint32_t c) {
    if (!o.channel_namespace.empty()) {
        return o.channel_namespace + ":bench-" + std::to_string(c);
    }
    return (o.publish_ws ? "chat:bench-" : "bench-") + std::to_string(c);
}

/// Phase boundaries the runner samples the server at (CPU, memory), across all workers.
enum class checkpoint : uint8_t {
    window_start, ///< all connections settled; the measured phase begins
    all_held,     ///< idle: every connection is open and has been for a moment
    window_end,   ///< the measured phase is over (before closing)
};

constexpr std::string_view checkpoint_name(checkpoint c) noexcept {
    switch (c) {
    case checkpoint::window_start:
        return "window_start";
    case checkpoint::all_held:
        return "all_held";
    case checkpoint::window_end:
        return "window_end";
    }
    return "";
}

class server_probe;

/// What a scenario gets from the runner: its share of the connections and a way to say
/// where it is. Single process: reach() samples the server at once. Worker process: it
/// writes a line to the parent, which samples when every worker has reached the point.
class run_context {
public:
    run_context(const bench_options& options, uint32_t worker, uint32_t workers,
                uint32_t first_global_index, uint32_t connections, int report_fd,
                server_probe* probe, std::span<std::byte> shared = {}) noexcept
        : _options(options), _worker(worker), _workers(workers),
          _first_global_index(first_global_index), _connections(connections), _report_fd(report_fd),
          _probe(probe), _shared(shared) {}

    const bench_options& options() const noexcept { return _options; }
    uint32_t connections() const noexcept { return _connections; }
    uint32_t first_global_index() const noexcept { return _first_global_index; }
    uint32_t worker() const noexcept { return _worker; }
    uint32_t workers() const noexcept { return _workers; }

    /// The client configuration every scenario starts from (with per-channel paths when
    /// the URL has {channel}: connection i gets channel (first_global_index + i) mod C;
    /// with --token-file, per-token paths: connection i gets token (first_global_index + i)
    /// mod N).
    client_config make_client_config(uint32_t recv_buffer_bytes) const;

    void reach(checkpoint point) noexcept;
    /// One live progress line on stderr ("[w2/4] " prefixed when there are workers).
    void progress(std::string_view line) const noexcept;

    /// Zeroed memory shared by every worker of this run (MAP_SHARED before the fork; in a
    /// single process, just this process's). Scenarios that coordinate across workers
    /// (fanout: barriers, published counts) access it with std::atomic_ref only.
    std::span<std::byte> shared_area() const noexcept { return _shared; }

private:
    const bench_options& _options;
    uint32_t _worker;
    uint32_t _workers;
    uint32_t _first_global_index;
    uint32_t _connections;
    int _report_fd;
    server_probe* _probe;
    std::span<std::byte> _shared;
};

/// Fills `out` with the scenario's metrics and histogram; returns the process exit code
/// (0 when the run itself worked, whatever the numbers).
using scenario_fn = int (*)(run_context& ctx, report& out);

struct scenario_def {
    std::string_view name;
    std::string_view summary;
    scenario_fn run;
};

/// The scenario table (main.cc).
std::span<const scenario_def> scenarios() noexcept;

int run_echo(run_context& ctx, report& out);
int run_idle(run_context& ctx, report& out);
int run_fanout(run_context& ctx, report& out);
int run_storm(run_context& ctx, report& out);

/// Runs `def` with `options`: limits, workers, probes, merge, JSON on stdout (runner.cc).
int run_scenario(const scenario_def& def, const bench_options& options);

/// Connections per source address (ephemeral port range minus a TIME_WAIT margin).
uint32_t ports_per_source_address() noexcept;

/// "12.3k"-style rendering for progress lines.
std::string human(double v);

} // namespace ringcast::bench
