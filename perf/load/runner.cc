// The runner: descriptor limits, --procs workers, server probes, merging, the summary.
//
//   parent ──fork──► worker 0 .. P-1 (each: its share of connections, own ring)
//     │  pipe lines:  "checkpoint window_start" | "checkpoint all_held" |
//     │               "checkpoint window_end"   | "report {...}"
//     └─ samples the server when every worker reached window_start / all_held and when the
//        first reached window_end; merges the reports (rates summed, histograms merged);
//        prints one JSON summary on stdout.
// With --procs 1 there is no fork: the scenario runs in this process and reach() samples
// directly. Setup-time code: allocation and blocking I/O are fine here.
#include "scenario.h"
#include "stats.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

namespace ringcast::bench {

/// Samples of the server process and kernel at the checkpoints; turns them into metrics.
class server_probe {
public:
    explicit server_probe(int pid) : _pid(pid) { _before = sample_server(pid); }

    void on(checkpoint point) {
        switch (point) {
        case checkpoint::window_start:
            _start = sample_server(_pid);
            _have_start = true;
            break;
        case checkpoint::all_held:
            _held = sample_server(_pid);
            _have_held = true;
            break;
        case checkpoint::window_end:
            if (!_have_end) {
                _end = sample_server(_pid);
                _have_end = true;
            }
            break;
        }
    }

    void add_to(report& r) const {
        if (_pid > 0 && _have_start && _have_end && _start.cpu_seconds >= 0 &&
            _end.cpu_seconds >= 0) {
            const double wall = double(_end.taken_ns - _start.taken_ns) / 1e9;
            r.set("server_cpu_pct",
                  wall > 0 ? 100.0 * (_end.cpu_seconds - _start.cpu_seconds) / wall : 0);
            // In clock ticks (10 ms): a per-handshake figure needs a storm of a second or so.
            r.set("server_cpu_seconds", _end.cpu_seconds - _start.cpu_seconds);
        }
        if (_have_start && _have_end && _start.host_busy_seconds >= 0) {
            // 100 = one CPU. Whatever is neither bench nor server (compiles, other tests)
            // is "other": above a few percent, the numbers of this run are contaminated.
            const double wall = double(_end.taken_ns - _start.taken_ns) / 1e9;
            const double host =
                wall > 0 ? 100.0 * (_end.host_busy_seconds - _start.host_busy_seconds) / wall : 0;
            r.set("host_busy_pct", host);
            const double server = _pid > 0 ? r.get("server_cpu_pct").value_or(0) : 0;
            r.set("other_cpu_pct", host - server - r.get("bench_cpu_pct").value_or(0));
        }
        if (!_have_held) {
            return;
        }
        const double conns = r.get("connections").value_or(0);
        auto per_conn = [&](double delta) { return conns > 0 ? delta / conns : 0.0; };
        if (_pid > 0) {
            r.set("server_rss.vm_rss_before_kb", double(_before.vm_rss_kb));
            r.set("server_rss.vm_rss_held_kb", double(_held.vm_rss_kb));
            r.set("server_rss.delta_per_conn_bytes",
                  per_conn(double(_held.vm_rss_kb - _before.vm_rss_kb) * 1024));
            r.set("server_rss.smaps_rss_before_kb", double(_before.smaps_rss_kb));
            r.set("server_rss.smaps_rss_held_kb", double(_held.smaps_rss_kb));
            r.set("server_rss.smaps_pss_before_kb", double(_before.smaps_pss_kb));
            r.set("server_rss.smaps_pss_held_kb", double(_held.smaps_pss_kb));
            r.set("server_rss.smaps_anon_before_kb", double(_before.smaps_anon_kb));
            r.set("server_rss.smaps_anon_held_kb", double(_held.smaps_anon_kb));
            r.set("server_rss.smaps_anon_delta_per_conn_bytes",
                  per_conn(double(_held.smaps_anon_kb - _before.smaps_anon_kb) * 1024));
        }
        // Kernel-wide and informational: loopback counts both ends (server + bench socket).
        r.set("kernel.tcp_inuse_before", double(_before.sockstat_tcp_inuse));
        r.set("kernel.tcp_inuse_held", double(_held.sockstat_tcp_inuse));
        r.set("kernel.tcp_mem_pages_before", double(_before.sockstat_tcp_mem_pages));
        r.set("kernel.tcp_mem_pages_held", double(_held.sockstat_tcp_mem_pages));
        r.set("kernel.slab_before_kb", double(_before.slab_kb));
        r.set("kernel.slab_held_kb", double(_held.slab_kb));
        r.set("kernel.slab_delta_per_conn_bytes_both_ends",
              per_conn(double(_held.slab_kb - _before.slab_kb) * 1024));
        // One end's share: slab plus TCP buffer pages, halved. The bench's end is the same
        // code for every server, so differences between servers are the servers' own.
        r.set("kernel.per_conn_bytes_one_end_est",
              per_conn(
                  (double(_held.slab_kb - _before.slab_kb) * 1024 +
                   double(_held.sockstat_tcp_mem_pages - _before.sockstat_tcp_mem_pages) * 4096) /
                  2));
        if (_before.slab_tcp_bytes >= 0 && _held.slab_tcp_bytes >= 0) {
            r.set("kernel.slab_tcp_sock_inode_per_conn_bytes_both_ends",
                  per_conn(double(_held.slab_tcp_bytes - _before.slab_tcp_bytes)));
        }
    }

private:
    int _pid;
    server_sample _before;
    server_sample _start;
    server_sample _held;
    server_sample _end;
    bool _have_start = false;
    bool _have_held = false;
    bool _have_end = false;
};

namespace {

/// Descriptors a worker needs besides its sockets: ring, std streams, pipes, /proc reads,
/// and up to 16 fanout publisher connections in worker 0.
constexpr rlim_t fd_slack = 64;

/// run_context::shared_area(): 4 MB of address space, touched only as far as a scenario
/// uses it (fanout: 64 B of flags + 16 B per channel, 100 000 channels at most).
constexpr std::size_t shared_area_bytes = 4u << 20;

bool write_all(int fd, std::string_view text) noexcept {
    // Bounded: each write makes progress or fails; 1000 tries covers EINTR storms.
    for (int tries = 0; tries < 1000 && !text.empty(); ++tries) {
        const ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        text.remove_prefix(std::size_t(n));
    }
    return text.empty();
}

// Raises RLIMIT_NOFILE's soft limit for `per_process` sockets; false (with the sentence
// printed) when even the hard limit is too low.
bool ensure_fd_limit(uint32_t per_process, uint32_t procs, uint32_t total) {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return true;
    }
    const rlim_t need = rlim_t(per_process) + fd_slack;
    if (lim.rlim_cur >= need) {
        return true;
    }
    if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < need) {
        const rlim_t usable = lim.rlim_max > fd_slack ? lim.rlim_max - fd_slack : 1;
        const auto suggest = uint32_t((total + usable - 1) / usable);
        std::fprintf(stderr,
                     "ringcast-bench: %u connections in %u process(es) need %llu descriptors "
                     "per process, but RLIMIT_NOFILE's hard limit is %llu; run with --procs %u "
                     "(or more) so each worker stays below it, or raise the hard limit "
                     "(ulimit -Hn, limits.conf)\n",
                     total, procs, static_cast<unsigned long long>(need),
                     static_cast<unsigned long long>(lim.rlim_max), suggest);
        return false;
    }
    const rlim_t old = lim.rlim_cur;
    lim.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        std::fprintf(stderr, "ringcast-bench: cannot raise RLIMIT_NOFILE from %llu to %llu: %s\n",
                     static_cast<unsigned long long>(old), static_cast<unsigned long long>(need),
                     std::strerror(errno));
        return false;
    }
    std::fprintf(stderr,
                 "ringcast-bench: warning: RLIMIT_NOFILE soft limit %llu would cap the run; "
                 "raised it to %llu (hard limit %llu)\n",
                 static_cast<unsigned long long>(old), static_cast<unsigned long long>(need),
                 static_cast<unsigned long long>(lim.rlim_max));
    return true;
}

/// A number from a /proc or /proc/sys text: the first field after `key` (-1 if absent).
long long proc_number(const char* path, std::string_view key) {
    FILE* f = std::fopen(path, "re");
    if (f == nullptr) {
        return -1;
    }
    char line[512];
    long long value = -1;
    // Bounded by the file (a few dozen lines).
    while (std::fgets(line, sizeof line, f) != nullptr) {
        const std::string_view l(line);
        if (l.rfind(key, 0) == 0) {
            const char* p = line + key.size();
            while (*p == ' ') {
                ++p;
            }
            value = std::strncmp(p, "unlimited", 9) == 0 ? LLONG_MAX : std::atoll(p);
            break;
        }
    }
    std::fclose(f);
    return value;
}

/// Warnings, not errors, for host limits that would cap a run without failing it: the
/// server's descriptor limit (it would refuse connections beyond it) and the accept
/// backlog (SYNs beyond it are dropped and retried a second later, which a storm would
/// report as slow handshakes rather than a full backlog).
void warn_host_limits(const bench_options& options) {
    if (options.server_pid > 0) {
        const std::string limits = "/proc/" + std::to_string(options.server_pid) + "/limits";
        const long long nofile = proc_number(limits.c_str(), "Max open files");
        if (nofile > 0 && nofile < static_cast<long long>(options.connections) + 16) {
            std::fprintf(stderr,
                         "ringcast-bench: warning: the server's RLIMIT_NOFILE soft limit is "
                         "%lld, below --connections %u plus its own descriptors: a server "
                         "with one descriptor table refuses connections past it (ringcastd "
                         "has one table of that size per shard: use more shards or raise "
                         "LimitNOFILE; see tuning/)\n",
                         nofile, options.connections);
        }
    }
    const long long somaxconn = proc_number("/proc/sys/net/core/somaxconn", "");
    if (somaxconn > 0 && somaxconn < static_cast<long long>(options.connect_concurrency)) {
        std::fprintf(stderr,
                     "ringcast-bench: warning: net.core.somaxconn is %lld, below "
                     "--connect-concurrency %u: SYNs past the accept backlog are dropped and "
                     "retried after ~1 s (tuning/sysctl.d/90-ringcast.conf sizes it)\n",
                     somaxconn, options.connect_concurrency);
    }
}

void finish_and_print(report& r, const server_probe& probe) {
    r.resolve_percentiles();
    probe.add_to(r);
    const std::string json = r.to_json() + "\n";
    write_all(STDOUT_FILENO, json);
}

struct worker_pipe {
    pid_t pid = -1;
    int fd = -1;
    std::string buffer;
    bool got_report = false;
    bool eof = false;
};

} // namespace

uint32_t ports_per_source_address() noexcept {
    unsigned lo = 32768;
    unsigned hi = 60999;
    if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "re")) {
        if (std::fscanf(f, "%u %u", &lo, &hi) != 2) {
            lo = 32768;
            hi = 60999;
        }
        std::fclose(f);
    }
    const unsigned range = hi > lo ? hi - lo + 1 : 1000;
    // The kernel picks an ephemeral port by scanning from a hashed start for one whose
    // 4-tuple is free (__inet_hash_connect); every port already taken on that source
    // address, by this run, an earlier run's TIME_WAIT or another bench, costs a check.
    // Measured: 19 000 connects on one address next to another bench's 19 900 spent 79 %
    // of the bench's CPU in that scan (1.3 k connects/s). A sixth of the range per address
    // keeps the scan to a step or two: 100 000 connections use 127.0.0.1..22.
    const unsigned usable = range > 2000 ? range - 1000 : range;
    return std::max(1000u, std::min(usable, range / 6));
}

std::string human(double v) {
    char buf[32];
    if (v >= 1e6) {
        std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
    } else if (v >= 1e4) {
        std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
    } else {
        std::snprintf(buf, sizeof buf, "%.0f", v);
    }
    return buf;
}

client_config run_context::make_client_config(uint32_t recv_buffer_bytes) const {
    client_config c;
    c.target = _options.target;
    c.connections = _connections;
    c.first_global_index = _first_global_index;
    c.per_source_address = ports_per_source_address();
    c.recv_buffer_bytes = recv_buffer_bytes;
    c.connect_concurrency = _options.connect_concurrency;
    c.connect_timeout_ms = _options.connect_timeout_ms;
    c.deflate = _options.deflate;
    if (c.deflate) {
        c.extra_headers += "Sec-WebSocket-Extensions: permessage-deflate; "
                           "client_no_context_takeover\r\n";
    }
    if (_options.target.path.find("{channel}") != std::string::npos) {
        c.paths.reserve(_options.channels);
        for (uint32_t ch = 0; ch < _options.channels; ++ch) {
            c.paths.push_back(substitute_channel(_options.target.path, channel_name(_options, ch)));
        }
        c.path_slots = _connections;
    } else if (!_options.tokens.empty()) {
        // main.cc refuses tokens with {channel}: one list of paths serves either, not both.
        c.paths.reserve(_options.tokens.size());
        for (const std::string& token : _options.tokens) {
            c.paths.push_back(with_query_param(_options.target.path, "token", token));
        }
        c.path_slots = _connections;
    }
    return c;
}

void run_context::reach(checkpoint point) noexcept {
    if (_probe != nullptr) {
        _probe->on(point);
        return;
    }
    if (_report_fd >= 0) {
        write_all(_report_fd, "checkpoint " + std::string(checkpoint_name(point)) + "\n");
    }
}

void run_context::progress(std::string_view line) const noexcept {
    if (!_options.progress) {
        return;
    }
    std::string out;
    if (_workers > 1) {
        out = "[w" + std::to_string(_worker) + "/" + std::to_string(_workers) + "] ";
    }
    out += line;
    out += "\n";
    write_all(STDERR_FILENO, out);
}

int run_scenario(const scenario_def& def, const bench_options& options) {
    // Writes to a closed socket are answered with -EPIPE by io_uring; plain writes (pipes)
    // must not kill us either.
    signal(SIGPIPE, SIG_IGN);
    const uint32_t procs = options.procs;
    const uint32_t per_process = (options.connections + procs - 1) / procs;
    if (!ensure_fd_limit(per_process, procs, options.connections)) {
        return 2;
    }
    warn_host_limits(options);
    const uint32_t per_address = ports_per_source_address();
    const uint32_t addresses = (options.connections + per_address - 1) / per_address;
    if (addresses > 254) {
        std::fprintf(stderr,
                     "ringcast-bench: %u connections need %u source addresses at %u "
                     "ports each; 127.0.0.1..127.0.0.254 is the most the bench uses\n",
                     options.connections, addresses, per_address);
        return 2;
    }
    if (addresses > 1) {
        std::fprintf(stderr,
                     "ringcast-bench: spreading %u connections over source addresses "
                     "127.0.0.1..127.0.0.%u (%u each)\n",
                     options.connections, addresses, per_address);
    }
    if (options.server_pid > 0 && !process_exists(options.server_pid)) {
        std::fprintf(stderr, "ringcast-bench: --server-pid %d: no such process\n",
                     options.server_pid);
        return 2;
    }

    server_probe probe(options.server_pid);
    void* shared =
        mmap(nullptr, shared_area_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        std::fprintf(stderr, "ringcast-bench: mmap of the shared area: %s\n", std::strerror(errno));
        return 2;
    }
    const std::span<std::byte> shared_area(static_cast<std::byte*>(shared), shared_area_bytes);
    if (procs == 1) {
        run_context ctx(options, 0, 1, 0, options.connections, -1, &probe, shared_area);
        report r;
        r.scenario = std::string(def.name);
        const int rc = def.run(ctx, r);
        finish_and_print(r, probe);
        return rc;
    }

    std::fflush(nullptr); // children must not flush the parent's buffered output again
    std::vector<worker_pipe> workers(procs);
    uint32_t first = 0;
    for (uint32_t w = 0; w < procs; ++w) {
        const uint32_t share = std::min(per_process, options.connections - first);
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            std::fprintf(stderr, "ringcast-bench: pipe: %s\n", std::strerror(errno));
            return 2;
        }
        const pid_t pid = fork();
        if (pid < 0) {
            std::fprintf(stderr, "ringcast-bench: fork: %s\n", std::strerror(errno));
            return 2;
        }
        if (pid == 0) {
            ::close(fds[0]);
            for (uint32_t i = 0; i < w; ++i) {
                ::close(workers[i].fd);
            }
            run_context ctx(options, w, procs, first, share, fds[1], nullptr, shared_area);
            report r;
            r.scenario = std::string(def.name);
            const int rc = def.run(ctx, r);
            write_all(fds[1], "report " + r.to_wire() + "\n");
            std::fflush(nullptr);
            _exit(rc);
        }
        ::close(fds[1]);
        workers[w].pid = pid;
        workers[w].fd = fds[0];
        first += share;
    }

    // Every worker ends by its own deadlines; this bound only guards against a hung one.
    const uint64_t deadline = now_ns() + uint64_t(options.seconds * 1e9) +
                              3 * uint64_t(options.connect_timeout_ms) * 1'000'000u +
                              60'000'000'000u;
    uint32_t reached[3] = {0, 0, 0};
    report merged;
    merged.scenario = std::string(def.name);
    bool first_report = true;
    int rc = 0;
    uint32_t open_pipes = procs;
    while (open_pipes > 0 && now_ns() < deadline) {
        std::vector<pollfd> fds;
        std::vector<worker_pipe*> owners;
        for (auto& w : workers) {
            if (!w.eof) {
                fds.push_back(pollfd{w.fd, POLLIN, 0});
                owners.push_back(&w);
            }
        }
        if (poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) {
            break;
        }
        for (std::size_t k = 0; k < fds.size(); ++k) {
            if (fds[k].revents == 0) {
                continue;
            }
            worker_pipe& w = *owners[k];
            char chunk[65536];
            const ssize_t n = ::read(w.fd, chunk, sizeof chunk);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                w.eof = true;
                --open_pipes;
                continue;
            }
            if (n < 0) {
                continue;
            }
            w.buffer.append(chunk, std::size_t(n));
            // Bounded by the lines in the buffer: each step removes one.
            for (std::size_t nl = w.buffer.find('\n'); nl != std::string::npos;
                 nl = w.buffer.find('\n')) {
                const std::string line = w.buffer.substr(0, nl);
                w.buffer.erase(0, nl + 1);
                for (auto point :
                     {checkpoint::window_start, checkpoint::all_held, checkpoint::window_end}) {
                    if (line == "checkpoint " + std::string(checkpoint_name(point))) {
                        const auto i = std::size_t(point);
                        ++reached[i];
                        if (reached[i] == procs || point == checkpoint::window_end) {
                            probe.on(point);
                        }
                    }
                }
                if (line.rfind("report ", 0) == 0) {
                    report r;
                    std::string error;
                    if (!report::from_wire(std::string_view(line).substr(7), r, error)) {
                        std::fprintf(stderr, "ringcast-bench: %s\n", error.c_str());
                        rc = 1;
                        continue;
                    }
                    w.got_report = true;
                    if (first_report) {
                        merged.metrics = r.metrics;
                        merged.hist = r.hist;
                        first_report = false;
                    } else {
                        merged.merge(r);
                    }
                }
            }
        }
    }
    for (auto& w : workers) {
        if (!w.eof) {
            kill(w.pid, SIGKILL);
        }
        int status = 0;
        waitpid(w.pid, &status, 0);
        if (!w.got_report) {
            std::fprintf(stderr, "ringcast-bench: worker %d sent no report\n", int(w.pid));
            rc = 1;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && rc == 0) {
            rc = WEXITSTATUS(status);
        }
        ::close(w.fd);
    }
    merged.set("procs", double(procs));
    finish_and_print(merged, probe);
    return rc;
}

} // namespace ringcast::bench
