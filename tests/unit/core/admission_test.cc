// Admission at accept (src/core/admission.h): peer addresses as accept reports them, the
// loopback predicate the API trusts, per-address grouping and the bounded table.
#include "admission.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

using namespace ringcast;
using core::address_table;
using core::address_verdict;

namespace {

peer_address v4(const char* text, uint16_t port = 4242) {
    sockaddr_storage ss{};
    auto& in = reinterpret_cast<sockaddr_in&>(ss);
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    REQUIRE(inet_pton(AF_INET, text, &in.sin_addr) == 1);
    return core::to_peer_address(ss, sizeof(sockaddr_in));
}

peer_address v6(const char* text, uint16_t port = 4242) {
    sockaddr_storage ss{};
    auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    REQUIRE(inet_pton(AF_INET6, text, &in6.sin6_addr) == 1);
    return core::to_peer_address(ss, sizeof(sockaddr_in6));
}

core::address_key key(const peer_address& p) {
    return core::key_of(p);
}

} // namespace

TEST_CASE("accept's sockaddr becomes a peer_address; IPv4-mapped IPv6 is IPv4",
          "[core][admission]") {
    const peer_address a = v4("192.0.2.7", 5555);
    CHECK(a.family == ip_family::v4);
    CHECK(a.port == 5555);
    CHECK(a.text() == "192.0.2.7");
    const peer_address mapped = v6("::ffff:192.0.2.7");
    CHECK(mapped.family == ip_family::v4);
    CHECK(mapped.text() == "192.0.2.7");
    CHECK(key(mapped) == key(a));
    const peer_address b = v6("2001:db8::1", 80);
    CHECK(b.family == ip_family::v6);
    CHECK(b.port == 80);
    CHECK(b.text() == "2001:db8::1");
    sockaddr_storage unix_like{};
    unix_like.ss_family = AF_UNIX;
    CHECK(core::to_peer_address(unix_like, sizeof(unix_like)).family == ip_family::unknown);
    sockaddr_storage short_len{};
    short_len.ss_family = AF_INET6;
    CHECK(core::to_peer_address(short_len, 4).family == ip_family::unknown);
}

TEST_CASE("loopback() is 127.0.0.0/8 and ::1, nothing else", "[core][admission]") {
    for (const char* text : {"127.0.0.1", "127.0.0.2", "127.255.255.254", "127.0.0.0"}) {
        INFO(text);
        CHECK(v4(text).loopback());
    }
    for (const char* text : {"10.77.0.1", "128.0.0.1", "126.255.255.255", "0.0.0.0", "192.168.1.1",
                             "255.255.255.255"}) {
        INFO(text);
        CHECK_FALSE(v4(text).loopback());
    }
    CHECK(v6("::1").loopback());
    CHECK(v6("::ffff:127.0.0.1").loopback()); // a dual-stack listener's IPv4 loopback peer
    for (const char* text :
         {"::", "::2", "::ffff:10.0.0.1", "fe80::1", "2001:db8::1", "1::1", "::127.0.0.1"}) {
        INFO(text);
        CHECK_FALSE(v6(text).loopback());
    }
    CHECK_FALSE(peer_address{}.loopback());
}

TEST_CASE("IPv6 peers are grouped by /64, IPv4 peers by address", "[core][admission]") {
    CHECK(key(v6("2001:db8::1")) == key(v6("2001:db8::ffff:1:2:3")));
    CHECK_FALSE(key(v6("2001:db8::1")) == key(v6("2001:db8:0:1::1")));
    CHECK_FALSE(key(v4("192.0.2.1")) == key(v4("192.0.2.2")));
    CHECK(key(v4("192.0.2.1", 1)) == key(v4("192.0.2.1", 2))); // ports do not matter
    // An IPv4 address and an IPv6 /64 that starts with the same bytes stay apart.
    CHECK_FALSE(key(v4("32.1.13.184")) == key(v6("2001:db8::")));
}

TEST_CASE("per_shard divides each limit over the shards, rounding up", "[core][admission]") {
    const auto l = core::per_shard({1024, 100, 1024}, 3);
    CHECK(l.max_connections == 342);
    CHECK(l.connect_rate == 34);
    CHECK(l.connect_burst == 342);
    const auto off = core::per_shard({0, 0, 7}, 4);
    CHECK(off.max_connections == 0);
    CHECK(off.connect_rate == 0);
    CHECK(core::per_shard({1, 1, 1}, 64).max_connections == 1); // never rounds a limit to off
}

TEST_CASE("address_table caps connections per address and frees on release", "[core][admission]") {
    address_table t({2, 0, 1}, 16);
    const auto a = key(v4("192.0.2.1"));
    const auto b = key(v4("192.0.2.2"));
    auto first = t.admit(a, 0);
    auto second = t.admit(a, 0);
    CHECK(first.verdict == address_verdict::admitted);
    CHECK(second.verdict == address_verdict::admitted);
    CHECK(t.admit(a, 0).verdict == address_verdict::over_cap);
    CHECK(t.admit(b, 0).verdict == address_verdict::admitted);
    t.release(first.entry, 0);
    CHECK(t.admit(a, 0).verdict == address_verdict::admitted);
}

TEST_CASE("address_table spends a token per connect and refills at the rate", "[core][admission]") {
    address_table t({0, 10, 3}, 16); // 10/s: one token per 100 ms
    const auto a = key(v6("2001:db8::1"));
    for (int i = 0; i < 3; ++i) {
        auto r = t.admit(a, 1000);
        REQUIRE(r.verdict == address_verdict::admitted);
        t.release(r.entry, 1000);
    }
    CHECK(t.admit(a, 1000).verdict == address_verdict::over_rate);
    CHECK(t.admit(a, 1099).verdict == address_verdict::over_rate);
    CHECK(t.admit(a, 1100).verdict == address_verdict::admitted);
    CHECK(t.admit(a, 1100).verdict == address_verdict::over_rate);
    // Refused attempts do not spend tokens: after 300 ms there are 3 again, not fewer.
    CHECK(t.admit(a, 1400).verdict == address_verdict::admitted);
    CHECK(t.admit(a, 1400).verdict == address_verdict::admitted);
    CHECK(t.admit(a, 1400).verdict == address_verdict::admitted);
    CHECK(t.admit(a, 1400).verdict == address_verdict::over_rate);
}

TEST_CASE("address_table with both limits off tracks nothing", "[core][admission]") {
    address_table t({0, 0, 5}, 4);
    CHECK_FALSE(t.enabled());
    for (int i = 0; i < 100; ++i) {
        CHECK(t.admit(key(v4("192.0.2.1")), 0).verdict == address_verdict::untracked);
    }
    CHECK(t.size() == 0);
}

TEST_CASE("address_table stays within its capacity and evicts the longest idle",
          "[core][admission]") {
    constexpr uint32_t capacity = 8;
    address_table t({4, 1, 2}, capacity); // 1/s, burst 2: a bucket refills in 2 s
    std::vector<void*> held;
    // Each address connects and leaves at once: idle entries whose buckets still refill.
    for (uint32_t i = 0; i < 3 * capacity; ++i) {
        const std::string text = "198.51.100." + std::to_string(i + 1);
        auto r = t.admit(key(v4(text.c_str())), 10);
        REQUIRE(r.verdict == address_verdict::admitted);
        t.release(r.entry, 10);
        CHECK(t.size() <= capacity);
    }
    CHECK(t.size() == capacity);
    CHECK(t.evictions() == 2 * capacity);
    // The first addresses were evicted (their history lost): a fresh bucket again.
    auto again = t.admit(key(v4("198.51.100.1")), 10);
    CHECK(again.verdict == address_verdict::admitted);
    t.release(again.entry, 10);
    // Once buckets are full again, entries go without counting as evictions.
    const uint64_t before = t.evictions();
    auto later = t.admit(key(v4("203.0.113.1")), 10 + 2000);
    REQUIRE(later.verdict == address_verdict::admitted);
    CHECK(t.evictions() == before);
    CHECK(t.size() < capacity);
    t.release(later.entry, 10 + 2000);
}

TEST_CASE("address_table never evicts an address that has connections", "[core][admission]") {
    constexpr uint32_t capacity = 4;
    address_table t({8, 0, 1}, capacity);
    std::vector<void*> held;
    for (uint32_t i = 0; i < capacity - 1; ++i) {
        const std::string text = "192.0.2." + std::to_string(i + 1);
        auto r = t.admit(key(v4(text.c_str())), 0);
        REQUIRE(r.verdict == address_verdict::admitted);
        held.push_back(r.entry);
    }
    // With no rate limit an address without connections holds nothing and goes at once,
    // so new addresses always fit beside the ones with connections.
    for (int i = 0; i < 50; ++i) {
        const std::string text = "203.0.113." + std::to_string(i + 1);
        auto r = t.admit(key(v4(text.c_str())), 0);
        REQUIRE(r.verdict == address_verdict::admitted);
        t.release(r.entry, 0);
    }
    CHECK(t.size() == capacity - 1);
    // The held addresses kept their counts.
    for (int i = 0; i < 7; ++i) {
        CHECK(t.admit(key(v4("192.0.2.1")), 0).verdict == address_verdict::admitted);
    }
    CHECK(t.admit(key(v4("192.0.2.1")), 0).verdict == address_verdict::over_cap);
}

TEST_CASE("parse_ip_address reads numeric IPv4 and IPv6 exactly as written", "[core][admission]") {
    const auto a = parse_ip_address("192.0.2.7");
    REQUIRE(a);
    CHECK(a->family == ip_family::v4);
    CHECK(a->text() == "192.0.2.7");
    CHECK(a->port == 0);
    const auto b = parse_ip_address("2001:DB8::1");
    REQUIRE(b);
    CHECK(b->family == ip_family::v6);
    CHECK(b->text() == "2001:db8::1");
    const auto mapped = parse_ip_address("::ffff:192.0.2.7");
    REQUIRE(mapped);
    CHECK(mapped->family == ip_family::v6); // as written; accept's rule is for peers
    for (const char* text : {"", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.256", "127.1",
                             " 1.2.3.4", "1.2.3.4 ", "+1.2.3.4", "1.2.3.-4", "localhost",
                             "[::1]", "fe80::1%eth0", "1::2::3", "12345::", ":::",
                             "::1/128", "1.2.3.4/32", "0x7f.0.0.1"}) {
        INFO("'" << text << "'");
        CHECK_FALSE(parse_ip_address(text).has_value());
    }
}

TEST_CASE("address prefixes: parsing, host bits, and which peers they contain",
          "[core][admission]") {
    const auto net8 = parse_address_prefix("10.0.0.0/8");
    REQUIRE(net8);
    CHECK(net8->bits == 8);
    CHECK(net8->text() == "10.0.0.0/8");
    CHECK(net8->contains(v4("10.255.1.2")));
    CHECK_FALSE(net8->contains(v4("11.0.0.0")));
    CHECK_FALSE(net8->contains(v6("::ffff:9.0.0.1")));
    CHECK(net8->contains(v6("::ffff:10.0.0.1"))); // an accepted mapped peer is IPv4
    CHECK_FALSE(net8->contains(v6("a00::1")));     // same leading bits, other family
    CHECK_FALSE(net8->contains(peer_address{}));

    const auto single = parse_address_prefix("127.0.0.2");
    REQUIRE(single);
    CHECK(single->bits == 32);
    CHECK(single->contains(v4("127.0.0.2")));
    CHECK_FALSE(single->contains(v4("127.0.0.1")));

    const auto odd = parse_address_prefix("192.0.2.128/25");
    REQUIRE(odd);
    CHECK(odd->contains(v4("192.0.2.200")));
    CHECK_FALSE(odd->contains(v4("192.0.2.127")));

    const auto v6net = parse_address_prefix("2001:db8::/33");
    REQUIRE(v6net);
    CHECK(v6net->contains(v6("2001:db8:7fff::1")));
    CHECK_FALSE(v6net->contains(v6("2001:db8:8000::1")));
    CHECK_FALSE(v6net->contains(v4("32.1.13.184")));

    const auto everything = parse_address_prefix("0.0.0.0/0");
    REQUIRE(everything);
    CHECK(everything->contains(v4("203.0.113.9")));
    CHECK_FALSE(everything->contains(v6("::1")));
    CHECK(parse_address_prefix("::/0")->contains(v6("2001:db8::1")));
    CHECK(parse_address_prefix("::1")->bits == 128);

    for (const char* text : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/08",
                             "10.0.0.0/+8", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0.0/8 ",
                             "abc", "1.5", "-1", "10.0.0/8"}) {
        INFO("'" << text << "'");
        CHECK_FALSE(parse_address_prefix(text).has_value());
    }
    const auto host_bits = parse_address_prefix("10.0.0.1/8");
    REQUIRE_FALSE(host_bits.has_value());
    CHECK(host_bits.error().find("write the network as 10.0.0.0/8") != std::string::npos);
    const auto host_bits6 = parse_address_prefix("2001:db8::1/64");
    REQUIRE_FALSE(host_bits6.has_value());
    CHECK(host_bits6.error().find("2001:db8::/64") != std::string::npos);
}
