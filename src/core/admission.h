// Admission at accept: who a connection is (its peer address) and whether this shard takes
// it. Private to src/core; the shard consults it once per accepted connection and once per
// release, never per message.
//
//   accept CQE ──peer address──► address_table::admit ─┬─ admitted ──► listener class check
//                                 (per-address cap,     ├─ over_cap  ──► 429, close
//                                  connect rate)        └─ over_rate ──► 429, close
//
// The per-address table is bounded by the shard's descriptor-table size: an entry exists
// only while its address has connections here or its connect bucket is still refilling,
// and when it is full the longest-idle entry makes room (counted as an eviction).
#pragma once

#include <ringcast/core.h>

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <unordered_map>

namespace ringcast::core {

/// The peer address accept() wrote. An IPv4-mapped IPv6 address (a dual-stack listener's
/// IPv4 peer) comes back as IPv4, so one client is one address whatever the listener.
/// Anything that is neither AF_INET nor AF_INET6 is ip_family::unknown.
peer_address to_peer_address(const sockaddr_storage& addr, socklen_t len) noexcept;

/// What the per-address limits group by: an IPv4 address, or the /64 prefix of an IPv6
/// address (one subscriber line or host gets a /64; counting single IPv6 addresses would
/// let one host take 2^64 of them).
struct address_key {
    std::array<uint8_t, 9> bytes{}; ///< family tag, then 4 (IPv4) or 8 (IPv6 /64) bytes
    friend bool operator==(const address_key&, const address_key&) = default;
};
address_key key_of(const peer_address& peer) noexcept;

struct address_key_hash {
    std::size_t operator()(const address_key& k) const noexcept;
};

/// Limits of one shard: the process-wide flags divided over the shards (⌈N/shards⌉), since
/// SO_REUSEPORT spreads one address's connections over every shard. 0 disables a limit.
struct address_limits {
    uint32_t max_connections = 0; ///< connections at once from one address
    uint32_t connect_rate = 0;    ///< new connections per second from one address...
    uint32_t connect_burst = 0;   ///< ...and the bucket size (connections at once after idling)
};

/// Per-shard figures for `process_wide` spread over `shards` (each rounded up, so a
/// non-zero figure never becomes 0).
address_limits per_shard(const per_address_limits& process_wide, unsigned shards) noexcept;

enum class address_verdict : uint8_t {
    admitted,  ///< counted: release() it when the connection ends
    over_cap,  ///< the address has max_connections here already
    over_rate, ///< the address's connect bucket is empty
    untracked, ///< both limits are off: nothing to count or release
};

/// Connections and connect tokens per address on one shard. Bounded: at most `capacity`
/// entries; callers guarantee fewer than `capacity` admitted connections at once, so when
/// the table is full at least one entry is idle and can be evicted.
class address_table {
public:
    address_table(address_limits limits, uint32_t capacity);
    address_table(const address_table&) = delete;
    address_table& operator=(const address_table&) = delete;

    struct admission {
        address_verdict verdict = address_verdict::untracked;
        /// admitted: the handle release() takes.
        void* entry = nullptr;
    };
    /// One new connection from `key` at `now_ms`: counts it and takes a connect token, or
    /// says which limit refuses it (and changes nothing).
    admission admit(const address_key& key, uint64_t now_ms) noexcept;
    /// The connection admit() counted has ended.
    void release(void* entry, uint64_t now_ms) noexcept;

    bool enabled() const noexcept {
        return _limits.max_connections != 0 || _limits.connect_rate != 0;
    }
    std::size_t size() const noexcept { return _entries.size(); }
    /// Idle entries dropped to make room while their bucket was still refilling (that
    /// address's rate history was lost: it gets a full bucket on its next connect).
    uint64_t evictions() const noexcept { return _evictions; }

private:
    struct entry {
        address_key key;
        uint32_t connections = 0;
        uint64_t tokens_milli = 0; ///< connect tokens × 1000 (per-ms refill of rate/1000)
        uint64_t refill_ms = 0;
        // Entries without connections, oldest first (the eviction order).
        entry* idle_prev = nullptr;
        entry* idle_next = nullptr;
        bool idle = false;
    };

    void refill(entry& e, uint64_t now_ms) const noexcept;
    bool bucket_full(const entry& e, uint64_t now_ms) const noexcept;
    void link_idle(entry& e) noexcept;
    void unlink_idle(entry& e) noexcept;
    void erase(entry& e) noexcept;
    /// Drops idle entries that no longer hold anything (bucket refilled), oldest first, at
    /// most `budget` of them: the table shrinks back while connections keep arriving.
    void expire(uint64_t now_ms, unsigned budget) noexcept;

    address_limits _limits;
    uint32_t _capacity;
    // Node-based: an entry's address is stable, so a connection keeps a pointer to it.
    std::unordered_map<address_key, entry, address_key_hash> _entries;
    entry* _idle_head = nullptr;
    entry* _idle_tail = nullptr;
    uint64_t _evictions = 0;
};

} // namespace ringcast::core
