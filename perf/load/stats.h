// ringcast-bench stats — what the load generator measures, and how cheaply.
//
// latency_histogram: log-linear buckets over nanoseconds (HDR-style: each power of two is
// split into 32 linear sub-buckets, so any recorded value is reported within ~3 %), fixed
// size, no allocation, O(1) record, mergeable across worker processes. Percentiles walk the
// buckets once.
//
// The probes read what the kernel already publishes: getrusage() for the bench's own CPU,
// /proc/PID/stat for the server's CPU, /proc/PID/status and smaps_rollup for its memory,
// /proc/net/sockstat and /proc/meminfo for kernel socket and slab memory. They run at
// setup, at phase boundaries and once a second — never per message.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace ringcast::bench {

/// Monotonic clock in nanoseconds (vDSO, ~20 ns).
uint64_t now_ns() noexcept;

class latency_histogram {
public:
    /// 32 linear sub-buckets per power of two: relative error at most 1/32 ≈ 3 %.
    static constexpr unsigned sub_bits = 5;
    static constexpr unsigned sub_count = 1u << sub_bits;
    /// Values below sub_count are exact; 59 more powers of two cover all of uint64_t.
    static constexpr std::size_t bucket_count = (64 - sub_bits + 1) * sub_count;

    void record(uint64_t value_ns) noexcept {
        ++_buckets[index_of(value_ns)];
        ++_count;
        _sum += value_ns;
        if (value_ns > _max) {
            _max = value_ns;
        }
    }
    void merge(const latency_histogram& other) noexcept;
    void add_bucket(std::size_t index, uint64_t count) noexcept;
    void reset() noexcept;
    /// Overrides the maximum (a worker's exact max after merging its buckets).
    void set_max(uint64_t value_ns) noexcept { _max = value_ns; }

    uint64_t count() const noexcept { return _count; }
    uint64_t max() const noexcept { return _max; }
    double mean() const noexcept { return _count ? double(_sum) / double(_count) : 0.0; }
    /// Smallest bucket upper bound below which at least `q` (0..1) of the values fall;
    /// exact maximum for q >= 1; 0 when empty.
    uint64_t percentile(double q) const noexcept;
    uint64_t bucket(std::size_t index) const noexcept { return _buckets[index]; }

    static std::size_t index_of(uint64_t v) noexcept {
        if (v < sub_count) {
            return std::size_t(v);
        }
        const unsigned exp = 63u - unsigned(__builtin_clzll(v)); // >= sub_bits
        const unsigned shift = exp - sub_bits;
        return std::size_t(exp - sub_bits + 1) * sub_count +
               std::size_t((v >> shift) & (sub_count - 1));
    }
    /// Largest value that lands in bucket `index`.
    static uint64_t upper_bound_of(std::size_t index) noexcept;

private:
    std::array<uint64_t, bucket_count> _buckets{};
    uint64_t _count = 0;
    uint64_t _sum = 0;
    uint64_t _max = 0;
};

/// CPU seconds (user + system) this process has used so far.
double self_cpu_seconds() noexcept;
/// CPU seconds of reaped children (the parent's view of --procs workers).
double children_cpu_seconds() noexcept;

/// One look at another process (the server) and at kernel-wide socket memory. Fields are
/// -1 when the source could not be read (process gone, file not readable).
struct server_sample {
    uint64_t taken_ns = 0;
    double cpu_seconds = -1;          // /proc/PID/stat utime + stime
    long vm_rss_kb = -1;              // /proc/PID/status VmRSS
    long smaps_rss_kb = -1;           // /proc/PID/smaps_rollup Rss
    long smaps_pss_kb = -1;           // ... Pss
    long smaps_anon_kb = -1;          // ... Anonymous
    long sockstat_tcp_inuse = -1;     // /proc/net/sockstat "TCP: inuse"
    long sockstat_tcp_mem_pages = -1; // /proc/net/sockstat "TCP: ... mem" (pages)
    long slab_kb = -1;                // /proc/meminfo Slab
    long slab_tcp_bytes = -1;         // /proc/slabinfo: TCP + sock_inode_cache objects (root)
    double host_busy_seconds = -1;    // /proc/stat: all CPUs, everything but idle and iowait
};

/// CPU seconds (utime + stime) of process `pid` from /proc/PID/stat; -1 when unreadable.
double process_cpu_seconds(int pid);

/// CPU seconds the whole machine spent busy (all CPUs, from /proc/stat); -1 if unreadable.
/// Busy = user + nice + system + irq + softirq + steal: anything else running on the box
/// (a compiler, another test) shows up as busy time that is neither bench nor server.
double host_busy_seconds();

/// Samples `pid` (0: only the kernel-wide fields). Reads a few small /proc files.
server_sample sample_server(int pid);

/// True when /proc/PID exists.
bool process_exists(int pid) noexcept;

} // namespace ringcast::bench
