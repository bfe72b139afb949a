#include "config.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>
#include <type_traits>

namespace ringcast::app {

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        return cpus;
    }
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) {
            cpus.push_back(cpu);
        }
    }
    return cpus;
}

std::string usage() {
    return R"(usage: ringcastd [options]

  --listen HOST:PORT         address to serve WebSocket and HTTP on (default 127.0.0.1:8080;
                             port 0 picks a free port, printed on start)
  --shards N                 shards (threads pinned to CPUs); default: CPUs in the
                             affinity mask
  --echo PATH                serve a WebSocket echo endpoint on PATH (e.g. /echo); off
                             unless given (the demo page on / is always served)
  --max-connections N        connections per shard (default 65536, capped by
                             RLIMIT_NOFILE); beyond it a few spare slots still answer
                             GET /healthz and /api/, and refuse upgrades with 503
  --max-connections-total N  connections across all shards (default: no cap beyond
                             the per-shard one)
  --max-message-bytes N      largest client message (default 16777216); larger → close 1009
  --handshake-timeout-ms N   time to send the HTTP request (default 10000)
  --ping-interval-ms N       ping a client silent for this long (default 30000; 0 = off)
  --pong-timeout-ms N        close a client that stays silent after a ping (default 10000)
  --idle-timeout-ms N        close a client silent for this long (default 300000; 0 = off)
  --linger-us N              hold output up to N µs so more messages share one send
                             (default 0: send every loop pass)
  --close-timeout-ms N       wait for a closing peer at most this long (default 2000)
  --shutdown-timeout-ms N    on SIGTERM/SIGINT, wait for goodbyes this long (default 2000)
  --insecure                 take the user id from ?user= on /ws (no authentication yet)
  --client-publish NS[,NS]   namespaces whose channels clients may publish to (e.g. chat)
  --max-channels N           channels per connection (default 50)
  --command-rate N           client commands per second per connection (default 100)
  --command-burst N          ... and the burst allowed above that rate (default 200)
  --slow-consumer-bytes N    queued output at which a subscriber is closed with 1008
                             (default 4194304; half of it drops priority 4, three
                             quarters drops priority 3)
  --read-pause-bytes N       stop reading from a connection with this much output
                             queued for it (default 262144)
  --output-budget-bytes N    queued output per shard above which priorities 3-4 are
                             dropped and the largest holders closed with 1008
                             (default 1073741824)
  --inbound-budget-bytes N   unfinished inbound messages per shard above which the
                             largest holders are closed with 1009 (default 134217728)
  --max-idle-channels N      channels without subscribers whose offset a shard keeps
                             (default 4096; older ones restart under a new epoch)
  --backend-command-rate N   the same for a backend session (a /ws connection carrying
                             the API key; default 100000)
  --backend-command-burst N  ... and its burst (default 20000)
  --max-connections-per-ip N connections at once from one address (IPv6: one /64);
                             each shard allows ceil(N / shards) (default 1024; 0 = off;
                             behind a proxy every client has the proxy's address)
  --connect-rate-per-ip N    new connections per second from one address (default 100;
                             0 = off), after a burst of
  --connect-burst-per-ip N   (default 1024); both divided over the shards like the cap
  --api-key-file PATH        the backend API key: a file holding one line of 16 or more
                             visible ASCII characters; or set RINGCAST_API_KEY. Requests
                             then need "Authorization: Bearer KEY". Without a key the
                             API answers only loopback peers (127.0.0.0/8, ::1)
  --api-listen HOST:PORT     serve the backend API here instead of on --listen
  --check-config             validate the options and exit
  --version, --help
)";
}

namespace {

template <typename T>
result<T, std::string> parse_number(std::string_view flag, std::string_view text, T min, T max) {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
        return unexpected{std::string(flag) + " = '" + std::string(text) +
                          "' is not a whole number from " + std::to_string(min) + " to " +
                          std::to_string(max)};
    }
    return value;
}

bool plain_path(std::string_view path) {
    if (path.empty() || path.front() != '/') {
        return false;
    }
    for (const char ch : path) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                        (ch >= '0' && ch <= '9') || ch == '/' || ch == '-' || ch == '_' ||
                        ch == '.' || ch == '~';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/// The API key as given in `source` (a file's contents or the environment variable):
/// one line of 16 or more visible ASCII characters, the line break removed. The error names
/// where it came from and what is accepted, never the key.
result<std::string, std::string> check_api_key(std::string text, const std::string& source) {
    if (text.ends_with("\n")) {
        text.pop_back();
        if (text.ends_with("\r")) {
            text.pop_back();
        }
    }
    // 16: shorter keys are guessable; visible ASCII: the key travels in an HTTP header
    // ("Authorization: Bearer KEY"), where spaces and control bytes do not survive.
    const bool visible =
        std::all_of(text.begin(), text.end(), [](char ch) { return ch > ' ' && ch < 0x7f; });
    if (text.size() < 16 || !visible) {
        return unexpected{source +
                          " must hold one line of 16 or more visible ASCII characters "
                          "(no spaces or control characters): the API key; it holds " +
                          std::to_string(text.size()) + " characters" +
                          (visible ? std::string() : std::string(", not all of them visible"))};
    }
    return text;
}

/// The API key from --api-key-file or RINGCAST_API_KEY (one of them); empty when neither.
result<std::string, std::string> read_api_key(const std::string& path) {
    const char* env = std::getenv(api_key_env);
    if (!path.empty() && env != nullptr) {
        return unexpected{"--api-key-file = '" + path + "' and the environment variable " +
                          std::string(api_key_env) +
                          " are both set; give the API key one way only"};
    }
    if (env != nullptr) {
        return check_api_key(env, std::string("the environment variable ") + api_key_env);
    }
    if (path.empty()) {
        return std::string();
    }
    // Bounded: a key file is one short line; a larger file is a mistake (a wrong path).
    constexpr std::size_t max_key_file_bytes = 4096;
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        return unexpected{"--api-key-file = '" + path + "' cannot be read: " +
                          std::strerror(errno) + " (it must name a file holding the API key)"};
    }
    std::string text(max_key_file_bytes + 1, '\0');
    text.resize(std::fread(text.data(), 1, text.size(), f));
    std::fclose(f);
    if (text.size() > max_key_file_bytes) {
        return unexpected{"--api-key-file = '" + path + "' is larger than " +
                          std::to_string(max_key_file_bytes) +
                          " bytes; it must hold the API key on one line"};
    }
    return check_api_key(std::move(text), "--api-key-file = '" + path + "'");
}

} // namespace

result<config, std::string> parse_args(int argc, char** argv) {
    config cfg;
    std::string api_key_file;
    constexpr uint32_t max_ms = 24u * 3600 * 1000;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        std::string_view value;
        bool has_value = false;
        if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            has_value = true;
        }
        auto next = [&]() -> result<std::string_view, std::string> {
            if (has_value) {
                return value;
            }
            if (i + 1 >= argc) {
                return unexpected{std::string(arg) + " needs a value (see --help)"};
            }
            return std::string_view(argv[++i]);
        };
        // Reads the flag's value as a whole number from `min` to `max` into `out`.
        auto number = [&](auto& out, auto min, auto max) -> result<void, std::string> {
            using T = std::remove_reference_t<decltype(out)>;
            auto v = next();
            if (!v) {
                return unexpected{v.error()};
            }
            auto n = parse_number<T>(arg, *v, static_cast<T>(min), static_cast<T>(max));
            if (!n) {
                return unexpected{n.error()};
            }
            out = *n;
            return {};
        };
        auto ms = [&](uint32_t& out) { return number(out, 0u, max_ms); };
        result<void, std::string> step{};
        if (arg == "--help" || arg == "-h") {
            cfg.show_help = true;
        } else if (arg == "--version") {
            cfg.show_version = true;
        } else if (arg == "--check-config") {
            cfg.check_only = true;
        } else if (arg == "--listen") {
            auto v = next();
            if (!v) {
                return unexpected{v.error()};
            }
            auto e = net::parse_endpoint(*v);
            if (!e) {
                return unexpected{"--listen: " + e.error()};
            }
            cfg.listen = *e;
        } else if (arg == "--api-listen") {
            auto v = next();
            if (!v) {
                return unexpected{v.error()};
            }
            auto e = net::parse_endpoint(*v);
            if (!e) {
                return unexpected{"--api-listen: " + e.error()};
            }
            cfg.api_listen = *e;
            cfg.api_listen_set = true;
            cfg.gateway.separate_api = true;
        } else if (arg == "--shards") {
            step = number(cfg.shards, 1, 1024);
        } else if (arg == "--echo") {
            auto v = next();
            if (!v) {
                return unexpected{v.error()};
            }
            if (!plain_path(*v) || *v == "/" || *v == "/healthz" || *v == "/ws" ||
                v->starts_with("/api/")) {
                return unexpected{"--echo = '" + std::string(*v) +
                                  "' must be a path such as /echo: it starts with '/', is not "
                                  "'/', '/healthz', '/ws' or under /api/, and uses only letters, "
                                  "digits and /-_.~"};
            }
            cfg.gateway.echo_path = std::string(*v);
        } else if (arg == "--max-connections") {
            step = number(cfg.runtime.max_connections_per_shard, 1, 1u << 20);
            cfg.max_connections_set = true;
        } else if (arg == "--max-connections-total") {
            step = number(cfg.runtime.max_connections_total, 1, 1u << 30);
        } else if (arg == "--max-message-bytes") {
            step = number(cfg.gateway.ws_limits.max_message_bytes, 125, std::size_t(1) << 30);
        } else if (arg == "--linger-us") {
            step = number(cfg.runtime.linger_us, 0, 100000);
        } else if (arg == "--insecure") {
            cfg.gateway.insecure = true;
        } else if (arg == "--client-publish") {
            auto v = next();
            if (!v) {
                return unexpected{v.error()};
            }
            std::string_view list = *v;
            while (!list.empty()) {
                const auto comma = list.find(',');
                const std::string_view ns = list.substr(0, comma);
                if (ns.empty() || !pubsub::valid_channel(ns) ||
                    ns.find(':') != std::string_view::npos) {
                    return unexpected{"--client-publish: '" + std::string(ns) +
                                      "' is not a namespace name (letters, digits, _.@*-)"};
                }
                if (ns == "user") {
                    return unexpected{std::string("--client-publish: the user namespace is "
                                                  "server-only (per-user channels)")};
                }
                cfg.gateway.pubsub.client_publish_namespaces.emplace_back(ns);
                list =
                    comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
            }
        } else if (arg == "--max-channels") {
            step = number(cfg.gateway.pubsub.max_channels_per_connection, 1, 100000);
        } else if (arg == "--command-rate" || arg == "--command-burst") {
            step = number(arg == "--command-rate" ? cfg.gateway.pubsub.command_rate
                                                  : cfg.gateway.pubsub.command_burst,
                          1, 1000000);
        } else if (arg == "--slow-consumer-bytes") {
            step = number(cfg.gateway.pubsub.slow_consumer_bytes, 4096, std::size_t(1) << 34);
        } else if (arg == "--read-pause-bytes") {
            step = number(cfg.runtime.read_pause_bytes, 4096, std::size_t(1) << 34);
        } else if (arg == "--output-budget-bytes") {
            step = number(cfg.runtime.output_budget_bytes, 65536, std::size_t(1) << 40);
        } else if (arg == "--inbound-budget-bytes") {
            step = number(cfg.gateway.inbound_budget_bytes, 65536, std::size_t(1) << 40);
        } else if (arg == "--max-idle-channels") {
            step = number(cfg.gateway.pubsub.max_idle_channels, 1, 1u << 26);
        } else if (arg == "--api-key") {
            return unexpected{std::string(
                "--api-key is not accepted: a key on the command line can be read by every "
                "local user (ps, /proc/PID/cmdline); put it in a file readable only by "
                "ringcastd and pass --api-key-file PATH, or set the environment variable " +
                std::string(api_key_env))};
        } else if (arg == "--api-key-file") {
            auto v = next();
            if (!v) {
                return unexpected{v.error()};
            }
            if (v->empty()) {
                // An unset shell variable ("--api-key-file $KEYFILE") must not start a server
                // without the key its operator meant to give it.
                return unexpected{std::string("--api-key-file: empty path; give the file "
                                              "holding the key")};
            }
            api_key_file = std::string(*v);
        } else if (arg == "--backend-command-rate") {
            step = number(cfg.gateway.pubsub.backend_command_rate, 1, 10000000);
        } else if (arg == "--backend-command-burst") {
            step = number(cfg.gateway.pubsub.backend_command_burst, 1, 1000000);
        } else if (arg == "--max-connections-per-ip") {
            step = number(cfg.runtime.per_address.max_connections, 0, 1u << 30);
        } else if (arg == "--connect-rate-per-ip") {
            step = number(cfg.runtime.per_address.connect_rate, 0, 1000000);
        } else if (arg == "--connect-burst-per-ip") {
            step = number(cfg.runtime.per_address.connect_burst, 1, 1u << 30);
        } else if (arg == "--handshake-timeout-ms") {
            step = ms(cfg.gateway.handshake_timeout_ms);
        } else if (arg == "--ping-interval-ms") {
            step = ms(cfg.gateway.ping_interval_ms);
        } else if (arg == "--pong-timeout-ms") {
            step = ms(cfg.gateway.pong_timeout_ms);
        } else if (arg == "--idle-timeout-ms") {
            step = ms(cfg.gateway.idle_timeout_ms);
        } else if (arg == "--close-timeout-ms") {
            step = ms(cfg.runtime.close_timeout_ms);
        } else if (arg == "--shutdown-timeout-ms") {
            step = ms(cfg.runtime.shutdown_timeout_ms);
        } else {
            return unexpected{"unknown option '" + std::string(argv[i]) + "' (see --help)"};
        }
        if (!step) {
            return unexpected{step.error()};
        }
    }
    auto key = read_api_key(api_key_file);
    if (!key) {
        return unexpected{key.error()};
    }
    cfg.gateway.api.api_key = std::move(*key);
    cfg.api_key_source = api_key_file.empty()
                             ? (cfg.gateway.api.api_key.empty() ? "" : std::string(api_key_env))
                             : api_key_file;
    if (cfg.gateway.handshake_timeout_ms == 0) {
        return unexpected{std::string("--handshake-timeout-ms = 0 would close every connection "
                                      "at once; use a value of at least 1")};
    }
    if (cfg.gateway.ping_interval_ms > 0 && cfg.gateway.pong_timeout_ms == 0) {
        return unexpected{std::string("--pong-timeout-ms = 0 with pings on would close every "
                                      "pinged client; use at least 1 or --ping-interval-ms 0")};
    }
    return cfg;
}

} // namespace ringcast::app
