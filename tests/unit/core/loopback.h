// Shared by the tests that run a real shard (shard_test.cc, outbound_test.cc): loopback
// sockets the test thread drives, and a journal of what the shard's handler saw, in order.
// The only clock is hang_guard, which fails a test instead of blocking the suite.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace ringcast::testing {

inline constexpr auto hang_guard = std::chrono::seconds(20);

/// A loopback TCP socket bound to a free port, not listening: a SYN to it is reset.
inline int bind_loopback(uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    return fd;
}

/// A loopback listening socket on a free port, with `backlog`.
inline int listen_loopback(uint16_t& port, int backlog = 64) {
    const int fd = bind_loopback(port);
    REQUIRE(::listen(fd, backlog) == 0);
    return fd;
}

inline int connect_loopback(uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    return fd;
}

/// What the handler saw, in order, shared with the test thread.
struct journal {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<std::string> events;

    void add(std::string e) {
        {
            std::lock_guard lock(mutex);
            events.push_back(std::move(e));
        }
        changed.notify_all();
    }
    /// Waits until `e` has been recorded `n` times; false after the hang guard.
    bool wait_for(const std::string& e, long n = 1) {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, hang_guard,
                                [&] { return std::count(events.begin(), events.end(), e) >= n; });
    }
    long count(const std::string& e) {
        std::lock_guard lock(mutex);
        return std::count(events.begin(), events.end(), e);
    }
    std::vector<std::string> snapshot() {
        std::lock_guard lock(mutex);
        return events;
    }
};

/// True when the other side closed `fd` (EOF or reset) within the hang guard.
inline bool closed_by_peer(int fd) {
    timeval tv{static_cast<time_t>(hang_guard.count()), 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char byte;
    const ssize_t n = ::recv(fd, &byte, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

} // namespace ringcast::testing
