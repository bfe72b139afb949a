// ringcast-bench — io_uring WebSocket load generator for ringcastd (and any RFC 6455
// server on loopback). main.cc parses the command line and dispatches to a scenario;
// see perf/README.md for methodology and scenario.h for how to add a scenario.
//
//   ringcast-bench echo --url ws://127.0.0.1:PORT/echo --connections 100 --window 16
//                       --size 100 --seconds 10 [--server-pid PID]
//   ringcast-bench idle --url ws://127.0.0.1:PORT/echo --connections 10000 --seconds 10
//                       --server-pid PID
//   ringcast-bench fanout --url ws://127.0.0.1:PORT/ws --subscribers 1000 --channels 1
//                       --rate 1000 --size 100 --seconds 10 [--publisher http|ws]
//                       [--ack-every N]
//   ringcast-bench storm --url ws://127.0.0.1:PORT/ws --connections 10000
//                       [--token-file tokens.txt]
//
// Live progress goes to stderr once a second; the JSON summary to stdout. Exit codes:
// 0 run completed, 1 a worker failed, 2 bad arguments or setup failure.
#include "scenario.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace ringcast::bench {

namespace {

/// --connections ceiling; also the most lines --token-file may have.
constexpr uint32_t max_connections = 2'000'000;

constexpr scenario_def scenario_table[] = {
    {"echo", "N connections keep a window of W messages of B bytes in flight; round trips/s, RTT",
     run_echo},
    {"idle", "open N connections, hold them S seconds; server RSS and kernel memory per connection",
     run_idle},
    {"fanout",
     "N subscribers over C channels, a publisher at R msgs/s for S seconds; deliveries/s, "
     "latency, loss",
     run_fanout},
    {"sustained",
     "fanout for a long time (--seconds up to 3600), one JSON line per second on stdout "
     "besides the summary",
     run_fanout},
    {"storm", "open N connections as fast as possible; handshakes/s, failures, connect latency",
     run_storm},
};

void usage(FILE* out) {
    std::fprintf(out, "usage: ringcast-bench SCENARIO --url ws://127.0.0.1:PORT/PATH [options]\n\n"
                      "scenarios:\n");
    for (const auto& s : scenario_table) {
        std::fprintf(out, "  %-7s %.*s\n", std::string(s.name).c_str(), int(s.summary.size()),
                     s.summary.data());
    }
    std::fprintf(
        out, "\noptions:\n"
             "  --url URL               ws://HOST:PORT/PATH, HOST in 127.0.0.0/8 (required);\n"
             "                          {channel} in PATH becomes each connection's channel\n"
             "  --protocol P            ringcast (default), ws (plain broadcast server: the\n"
             "                          channel is in the URL) or socketio (Socket.IO v4,\n"
             "                          websocket transport: /socket.io/?EIO=4&transport=\n"
             "                          websocket&channel={channel})\n"
             "  --connections N         connections in total (default 100)\n"
             "  --seconds S             measured phase / hold time (default 10, max 3600)\n"
             "  --window W              echo: messages in flight per connection (default 16)\n"
             "  --size B                echo: payload bytes, 16..1048576 (default 100)\n"
             "  --server-pid PID        sample the server's CPU and memory (/proc/PID)\n"
             "  --procs P               worker processes splitting the connections (default 1)\n"
             "  --connect-concurrency C handshakes in flight per process (default 512)\n"
             "  --connect-timeout-ms T  per-connection connect timeout (default 10000)\n"
             "  --token-file FILE       ringcast: one JWT per line; connection i sends line\n"
             "                          i mod N as ?token= on the URL's path (a server with\n"
             "                          JWT keys refuses /ws without one); give distinct subs\n"
             "                          when the server limits connections per user. Not\n"
             "                          with {channel}; fanout's ws publishers send none\n"
             "  --quiet                 no live progress on stderr\n"
             "  --permessage-deflate    offer permessage-deflate (client_no_context_takeover)\n"
             "                          and inflate compressed messages\n"
             "  --text-pad              fanout: feed-like text in \"pad\" (compresses like a\n"
             "                          real JSON feed) instead of 'x' repeated\n"
             "\nfanout (--url ws://127.0.0.1:PORT/ws; --connections is the subscriber count):\n"
             "  --subscribers N         same as --connections\n"
             "  --channels C            channels bench-0..bench-{C-1} (chat:bench-i with\n"
             "                          --publisher ws), 1..100000 (default 1)\n"
             "  --rate R                messages/s over all channels, token bucket at 1 ms;\n"
             "                          0 = as fast as --publish-window allows (default 1000)\n"
             "  --size B                bytes of each message's \"data\" object (default 100)\n"
             "  --publisher http|ws     POST /api/publish (default) or {\"op\":\"publish\"}\n"
             "                          on /ws (server needs --client-publish chat)\n"
             "  --publishers K          publisher connections, 1..16 (default 1)\n"
             "  --publish-batch M       http: up to M messages per request (default 1)\n"
             "  --publish-window W      unanswered publishes per connection (default 256)\n"
             "  --api-key KEY           http: send Authorization: Bearer KEY\n"
             "  --drain-ms D            wait for late deliveries after the last publish\n"
             "                          before counting loss (default 2000)\n"
             "  --publish-url URL       peers (--protocol ws|socketio): http://HOST:PORT/PATH\n"
             "                          with {channel}; raw POST of the data object, 2xx ok.\n"
             "                          ringcast: http://HOST:PORT/api/publish of another\n"
             "                          node (--engine redis); http publisher only\n"
             "  --channel-namespace NS  ringcast: channels NS:bench-i (a namespace with rules,\n"
             "                          e.g. --namespace NS:history=100 on the server)\n"
             "  --socketio-join EVENT   socketio: join the room by emitting\n"
             "                          42<id>[\"EVENT\",\"<channel>\"] after the CONNECT\n"
             "                          answer; subscribed at its ACK 43<id>[{\"ok\":true..}]\n"
             "                          (ringcastd's /socket.io/, EVENT = its join event,\n"
             "                          join_room by default); the publisher is then\n"
             "                          ringcast's POST /api/publish (no --publish-url)\n"
             "  --ack-every N           ringcast: each subscriber sends {\"op\":\"ack\",\n"
             "                          \"channel\":C,\"offset\":O} (no id, so no reply) after\n"
             "                          every N messages it received, O = the last one's\n"
             "                          offset; for namespaces marked ack (default 0: never)\n"
             "\nsustained: the fanout options; --seconds is the run length\n"
             "storm: --connections N, --connect-concurrency C (handshakes in flight),\n"
             "       --token-file FILE against a server with JWT keys\n");
}

// Parses an unsigned option value within [lo, hi]; prints the sentence and returns false
// otherwise.
bool parse_uint(std::string_view name, const char* text, uint64_t lo, uint64_t hi, uint64_t& out) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
        std::fprintf(stderr, "ringcast-bench: %.*s %s is not a whole number from %llu to %llu\n",
                     int(name.size()), name.data(), text, static_cast<unsigned long long>(lo),
                     static_cast<unsigned long long>(hi));
        return false;
    }
    out = v;
    return true;
}

} // namespace

std::span<const scenario_def> scenarios() noexcept {
    return scenario_table;
}

} // namespace ringcast::bench

int main(int argc, char** argv) {
    using namespace ringcast::bench;
    if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const scenario_def* chosen = nullptr;
    for (const auto& s : scenarios()) {
        if (s.name == argv[1]) {
            chosen = &s;
        }
    }
    if (chosen == nullptr) {
        std::fprintf(stderr, "ringcast-bench: unknown scenario '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    bench_options opt;
    opt.scenario = argv[1];
    // Bounded by argc: each step consumes one or two arguments.
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--quiet") {
            opt.progress = false;
            continue;
        }
        if (arg == "--permessage-deflate") {
            opt.deflate = true;
            continue;
        }
        if (arg == "--text-pad") {
            opt.text_pad = true;
            continue;
        }
        if (arg == "--help" || arg == "-h") {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "ringcast-bench: %s needs a value\n", argv[i]);
            return 2;
        }
        const char* value = argv[++i];
        uint64_t v = 0;
        if (arg == "--url") {
            opt.url = value;
        } else if (arg == "--connections" || arg == "--subscribers") {
            if (!parse_uint(arg, value, 1, max_connections, v)) {
                return 2;
            }
            opt.connections = uint32_t(v);
        } else if (arg == "--window") {
            if (!parse_uint(arg, value, 1, 65536, v)) {
                return 2;
            }
            opt.window = uint32_t(v);
        } else if (arg == "--size") {
            if (!parse_uint(arg, value, 16, 1u << 20, v)) {
                return 2;
            }
            opt.size = uint32_t(v);
        } else if (arg == "--seconds") {
            char* end = nullptr;
            const double s = std::strtod(value, &end);
            if (end == value || *end != '\0' || !(s > 0) || s > 3600) {
                std::fprintf(stderr,
                             "ringcast-bench: --seconds %s is not a number of seconds "
                             "above 0 and at most 3600\n",
                             value);
                return 2;
            }
            opt.seconds = s;
        } else if (arg == "--server-pid") {
            if (!parse_uint(arg, value, 1, 1u << 22, v)) {
                return 2;
            }
            opt.server_pid = int(v);
        } else if (arg == "--procs") {
            if (!parse_uint(arg, value, 1, 64, v)) {
                return 2;
            }
            opt.procs = uint32_t(v);
        } else if (arg == "--connect-concurrency") {
            if (!parse_uint(arg, value, 1, 16384, v)) {
                return 2;
            }
            opt.connect_concurrency = uint32_t(v);
        } else if (arg == "--connect-timeout-ms") {
            if (!parse_uint(arg, value, 1, 600'000, v)) {
                return 2;
            }
            opt.connect_timeout_ms = uint32_t(v);
        } else if (arg == "--channels") {
            if (!parse_uint(arg, value, 1, 100'000, v)) {
                return 2;
            }
            opt.channels = uint32_t(v);
        } else if (arg == "--rate") {
            if (!parse_uint(arg, value, 0, 10'000'000, v)) {
                return 2;
            }
            opt.rate = uint32_t(v);
        } else if (arg == "--publisher") {
            const std::string_view kind = value;
            if (kind != "http" && kind != "ws") {
                std::fprintf(stderr, "ringcast-bench: --publisher %s is not http or ws\n", value);
                return 2;
            }
            opt.publish_ws = kind == "ws";
        } else if (arg == "--publishers") {
            if (!parse_uint(arg, value, 1, 16, v)) {
                return 2;
            }
            opt.publishers = uint32_t(v);
        } else if (arg == "--publish-batch") {
            if (!parse_uint(arg, value, 1, 1000, v)) {
                return 2;
            }
            opt.publish_batch = uint32_t(v);
        } else if (arg == "--publish-window") {
            if (!parse_uint(arg, value, 1, 65536, v)) {
                return 2;
            }
            opt.publish_window = uint32_t(v);
        } else if (arg == "--drain-ms") {
            if (!parse_uint(arg, value, 0, 60'000, v)) {
                return 2;
            }
            opt.drain_ms = uint32_t(v);
        } else if (arg == "--ack-every") {
            if (!parse_uint(arg, value, 1, 1'000'000, v)) {
                return 2;
            }
            opt.ack_every = uint32_t(v);
        } else if (arg == "--socketio-join") {
            opt.socketio_join = value;
            // Written into the join event's JSON unescaped: a plain event name only.
            if (opt.socketio_join.empty() || opt.socketio_join.size() > 64 ||
                opt.socketio_join.find_first_not_of(
                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") !=
                    std::string::npos) {
                std::fprintf(stderr,
                             "ringcast-bench: --socketio-join %s is not an event name (1..64 "
                             "letters, digits, _.:-)\n",
                             value);
                return 2;
            }
        } else if (arg == "--api-key") {
            opt.api_key = value;
        } else if (arg == "--protocol") {
            const auto p = parse_protocol(value);
            if (!p) {
                std::fprintf(stderr,
                             "ringcast-bench: --protocol %s is not ringcast, ws or "
                             "socketio\n",
                             value);
                return 2;
            }
            opt.protocol = *p;
        } else if (arg == "--publish-url") {
            opt.publish_url = value;
        } else if (arg == "--channel-namespace") {
            opt.channel_namespace = value;
            // A namespace is a channel name's part before ':' (docs/protocol.md); the bench
            // writes it into JSON unescaped, so letters, digits and _.- only.
            if (opt.channel_namespace.empty() ||
                opt.channel_namespace.find_first_not_of(
                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
                    std::string::npos) {
                std::fprintf(stderr,
                             "ringcast-bench: --channel-namespace %s is not a namespace name "
                             "(letters, digits, _.-)\n",
                             value);
                return 2;
            }
        } else if (arg == "--token-file") {
            std::string error;
            if (!read_token_file(value, max_connections, opt.tokens, error)) {
                std::fprintf(stderr, "ringcast-bench: %s\n", error.c_str());
                return 2;
            }
        } else {
            std::fprintf(stderr, "ringcast-bench: unknown option %s (see --help)\n", argv[i - 1]);
            return 2;
        }
    }
    if (opt.url.empty()) {
        std::fprintf(stderr,
                     "ringcast-bench: --url is required, e.g. --url ws://127.0.0.1:8080/echo\n");
        return 2;
    }
    std::string error;
    if (!parse_url(opt.url, opt.target, error)) {
        std::fprintf(stderr, "ringcast-bench: %s\n", error.c_str());
        return 2;
    }
    opt.sustained = opt.scenario == "sustained";
    const bool fanout = opt.scenario == "fanout" || opt.sustained;
    if (!opt.socketio_join.empty() && (!fanout || opt.protocol != wire_protocol::socketio)) {
        std::fprintf(stderr, "ringcast-bench: --socketio-join is for the fanout and sustained "
                             "scenarios with --protocol socketio\n");
        return 2;
    }
    if (fanout && !opt.ringcast_publisher()) {
        const std::string_view http = "http://";
        if (opt.publish_url.rfind(http, 0) != 0) {
            std::fprintf(stderr,
                         "ringcast-bench: --protocol %s needs --publish-url "
                         "http://HOST:PORT/PATH/{channel} (the peer's publish endpoint)\n",
                         std::string(protocol_name(opt.protocol)).c_str());
            return 2;
        }
        if (!parse_url("ws://" + opt.publish_url.substr(http.size()), opt.publish_target, error)) {
            std::fprintf(stderr, "ringcast-bench: --publish-url: %s\n", error.c_str());
            return 2;
        }
        if (opt.publish_ws || opt.publish_batch != 1) {
            std::fprintf(stderr, "ringcast-bench: peers are published to with single raw POSTs: "
                                 "--publisher ws and --publish-batch are for ringcast only\n");
            return 2;
        }
    }
    if (fanout && opt.ringcast_publisher() && !opt.publish_url.empty()) {
        // Another node's admin API: what a publish on node A delivered on node B measures.
        const std::string_view http = "http://";
        if (opt.publish_url.rfind(http, 0) != 0 ||
            !parse_url("ws://" + opt.publish_url.substr(http.size()), opt.publish_target, error) ||
            opt.publish_target.path != "/api/publish") {
            std::fprintf(stderr,
                         "ringcast-bench: --publish-url %s is not http://HOST:PORT/api/publish "
                         "(HOST in 127.0.0.0/8)%s%s\n",
                         opt.publish_url.c_str(), error.empty() ? "" : ": ", error.c_str());
            return 2;
        }
        if (opt.publish_ws) {
            std::fprintf(stderr, "ringcast-bench: --publish-url is for the http publisher; "
                                 "--publisher ws publishes on the subscribers' node\n");
            return 2;
        }
    }
    if (fanout && opt.protocol == wire_protocol::socketio && opt.publish_ws) {
        std::fprintf(stderr, "ringcast-bench: --protocol socketio publishes over HTTP: "
                             "--publisher ws speaks ringcast's /ws\n");
        return 2;
    }
    if (!opt.channel_namespace.empty() && !opt.ringcast_publisher()) {
        std::fprintf(stderr, "ringcast-bench: --channel-namespace is for --protocol ringcast "
                             "(or socketio with --socketio-join)\n");
        return 2;
    }
    if (opt.ack_every != 0 && (!fanout || opt.protocol != wire_protocol::ringcast)) {
        std::fprintf(stderr, "ringcast-bench: --ack-every is for the fanout and sustained "
                             "scenarios with --protocol ringcast (ringcastd's acks)\n");
        return 2;
    }
    if (!opt.tokens.empty() && opt.protocol != wire_protocol::ringcast) {
        std::fprintf(stderr, "ringcast-bench: --token-file is for ringcastd's /ws (--protocol "
                             "ringcast); the peers take no tokens\n");
        return 2;
    }
    if (!opt.tokens.empty() && opt.target.path.find("{channel}") != std::string::npos) {
        std::fprintf(stderr, "ringcast-bench: --token-file and {channel} in --url do not go "
                             "together; ringcast subscribes to channels by command, not by "
                             "path\n");
        return 2;
    }
    if (opt.protocol != wire_protocol::ringcast && opt.scenario == "echo") {
        std::fprintf(stderr, "ringcast-bench: echo speaks plain WebSocket to any echo endpoint; "
                             "leave out --protocol\n");
        return 2;
    }
    if (opt.procs > opt.connections) {
        std::fprintf(stderr,
                     "ringcast-bench: --procs %u is more than --connections %u; use at "
                     "most one worker per connection\n",
                     opt.procs, opt.connections);
        return 2;
    }
    return run_scenario(*chosen, opt);
}
