// ringcastd: parse flags, open one listener per shard, start the shards, serve until SIGINT
// (stop at once) or SIGTERM / POST /api/drain (drain, docs/operations.md "Drain"), stop the
// shards (clients get close 1001), print per-shard counters, exit 0.
#include "config.h"
#include "options.h"
#include "service.h"

#include <ringcast/core.h>
#include <ringcast/log.h>
#include <ringcast/net.h>

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <optional>
#include <exception>
#include <string>

using namespace ringcast;

namespace {

/// Slots of each shard only the --api-listen listener uses, on top of the connection cap
/// (its connections do not count toward the cap): a backend keeps reaching the API while
/// clients fill the table. 1024 keep-alive API connections per shard is more than a fleet
/// of backend workers holds, for 1024 descriptor-table entries.
constexpr uint32_t api_reserved_slots = 1024;
/// Slots of each shard only the --metrics-listen listener uses, likewise off the cap: a
/// scraper or two and a health checker hold a keep-alive connection each; 16 leaves room
/// for a few more and for reconnects whose old connection is still closing.
constexpr uint32_t metrics_reserved_slots = 16;

/// Raises RLIMIT_NOFILE to its hard limit: every shard's direct-descriptor table counts
/// against it. Returns the limit in force.
rlim_t raise_nofile() noexcept {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return 1024;
    }
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &lim);
    }
    getrlimit(RLIMIT_NOFILE, &lim);
    return lim.rlim_cur;
}

/// glibc's allocator only (the system default): allocations of 1 MiB and more get their own
/// mapping, returned to the kernel when freed. glibc otherwise raises this threshold
/// after the first large free (up to 32 MiB), after which large reassembly buffers and
/// shared payloads come from the heap and stay resident once freed: 80 unfinished 15 MiB
/// messages left 290 MB resident after their clients were closed (perf/attack/fragments).
/// Setting it also fixes the trim threshold at twice the value. No effect under jemalloc
/// or mimalloc, which do not read mallopt.
void pin_large_allocations_to_mmap() noexcept {
#ifdef __GLIBC__
    (void)mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}

/// printf into a string: the start-up lines, said on stdout and logged the same.
std::string printed(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string printed(const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    char text[1024];
    const int n = std::vsnprintf(text, sizeof(text), fmt, args);
    va_end(args);
    return std::string(text, n < 0 ? 0 : std::min<std::size_t>(std::size_t(n), sizeof(text) - 1));
}

/// A start-up line on stdout, as it always was ("ringcastd: listening on HOST:PORT": tests,
/// scripts and people read it there), in every format; in json and logfmt it is also an
/// info line on stderr, where a log collector reads, with `add_fields`' fields.
template <typename Fields>
void announce(std::string_view event, const std::string& text, Fields&& add_fields) {
    std::printf("ringcastd: %s\n", text.c_str());
    if (log::current_format() == log::format::text) {
        return;
    }
    std::fflush(stdout);
    log::line l(log::level::info, event, nullptr);
    add_fields(l);
    l.msg("%s", text.c_str());
}

void announce(std::string_view event, const std::string& text) {
    announce(event, text, [](log::line&) {});
}

/// The log settings of `cfg` in force: at start-up, and again on a reload (--log-format is
/// fixed at start: a collector parses one format).
void apply_log_settings(const app::config& cfg, bool starting) {
    log::set_level(log::parse_level(cfg.log_level).value_or(log::level::info));
    log::set_access_log(cfg.access_log);
    if (starting) {
        log::set_format(log::parse_format(cfg.log_format).value_or(log::format::text));
    }
}

/// Logs each line of a multi-line error (a config file may have several problems).
void log_each_line(log::level l, std::string_view event, const std::string& all,
                   const char* prefix) {
    for (std::size_t from = 0; from <= all.size();) {
        const std::size_t nl = all.find('\n', from);
        const std::string one = all.substr(from, nl - from);
        log::line(l, event, nullptr).msg("%s%s", prefix, one.c_str());
        from = nl == std::string::npos ? all.size() + 1 : nl + 1;
    }
}

/// SIGHUP: reads every source again (flags, environment, --config file); a configuration
/// with a problem is refused whole and the running one kept; otherwise what may change live
/// goes to every shard (net::reloaded_settings), and what needs a restart is named. Each
/// outcome is one line on stderr.
std::optional<app::config> reload(core::shard_group& group, const app::config& started,
                                  int argc, char** argv) {
    auto next = app::parse_args(argc, argv);
    if (!next) {
        log_each_line(log::level::error, "reload_refused", next.error(),
                      "reload refused, the running configuration stays: ");
        return std::nullopt;
    }
    auto settings = std::make_shared<net::reloaded_settings>();
    settings->config = next->gateway;
    // Authentication on or off is how the server was started: a reload changes keys, not
    // the mode.
    if (bool(started.gateway.tokens.keys) != bool(next->gateway.tokens.keys)) {
        settings->config.tokens = started.gateway.tokens;
        log::line(log::level::warn, "reload_needs_restart", nullptr)
            .field("option", "jwt")
            .msg("reload: JWT authentication %s needs a restart; keys unchanged",
                 started.gateway.tokens.keys ? "off" : "on");
    }
    std::size_t applied = 0;
    for (const app::option& opt : app::options()) {
        if (opt.scope != app::option_scope::setting) {
            continue;
        }
        const auto before = app::render_value(started, opt);
        const auto after = app::render_value(*next, opt);
        if (app::reloadable(opt)) {
            ++applied;
            continue;
        }
        if (before != after) {
            log::line(log::level::warn, "reload_needs_restart", nullptr)
                .field("option", opt.name)
                .msg("reload: %s changed to %s: needs a restart (running with %s)",
                     app::flag_of(opt).c_str(), after ? after->c_str() : "unset",
                     before ? before->c_str() : "unset");
        }
    }
    core::reload_shards(group, std::move(settings));
    apply_log_settings(*next, false);
    log::line(log::level::info, "reloaded", nullptr)
        .field("applied", applied)
        .field("log_level", next->log_level)
        .msg("reloaded: %zu settings that change live applied (docs/operations.md \"Reload\")",
             applied);
    return std::move(next.value());
}

/// How long after the drain's window the main thread stops the shards: more than the
/// longest a shard waits between loop passes (100 ms), so each has offered its last
/// connections to the drain before the stop closes what is left.
constexpr int64_t drain_end_slack_ms = 250;

/// How serve() ended.
enum class ending : uint8_t {
    at_once, ///< SIGINT, or a second SIGTERM during a drain: every session closed now
    drained, ///< the drain's window has passed: what is left closes now
};

/// The drain as the main thread runs it (docs/operations.md "Drain"): the settings in force
/// (a reload may change them until the drain begins), and where it is.
struct drain_run {
    uint32_t delay_ms = 0;
    uint32_t seconds = 0;
    core::drain_phase phase = core::drain_phase::serving;
    std::chrono::steady_clock::time_point next_at{}; // when the phase after this one begins
};

/// The agent-check port: one short answer per connection, then close. HAProxy reads a line
/// ("up ready" puts the server back in rotation, "drain" stops new sessions while the
/// existing ones stay) and expects the agent to close. Non-blocking; a client that does not
/// take the few bytes at once gets nothing (HAProxy retries at its next check).
void answer_agent(int listen_fd, core::drain_phase phase) noexcept {
    for (int i = 0; i < 64; ++i) { // a burst at most per wakeup: the loop has other work
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return; // EAGAIN: none left; anything else: the next poll tells again
        }
        std::string_view word;
        switch (phase) {
        case core::drain_phase::serving:
            word = "up ready\n";
            break;
        case core::drain_phase::announced:
        case core::drain_phase::closing:
            word = "drain\n";
            break;
        }
        (void)::send(fd, word.data(), word.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        // Whatever HAProxy sent (agent-send) is read first, so the close is a FIN, not a
        // reset.
        char discard[256];
        while (::recv(fd, discard, sizeof(discard), MSG_DONTWAIT) > 0) {
        }
        ::close(fd);
    }
}

/// The main thread while the shards serve: tells the service manager (when there is one)
/// that we are ready, how we are doing, and — while every shard's loop turns — that we are
/// alive (docs/operations.md "systemd"); answers the agent check; runs a drain on SIGTERM
/// or POST /api/drain; returns how the serving ended.
template <typename Reload>
ending serve(const core::shard_group& group, core::stop_token& stop, int signal_fd,
             int agent_fd, drain_run& drain, Reload&& reload) {
    app::notifier manager = app::notifier::from_environment();
    if (!manager.error().empty()) {
        log::line(log::level::warn, "notify_disabled", nullptr)
            .msg("warning: %s; not notifying the service manager", manager.error().c_str());
    }
    app::watchdog dog;
    core::group_status status = core::status_of(group);
    dog.check(status.loop_passes); // the baseline: the first tick can already pet
    manager.send("READY=1\nSTATUS=" +
                 app::status_line(status.connections, 0, status.loop_passes.size()));
    // A quarter of the manager's interval, so three ticks can miss before it acts; never
    // below 200 ms, twice the longest a turning loop waits (shard.cc max_wait_ms).
    const uint64_t tick_ms =
        manager.watchdog_usec() != 0
            ? std::clamp<uint64_t>(manager.watchdog_usec() / 4000, 200, 1000)
            : 1000;
    auto last = std::chrono::steady_clock::now();
    auto next_tick = last + std::chrono::milliseconds(tick_ms);
    std::vector<unsigned> reported_stuck;
    const auto set_phase = [&](core::drain_phase phase) {
        drain.phase = phase;
        // Release: pairs with each shard's acquire load (stop_token), which then reads the
        // window stored before.
        stop.drain.store(phase, std::memory_order_release);
    };
    for (;;) {
        auto now = std::chrono::steady_clock::now();
        auto until = next_tick;
        if (drain.phase != core::drain_phase::serving) {
            until = std::min(until, drain.next_at);
        }
        const int wait_ms = static_cast<int>(std::max<int64_t>(
            0, std::chrono::ceil<std::chrono::milliseconds>(until - now).count()));
        pollfd fds[2] = {{signal_fd, POLLIN, 0}, {agent_fd, POLLIN, 0}};
        const int ready = ::poll(fds, agent_fd >= 0 ? 2 : 1, wait_ms);
        if (ready > 0 && agent_fd >= 0 && (fds[1].revents & POLLIN) != 0) {
            answer_agent(agent_fd, drain.phase);
        }
        signalfd_siginfo si{};
        while (ready > 0 && ::read(signal_fd, &si, sizeof(si)) == sizeof(si)) {
            const int sig = static_cast<int>(si.ssi_signo);
            if (sig == SIGINT || (sig == SIGTERM && drain.phase != core::drain_phase::serving)) {
                log::line(log::level::info, "stop_now", nullptr)
                    .field("signal", sig == SIGINT ? "SIGINT" : "SIGTERM")
                    .msg("%s%s: closing every connection now", sig == SIGINT ? "SIGINT" : "SIGTERM",
                         sig == SIGTERM ? " during the drain" : "");
                if (drain.phase == core::drain_phase::serving) {
                    manager.send("STOPPING=1");
                }
                return ending::at_once;
            }
            if (sig == core::drain_signal && drain.phase != core::drain_phase::serving) {
                continue; // POST /api/drain again: the drain is under way
            }
            if (sig == SIGTERM || sig == core::drain_signal) {
                const bool asked = sig == core::drain_signal && si.ssi_pid == uint32_t(::getpid());
                const char* by =
                    asked ? "POST /api/drain" : sig == SIGTERM ? "SIGTERM" : "SIGUSR2";
                log::line(log::level::info, "drain_begin", nullptr)
                    .field("by", by)
                    .field("delay_ms", drain.delay_ms)
                    .field("seconds", drain.seconds)
                    .msg("%s: draining: /readyz 503 and the agent check \"drain\" for %u ms, "
                         "then sessions closed with 1001 over %u s",
                         by, drain.delay_ms, drain.seconds);
                manager.send("STOPPING=1\nSTATUS=draining");
                drain.next_at = std::chrono::steady_clock::now() +
                                std::chrono::milliseconds(drain.delay_ms);
                set_phase(core::drain_phase::announced);
            } else if (sig == SIGHUP) {
                manager.send("RELOADING=1");
                if (const auto next = reload(); next && drain.phase == core::drain_phase::serving) {
                    drain.delay_ms = next->drain_delay_ms;
                    drain.seconds = next->drain_seconds;
                }
                manager.send("READY=1");
            }
        }
        now = std::chrono::steady_clock::now();
        if (drain.phase != core::drain_phase::serving && now >= drain.next_at) {
            switch (drain.phase) {
            case core::drain_phase::serving:
                break;
            case core::drain_phase::announced:
                stop.drain_window_ms.store(drain.seconds * 1000, std::memory_order_relaxed);
                stop.drain_since_ms.store(core::monotonic_us() / 1000, std::memory_order_relaxed);
                // The shards pace from that instant; a shard sees the window's end at its next
                // loop pass, at most 100 ms later (shard.cc max_wait_ms): stop after that.
                drain.next_at = now + std::chrono::seconds(drain.seconds) +
                                std::chrono::milliseconds(drain_end_slack_ms);
                log::line(log::level::info, "drain_closing", nullptr)
                    .field("seconds", drain.seconds)
                    .msg("drain: closing sessions over %u s", drain.seconds);
                set_phase(core::drain_phase::closing);
                break;
            case core::drain_phase::closing:
                log::line(log::level::info, "drain_over", nullptr)
                    .msg("drain: window over, stopping");
                return ending::drained;
            }
        }
        if (now < next_tick) {
            continue;
        }
        next_tick = now + std::chrono::milliseconds(tick_ms);
        if (!manager.enabled()) {
            continue;
        }
        const double seconds = std::chrono::duration<double>(now - last).count();
        last = now;
        const core::group_status next = core::status_of(group);
        const double frames_per_s =
            seconds > 0 ? double(next.frames_sent - status.frames_sent) / seconds : 0;
        status = next;
        std::string state = "STATUS=" + app::status_line(status.connections, frames_per_s,
                                                          status.loop_passes.size());
        if (drain.phase != core::drain_phase::serving) {
            state += " (draining)";
        }
        const app::watchdog::verdict v = dog.check(status.loop_passes);
        if (manager.watchdog_usec() != 0 && v.pet) {
            state += "\nWATCHDOG=1";
        }
        if (v.stuck != reported_stuck) {
            for (const unsigned shard : v.stuck) {
                log::line(log::level::error, "shard_stuck", nullptr)
                    .field("shard", shard)
                    .field("ms", tick_ms)
                    .msg("shard %u: its loop has not turned for %llu ms; WATCHDOG=1 withheld "
                         "until it does",
                         shard, static_cast<unsigned long long>(tick_ms));
            }
            if (v.stuck.empty()) {
                log::line(log::level::info, "shards_turning", nullptr)
                    .msg("every shard's loop turns again");
            }
            reported_stuck = v.stuck;
        }
        manager.send(state);
    }
}

int run(int argc, char** argv) {
    pin_large_allocations_to_mmap();
    auto parsed = app::parse_args(argc, argv);
    if (!parsed) {
        // One problem per line (a config file may have several), each said in full. The
        // format asked for is not known yet: these are text.
        log_each_line(log::level::error, "config_error", parsed.error(), "");
        return 2;
    }
    app::config cfg = std::move(parsed.value());
    apply_log_settings(cfg, true);
    for (const std::string& w : cfg.warnings) {
        log::line(log::level::warn, "config_warning", nullptr).msg("warning: %s", w.c_str());
    }
    if (cfg.show_help) {
        std::fputs(app::usage().c_str(), stdout);
        return 0;
    }
    if (cfg.show_version) {
        std::printf("ringcastd %s\n", RINGCAST_VERSION);
        return 0;
    }
    if (cfg.print_only) {
        std::fputs(app::print_config(cfg).c_str(), stdout);
        return 0;
    }

    const std::vector<int> cpus = app::allowed_cpus();
    const unsigned shards =
        cfg.shards != 0 ? cfg.shards : static_cast<unsigned>(std::max<std::size_t>(cpus.size(), 1));
    const rlim_t nofile = raise_nofile();
    // Each shard's descriptor table (the cap plus the slots kept beyond it) counts against
    // RLIMIT_NOFILE.
    // The listeners, their sockets opened below once the configuration is known good.
    cfg.runtime.listeners.push_back({core::listener::main, core::listener_slots::capped, 0, {}});
    if (cfg.api_listen) {
        cfg.runtime.listeners.push_back(
            {core::listener::api, core::listener_slots::reserved, api_reserved_slots, {}});
    }
    if (cfg.metrics_listen) {
        cfg.runtime.listeners.push_back(
            {core::listener::metrics, core::listener_slots::reserved, metrics_reserved_slots, {}});
    }
    const rlim_t beyond_cap = core::descriptor_slots(0, cfg.runtime.listeners, cfg.runtime.outbound_slots);
    const rlim_t usable = nofile > beyond_cap ? nofile - beyond_cap : 1;
    const bool max_connections_given = app::given(cfg, "max-connections");
    if (cfg.runtime.max_connections_per_shard > usable) {
        if (max_connections_given) {
            log::line(log::level::warn, "nofile_limit", nullptr).msg(
                "warning: --max-connections %u per shard is above RLIMIT_NOFILE "
                "(%llu), which caps each shard's descriptor table; using %llu (raise "
                "LimitNOFILE / ulimit -n for more)",
                cfg.runtime.max_connections_per_shard, static_cast<unsigned long long>(nofile),
                static_cast<unsigned long long>(usable));
        }
        if (!max_connections_given) {
            // The default is what a tuned host gives; say when this one gives less, so an
            // operator finds the cap before a load test does.
            log::line(log::level::warn, "nofile_limit", nullptr).msg(
                "warning: RLIMIT_NOFILE (%llu) caps each shard at %llu connections (%llu in "
                "all); raise LimitNOFILE / ulimit -n for more (tuning/README.md)",
                         static_cast<unsigned long long>(nofile),
                         static_cast<unsigned long long>(usable),
                         static_cast<unsigned long long>(usable * shards));
        }
        cfg.runtime.max_connections_per_shard = static_cast<uint32_t>(usable);
    }
    for (unsigned i = 0; i < shards; ++i) {
        cfg.runtime.cpus.push_back(cpus.empty() ? -1 : cpus[i % cpus.size()]);
    }
    if (cfg.check_only) {
        cfg.shards = shards; // the value in force, for the list below
        std::printf("ringcastd: configuration OK (%u shard%s on %s:%u)\n%s", shards,
                    shards == 1 ? "" : "s", cfg.listen.host.c_str(), unsigned(cfg.listen.port),
                    app::effective_options(cfg).c_str());
        return 0;
    }

    auto fds = net::open_listeners(cfg.listen, shards);
    if (!fds) {
        log::line(log::level::error, "listen_failed", nullptr).msg("%s", fds.error().c_str());
        return 1;
    }
    cfg.runtime.listeners[0].fds = *fds;
    if (cfg.api_listen) {
        auto api_fds = net::open_listeners(*cfg.api_listen, shards);
        if (!api_fds) {
            log::line(log::level::error, "listen_failed", nullptr)
                .msg("--api-listen: %s", api_fds.error().c_str());
            return 1;
        }
        cfg.runtime.listeners[1].fds = *api_fds;
    }
    if (cfg.metrics_listen) {
        auto metrics_fds = net::open_listeners(*cfg.metrics_listen, shards);
        if (!metrics_fds) {
            log::line(log::level::error, "listen_failed", nullptr)
                .msg("--metrics-listen: %s", metrics_fds.error().c_str());
            return 1;
        }
        cfg.runtime.listeners.back().fds = *metrics_fds;
    }
    // What a connection over a per-address limit gets (docs/protocol.md "Connection
    // limits"); one beyond --max-connections is answered by the gateway (restricted mode).
    // Retry-After: the cap frees only as the address closes connections, so not soon; the
    // rate's bucket refills a token every 1/R s (10 ms at the default 100/s).
    cfg.runtime.refusal_address_cap = http::make_error_response(
        429, "too many connections from your address; close some or retry later",
        http::keep_alive::no, http::retry_after(10));
    cfg.runtime.refusal_address_rate = http::make_error_response(
        429, "too many new connections from your address; retry in a second", http::keep_alive::no,
        http::retry_after(1));
    const uint16_t port = net::local_port(fds->front());

    // Block the stop signals in every thread (shards inherit this mask) and take them
    // synchronously here; SIGPIPE is ignored for the few plain syscalls we make.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP); // reload (docs/operations.md "Reload")
    sigaddset(&stop_signals, core::drain_signal); // POST /api/drain (docs/operations.md "Drain")
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);
    const int signal_fd = ::signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd < 0) {
        log::line(log::level::error, "signalfd_failed", nullptr)
            .msg("signalfd: %s", std::strerror(errno));
        return 1;
    }
    int agent_fd = -1;
    if (cfg.agent_check_listen) {
        auto agent = net::open_listeners(*cfg.agent_check_listen, 1);
        if (!agent) {
            log::line(log::level::error, "listen_failed", nullptr)
                .msg("--agent-check-listen: %s", agent.error().c_str());
            return 1;
        }
        agent_fd = agent->front();
        (void)::fcntl(agent_fd, F_SETFL, ::fcntl(agent_fd, F_GETFL) | O_NONBLOCK);
        const unsigned agent_port = net::local_port(agent_fd);
        announce("agent_check_listening",
                 printed("agent check on %s:%u", cfg.agent_check_listen->host.c_str(), agent_port),
                 [&](log::line& l) { l.field("port", agent_port); });
    }

    core::stop_token stop;
    const net::gateway_config gateway = cfg.gateway;
    auto group = core::start_shards(
        cfg.runtime, [&gateway](core::conn_io& io) { return net::make_gateway(io, gateway); },
        stop);
    if (!group) {
        log::line(log::level::error, "start_failed", nullptr).msg("%s", group.error().c_str());
        return 1;
    }
    announce("listening",
             printed("listening on %s:%u (%u shard%s%s%s)", cfg.listen.host.c_str(),
                     unsigned(port), shards, shards == 1 ? "" : "s",
                     gateway.echo_path.empty() ? "" : ", echo on ", gateway.echo_path.c_str()),
             [&](log::line& l) {
                 l.field("host", cfg.listen.host).field("port", port).field("shards", shards);
             });
    if (cfg.api_listen) {
        const unsigned api_port = net::local_port(cfg.runtime.listeners[1].fds.front());
        announce("api_listening", printed("api on %s:%u", cfg.api_listen->host.c_str(), api_port),
                 [&](log::line& l) { l.field("port", api_port); });
    }
    if (cfg.metrics_listen) {
        std::printf("ringcastd: metrics on %s:%u\n", cfg.metrics_listen->host.c_str(),
                    unsigned(net::local_port(cfg.runtime.listeners.back().fds.front())));
    }
    if (cfg.gateway.insecure) {
        log::line(log::level::warn, "insecure", nullptr)
            .msg("WARNING: --insecure: any client may claim any user id with ?user= (its user: "
                 "channel, its messages); for development only, never on a port others can "
                 "reach");
    }
    if (cfg.gateway.tokens.keys) {
        // Which files, how many keys: never a key's bytes.
        announce("auth_jwt",
                 printed("JWT authentication on: %zu key%s; every /ws client needs a token "
                         "(?token= or Authorization: Bearer), or an API key with the publish "
                         "scope",
                         cfg.gateway.tokens.keys->keys().size(),
                         cfg.gateway.tokens.keys->keys().size() == 1 ? "" : "s"));
    } else if (!cfg.gateway.insecure) {
        announce("auth_anonymous", "no JWT keys: /ws clients are anonymous (development and "
                                   "demo only; see docs/security.md)");
    }
    if (cfg.api_key_source.empty()) {
        announce("api_keys_none",
                 printed("no API key (--api-key-file or %s): /api/ answers loopback peers only "
                         "(127.0.0.0/8, ::1), 403 to others",
                         app::api_key_env));
    } else {
        announce("api_keys",
                 printed("%zu API key%s from %s: /api/ and backend sessions need "
                         "\"Authorization: Bearer\"",
                         cfg.gateway.api.keys.size(), cfg.gateway.api.keys.size() == 1 ? "" : "s",
                         cfg.api_key_source.c_str()));
        // Names and scopes only: a secret is never printed.
        for (const admin::api_key& k : cfg.gateway.api.keys) {
            std::string scopes;
            for (unsigned i = 0; i < admin::api_scope_count; ++i) {
                if (k.allows(admin::api_scope(i))) {
                    scopes += (scopes.empty() ? "" : ",");
                    scopes += admin::scope_name(admin::api_scope(i));
                }
            }
            announce("api_key", printed("API key '%s': %s", k.name.c_str(), scopes.c_str()),
                     [&](log::line& l) { l.field("name", k.name).field("scopes", scopes); });
        }
    }
    std::fflush(stdout);

    const app::config started = cfg;
    drain_run drain{.delay_ms = cfg.drain_delay_ms, .seconds = cfg.drain_seconds};
    const ending how = serve(*group.value(), stop, signal_fd, agent_fd, drain,
                             [&] { return reload(*group.value(), started, argc, argv); });
    log::line(log::level::info, "stopping", nullptr)
        .msg("%s", how == ending::drained ? "drained: closing what is left" : "closing connections");
    // Pairs with the relaxed load at the end of each shard's loop pass (core::stop_token).
    stop.requested.store(true, std::memory_order_relaxed);
    const auto counters = core::wait_shards(std::move(group.value()));
    for (std::size_t i = 0; i < counters.size(); ++i) {
        const auto& c = counters[i];
        log::line(log::level::info, "shard_totals", nullptr)
            .field("shard", i)
            .field("accepted", c.accepted)
            .field("closed", c.closed)
            .field("bytes_received", c.bytes_received)
            .field("bytes_sent", c.bytes_sent)
            .field("log_suppressed", c.log_suppressed)
            .msg("shard %zu: accepted %llu, closed %llu, received %llu B, sent %llu B in %llu "
                 "sends (%llu frames), enobufs %llu, read pauses %llu, cq overflows %llu, loop "
                 "passes %llu",
                     i, static_cast<unsigned long long>(c.accepted),
                     static_cast<unsigned long long>(c.closed),
                     static_cast<unsigned long long>(c.bytes_received),
                     static_cast<unsigned long long>(c.bytes_sent),
                     static_cast<unsigned long long>(c.sends),
                     static_cast<unsigned long long>(c.frames_sent),
                     static_cast<unsigned long long>(c.recv_enobufs),
                     static_cast<unsigned long long>(c.read_pauses),
                     static_cast<unsigned long long>(c.cq_overflows),
                     static_cast<unsigned long long>(c.loop_iterations));
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        // Setup failures only: the data path does not throw.
        log::line(log::level::error, "fatal", nullptr).msg("fatal: %s", e.what());
        return 1;
    }
}
