#include "admission.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace ringcast {

std::string peer_address::text() const {
    char buf[INET6_ADDRSTRLEN] = {};
    switch (family) {
    case ip_family::v4:
        inet_ntop(AF_INET, bytes.data(), buf, sizeof(buf));
        return buf;
    case ip_family::v6:
        inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
        return buf;
    case ip_family::unknown:
        break;
    }
    return "(unknown address)";
}

namespace core {

peer_address to_peer_address(const sockaddr_storage& addr, socklen_t len) noexcept {
    peer_address peer;
    if (addr.ss_family == AF_INET && len >= socklen_t(sizeof(sockaddr_in))) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
        peer.family = ip_family::v4;
        peer.port = ntohs(in.sin_port);
        std::memcpy(peer.bytes.data(), &in.sin_addr, 4);
    } else if (addr.ss_family == AF_INET6 && len >= socklen_t(sizeof(sockaddr_in6))) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
        peer.port = ntohs(in6.sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
            peer.family = ip_family::v4;
            std::memcpy(peer.bytes.data(), in6.sin6_addr.s6_addr + 12, 4);
        } else {
            peer.family = ip_family::v6;
            std::memcpy(peer.bytes.data(), in6.sin6_addr.s6_addr, 16);
        }
    }
    return peer;
}

address_key key_of(const peer_address& peer) noexcept {
    address_key key;
    switch (peer.family) {
    case ip_family::v4:
        key.bytes[0] = 4;
        std::copy_n(peer.bytes.begin(), 4, key.bytes.begin() + 1);
        break;
    case ip_family::v6:
        key.bytes[0] = 6;
        std::copy_n(peer.bytes.begin(), 8, key.bytes.begin() + 1); // the /64
        break;
    case ip_family::unknown:
        break; // every unknown peer shares one key: there is nothing to tell them apart by
    }
    return key;
}

std::size_t address_key_hash::operator()(const address_key& k) const noexcept {
    // FNV-1a: 9 bytes, no allocation; the table is not keyed by anything an attacker can
    // choose freely beyond its own addresses, which it has few of.
    uint64_t h = 14695981039346656037ull;
    for (const uint8_t b : k.bytes) {
        h ^= b;
        h *= 1099511628211ull;
    }
    return static_cast<std::size_t>(h);
}

address_limits per_shard(const per_address_limits& process_wide, unsigned shards) noexcept {
    const unsigned n = std::max(shards, 1u);
    auto spread = [n](uint32_t v) { return v == 0 ? 0 : (v + n - 1) / n; };
    return {spread(process_wide.max_connections), spread(process_wide.connect_rate),
            spread(process_wide.connect_burst)};
}

address_table::address_table(address_limits limits, uint32_t capacity)
    : _limits(limits), _capacity(std::max(capacity, 1u)) {
    if (enabled()) {
        _entries.reserve(_capacity);
    }
}

void address_table::refill(entry& e, uint64_t now_ms) const noexcept {
    const uint64_t cap = uint64_t(_limits.connect_burst) * 1000;
    const uint64_t elapsed = now_ms > e.refill_ms ? now_ms - e.refill_ms : 0;
    e.tokens_milli = std::min(cap, e.tokens_milli + elapsed * _limits.connect_rate);
    e.refill_ms = now_ms;
}

bool address_table::bucket_full(const entry& e, uint64_t now_ms) const noexcept {
    if (_limits.connect_rate == 0) {
        return true;
    }
    const uint64_t elapsed = now_ms > e.refill_ms ? now_ms - e.refill_ms : 0;
    return e.tokens_milli + elapsed * _limits.connect_rate >=
           uint64_t(_limits.connect_burst) * 1000;
}

void address_table::link_idle(entry& e) noexcept {
    e.idle = true;
    e.idle_next = nullptr;
    e.idle_prev = _idle_tail;
    if (_idle_tail != nullptr) {
        _idle_tail->idle_next = &e;
    } else {
        _idle_head = &e;
    }
    _idle_tail = &e;
}

void address_table::unlink_idle(entry& e) noexcept {
    (e.idle_prev != nullptr ? e.idle_prev->idle_next : _idle_head) = e.idle_next;
    (e.idle_next != nullptr ? e.idle_next->idle_prev : _idle_tail) = e.idle_prev;
    e.idle_prev = e.idle_next = nullptr;
    e.idle = false;
}

void address_table::erase(entry& e) noexcept {
    if (e.idle) {
        unlink_idle(e);
    }
    const address_key key = e.key; // `e` lives in the node being erased
    _entries.erase(key);
}

void address_table::expire(uint64_t now_ms, unsigned budget) noexcept {
    while (budget-- > 0 && _idle_head != nullptr && bucket_full(*_idle_head, now_ms)) {
        erase(*_idle_head);
    }
}

address_table::admission address_table::admit(const address_key& key, uint64_t now_ms) noexcept {
    if (!enabled()) {
        return {};
    }
    // Two per accept keeps the table shrinking at least as fast as new addresses arrive,
    // for constant work per accept.
    expire(now_ms, 2);
    auto it = _entries.find(key);
    if (it == _entries.end()) {
        if (_entries.size() >= _capacity) {
            // Full: fewer admitted connections than entries (the caller's guarantee), so
            // some entry is idle; the longest idle goes.
            RINGCAST_ASSERT(_idle_head != nullptr);
            if (!bucket_full(*_idle_head, now_ms)) {
                ++_evictions;
            }
            erase(*_idle_head);
        }
        entry fresh;
        fresh.key = key;
        fresh.tokens_milli = uint64_t(_limits.connect_burst) * 1000;
        fresh.refill_ms = now_ms;
        it = _entries.emplace(key, fresh).first;
        link_idle(it->second);
    }
    entry& e = it->second;
    refill(e, now_ms);
    if (_limits.max_connections != 0 && e.connections >= _limits.max_connections) {
        return {address_verdict::over_cap, nullptr};
    }
    if (_limits.connect_rate != 0) {
        if (e.tokens_milli < 1000) {
            return {address_verdict::over_rate, nullptr};
        }
        e.tokens_milli -= 1000;
    }
    if (e.idle) {
        unlink_idle(e);
    }
    ++e.connections;
    return {address_verdict::admitted, &e};
}

void address_table::release(void* handle, uint64_t now_ms) noexcept {
    auto& e = *static_cast<entry*>(handle);
    RINGCAST_ASSERT(e.connections > 0);
    if (--e.connections == 0) {
        link_idle(e);
        if (bucket_full(e, now_ms)) {
            // Nothing left to remember (no connections, no rate debt).
            erase(e);
        }
    }
}

} // namespace core

} // namespace ringcast
