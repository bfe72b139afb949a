#include "admission.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

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

namespace {

/// A decimal number 0..max without sign or leading zero (except "0" itself).
std::optional<unsigned> strict_decimal(std::string_view text, unsigned max) noexcept {
    if (text.empty() || text.size() > 10 || (text.size() > 1 && text.front() == '0')) {
        return std::nullopt;
    }
    uint64_t value = 0;
    for (const char ch : text) {
        if (ch < '0' || ch > '9') {
            return std::nullopt;
        }
        value = value * 10 + unsigned(ch - '0');
    }
    if (value > max) {
        return std::nullopt;
    }
    return static_cast<unsigned>(value);
}

std::optional<peer_address> parse_ipv4(std::string_view text) noexcept {
    peer_address a;
    a.family = ip_family::v4;
    for (std::size_t i = 0; i < 4; ++i) {
        const auto dot = text.find('.');
        if ((i < 3) == (dot == std::string_view::npos)) {
            return std::nullopt; // fewer or more than four parts
        }
        const auto part = strict_decimal(text.substr(0, dot), 255);
        if (!part) {
            return std::nullopt;
        }
        a.bytes[i] = static_cast<uint8_t>(*part);
        text = i < 3 ? text.substr(dot + 1) : std::string_view();
    }
    return a;
}

std::optional<peer_address> parse_ipv6(std::string_view text) noexcept {
    // inet_pton wants a NUL-terminated string; the longest IPv6 text form (a full address
    // with a trailing dotted quad) is 45 characters.
    char buf[INET6_ADDRSTRLEN] = {};
    if (text.empty() || text.size() >= sizeof(buf)) {
        return std::nullopt;
    }
    for (const char ch : text) {
        const bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                        (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.';
        if (!ok) {
            return std::nullopt;
        }
    }
    std::memcpy(buf, text.data(), text.size());
    in6_addr addr{};
    if (inet_pton(AF_INET6, buf, &addr) != 1) {
        return std::nullopt;
    }
    peer_address a;
    a.family = ip_family::v6;
    std::memcpy(a.bytes.data(), addr.s6_addr, 16);
    return a;
}

unsigned width_of(ip_family family) noexcept {
    switch (family) {
    case ip_family::v4:
        return 32;
    case ip_family::v6:
        return 128;
    case ip_family::unknown:
        break;
    }
    return 0;
}

/// True when the first `bits` bits of a and b are equal.
bool same_leading_bits(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b,
                       unsigned bits) noexcept {
    const unsigned whole = bits / 8;
    if (!std::equal(a.begin(), a.begin() + whole, b.begin())) {
        return false;
    }
    const unsigned rest = bits % 8;
    if (rest == 0) {
        return true;
    }
    const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

} // namespace

std::optional<peer_address> parse_ip_address(std::string_view text) noexcept {
    if (text.find(':') != std::string_view::npos) {
        return parse_ipv6(text);
    }
    return parse_ipv4(text);
}

bool address_prefix::contains(const peer_address& a) const noexcept {
    if (a.family != network.family || a.family == ip_family::unknown) {
        return false;
    }
    return same_leading_bits(a.bytes, network.bytes, std::min<unsigned>(bits, width_of(a.family)));
}

std::string address_prefix::text() const {
    return network.text() + "/" + std::to_string(bits);
}

result<address_prefix, std::string> parse_address_prefix(std::string_view text) {
    const auto slash = text.find('/');
    const auto address = parse_ip_address(text.substr(0, slash));
    if (!address) {
        return unexpected{"'" + std::string(text) +
                          "' is not an IPv4 or IPv6 network: ADDRESS/BITS (10.0.0.0/8, "
                          "2001:db8::/32) or a single numeric address"};
    }
    const unsigned width = width_of(address->family);
    address_prefix prefix{*address, static_cast<uint8_t>(width)};
    if (slash != std::string_view::npos) {
        const auto bits = strict_decimal(text.substr(slash + 1), width);
        if (!bits) {
            return unexpected{"'" + std::string(text) + "': the prefix length after '/' must be "
                              "a whole number from 0 to " + std::to_string(width)};
        }
        prefix.bits = static_cast<uint8_t>(*bits);
    }
    peer_address zeroed = *address;
    for (unsigned bit = prefix.bits; bit < width; ++bit) {
        zeroed.bytes[bit / 8] = static_cast<uint8_t>(zeroed.bytes[bit / 8] & ~(0x80u >> (bit % 8)));
    }
    if (zeroed.bytes != address->bytes) {
        return unexpected{"'" + std::string(text) + "' has bits set past its prefix length; "
                          "write the network as " + address_prefix{zeroed, prefix.bits}.text()};
    }
    return prefix;
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
