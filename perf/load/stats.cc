// See stats.h. Everything here runs at setup, at phase boundaries or once a second.
#include "stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string_view>

namespace ringcast::bench {

uint64_t now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

void latency_histogram::merge(const latency_histogram& other) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i) {
        _buckets[i] += other._buckets[i];
    }
    _count += other._count;
    _sum += other._sum;
    if (other._max > _max) {
        _max = other._max;
    }
}

void latency_histogram::add_bucket(std::size_t index, uint64_t count) noexcept {
    if (index >= bucket_count || count == 0) {
        return;
    }
    _buckets[index] += count;
    _count += count;
    const uint64_t upper = upper_bound_of(index);
    _sum += upper * count;
    if (upper > _max) {
        _max = upper;
    }
}

void latency_histogram::reset() noexcept {
    _buckets.fill(0);
    _count = 0;
    _sum = 0;
    _max = 0;
}

uint64_t latency_histogram::upper_bound_of(std::size_t index) noexcept {
    if (index < sub_count) {
        return index;
    }
    const std::size_t group = index / sub_count; // = exponent - sub_bits + 1
    const std::size_t sub = index % sub_count;
    const unsigned shift = unsigned(group - 1);
    const uint64_t lower = uint64_t(sub_count + sub) << shift;
    return lower + ((uint64_t(1) << shift) - 1);
}

uint64_t latency_histogram::percentile(double q) const noexcept {
    if (_count == 0) {
        return 0;
    }
    if (q >= 1.0) {
        return _max;
    }
    uint64_t target = uint64_t(q * double(_count));
    if (target < 1) {
        target = 1;
    }
    uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        seen += _buckets[i];
        if (seen >= target) {
            const uint64_t upper = upper_bound_of(i);
            return upper < _max ? upper : _max;
        }
    }
    return _max;
}

namespace {

double rusage_seconds(int who) noexcept {
    rusage ru{};
    if (getrusage(who, &ru) != 0) {
        return 0;
    }
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Reads a small /proc file whole; /proc files report size 0, so read until EOF, bounded.
std::string read_small_file(const std::string& path) {
    std::string out;
    FILE* f = std::fopen(path.c_str(), "re");
    if (f == nullptr) {
        return out;
    }
    char chunk[4096];
    // 64 chunks = 256 KB: /proc/slabinfo is ~30 KB; anything larger is not what we expect.
    for (int i = 0; i < 64; ++i) {
        const std::size_t n = std::fread(chunk, 1, sizeof chunk, f);
        out.append(chunk, n);
        if (n < sizeof chunk) {
            break;
        }
    }
    std::fclose(f);
    return out;
}

// Value after "key" on the line that starts with it ("VmRSS:\t  1234 kB" → 1234).
long field_after(std::string_view text, std::string_view key) noexcept {
    std::size_t pos = 0;
    while (pos < text.size()) {
        const std::size_t eol = text.find('\n', pos);
        const std::string_view line =
            text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
        if (line.substr(0, key.size()) == key) {
            std::string rest(line.substr(key.size()));
            return std::strtol(rest.c_str(), nullptr, 10);
        }
        if (eol == std::string_view::npos) {
            break;
        }
        pos = eol + 1;
    }
    return -1;
}

// "TCP: inuse 5 orphan 0 tw 0 alloc 6 mem 1" → the number after `word` on the TCP line.
long sockstat_tcp(std::string_view text, std::string_view word) noexcept {
    const std::size_t line = text.find("\nTCP:");
    if (line == std::string_view::npos) {
        return -1;
    }
    const std::size_t eol = text.find('\n', line + 1);
    const std::string_view tcp = text.substr(line + 1, eol - line - 1);
    const std::string needle = " " + std::string(word) + " ";
    const std::size_t at = tcp.find(needle);
    if (at == std::string_view::npos) {
        return -1;
    }
    std::string rest(tcp.substr(at + needle.size()));
    return std::strtol(rest.c_str(), nullptr, 10);
}

// Bytes held by the slab caches a TCP socket allocates (docs/architecture.md "Memory per connection": TCP 2368 B,
// sock_inode_cache 832 B, plus filp/dentry which are shared with everything else and so
// left out). /proc/slabinfo is root-only; -1 otherwise.
long slab_tcp_bytes(std::string_view text) noexcept {
    long total = 0;
    bool found = false;
    std::size_t pos = 0;
    for (int lines = 0; lines < 4096 && pos < text.size(); ++lines) {
        const std::size_t eol = text.find('\n', pos);
        const std::string line(
            text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos));
        char name[64];
        long active = 0;
        long objs = 0;
        long size = 0;
        if (std::sscanf(line.c_str(), "%63s %ld %ld %ld", name, &active, &objs, &size) == 4) {
            const std::string_view n(name);
            if (n == "TCP" || n == "sock_inode_cache" || n == "request_sock_TCP") {
                total += active * size;
                found = true;
            }
        }
        if (eol == std::string_view::npos) {
            break;
        }
        pos = eol + 1;
    }
    return found ? total : -1;
}

} // namespace

double process_cpu_seconds(int pid) {
    const std::string stat = read_small_file("/proc/" + std::to_string(pid) + "/stat");
    // The command name may contain spaces and ')' — fields restart after the last ')'.
    const std::size_t paren = stat.rfind(')');
    if (paren == std::string::npos) {
        return -1;
    }
    // After ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
    // cmajflt utime(14) stime(15).
    unsigned long utime = 0;
    unsigned long stime = 0;
    const int got =
        std::sscanf(stat.c_str() + paren + 1,
                    " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    if (got != 2) {
        return -1;
    }
    const long ticks = sysconf(_SC_CLK_TCK);
    return double(utime + stime) / double(ticks > 0 ? ticks : 100);
}

double self_cpu_seconds() noexcept {
    return rusage_seconds(RUSAGE_SELF);
}
double children_cpu_seconds() noexcept {
    return rusage_seconds(RUSAGE_CHILDREN);
}

double host_busy_seconds() {
    const std::string stat = read_small_file("/proc/stat");
    unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                       steal = 0;
    if (std::sscanf(stat.c_str(), "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice,
                    &system, &idle, &iowait, &irq, &softirq, &steal) != 8) {
        return -1;
    }
    const long ticks = sysconf(_SC_CLK_TCK);
    return double(user + nice + system + irq + softirq + steal) / double(ticks > 0 ? ticks : 100);
}

bool process_exists(int pid) noexcept {
    return pid > 0 && access(("/proc/" + std::to_string(pid)).c_str(), F_OK) == 0;
}

server_sample sample_server(int pid) {
    server_sample s;
    s.taken_ns = now_ns();
    if (pid > 0) {
        const std::string base = "/proc/" + std::to_string(pid);
        s.cpu_seconds = process_cpu_seconds(pid);
        s.vm_rss_kb = field_after(read_small_file(base + "/status"), "VmRSS:");
        const std::string rollup = read_small_file(base + "/smaps_rollup");
        s.smaps_rss_kb = field_after(rollup, "Rss:");
        s.smaps_pss_kb = field_after(rollup, "Pss:");
        s.smaps_anon_kb = field_after(rollup, "Anonymous:");
    }
    const std::string sockstat = "\n" + read_small_file("/proc/net/sockstat");
    s.sockstat_tcp_inuse = sockstat_tcp(sockstat, "inuse");
    s.sockstat_tcp_mem_pages = sockstat_tcp(sockstat, "mem");
    s.slab_kb = field_after(read_small_file("/proc/meminfo"), "Slab:");
    s.slab_tcp_bytes = slab_tcp_bytes(read_small_file("/proc/slabinfo"));
    s.host_busy_seconds = host_busy_seconds();
    return s;
}

} // namespace ringcast::bench
