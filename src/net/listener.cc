// Listening sockets: one per shard on the same address with SO_REUSEPORT (docs/architecture.md "Listeners").
#include <ringcast/net.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace ringcast::net {

namespace {
/// Listen backlog; the kernel caps it at net.core.somaxconn (4096 by default since 5.4).
constexpr int listen_backlog = 65535;

std::string errno_text(int err) {
    return std::strerror(err);
}
} // namespace

result<endpoint, std::string> parse_endpoint(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return unexpected{"listen address '" + std::string(text) +
                          "' has no port; use HOST:PORT, e.g. 127.0.0.1:8080"};
    }
    std::string_view host = text.substr(0, colon);
    const std::string_view port_text = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    unsigned port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
        return unexpected{"listen port '" + std::string(port_text) + "' in '" + std::string(text) +
                          "' is not a number from 0 to 65535"};
    }
    endpoint where{host.empty() ? std::string("0.0.0.0") : std::string(host),
                   static_cast<uint16_t>(port)};
    // Resolved here as well as at bind, so --check-config refuses what a start would.
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    if (const int rc = getaddrinfo(where.host.c_str(), nullptr, &hints, &found); rc != 0) {
        return unexpected{"cannot resolve listen host '" + where.host + "' in '" +
                          std::string(text) + "': " + gai_strerror(rc)};
    }
    freeaddrinfo(found);
    return where;
}

uint16_t local_port(int fd) noexcept {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        return 0;
    }
    if (addr.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    }
    return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

namespace {
result<int, std::string> open_one(const addrinfo& ai, const std::string& where) {
    const int fd = socket(ai.ai_family, ai.ai_socktype | SOCK_CLOEXEC, ai.ai_protocol);
    if (fd < 0) {
        return unexpected{"socket() for " + where + " failed: " + errno_text(errno)};
    }
    const int one = 1;
    // TCP_NODELAY on the listener is inherited by every accepted socket; ringcast does its
    // own coalescing, so Nagle would only add latency.
    const bool ok = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
                    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0 &&
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
    if (!ok) {
        const int err = errno;
        ::close(fd);
        return unexpected{"setting socket options on " + where + " failed: " + errno_text(err)};
    }
    if (bind(fd, ai.ai_addr, ai.ai_addrlen) != 0) {
        const int err = errno;
        ::close(fd);
        return unexpected{"cannot listen on " + where + ": bind: " + errno_text(err) +
                          (err == EADDRINUSE ? " (another process holds the port without "
                                               "SO_REUSEPORT, or another ringcastd runs)"
                                             : "")};
    }
    if (listen(fd, listen_backlog) != 0) {
        const int err = errno;
        ::close(fd);
        return unexpected{"listen() on " + where + " failed: " + errno_text(err)};
    }
    return fd;
}
} // namespace

result<std::vector<int>, std::string> open_listeners(const endpoint& where, std::size_t count) {
    std::vector<int> fds;
    uint16_t port = where.port;
    for (std::size_t i = 0; i < count; ++i) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE;
        addrinfo* found = nullptr;
        const std::string port_text = std::to_string(port);
        const std::string name = where.host + ":" + std::to_string(where.port);
        if (const int rc = getaddrinfo(where.host.c_str(), port_text.c_str(), &hints, &found);
            rc != 0) {
            for (int fd : fds) {
                ::close(fd);
            }
            return unexpected{"cannot resolve listen host '" + where.host +
                              "': " + gai_strerror(rc)};
        }
        auto fd = open_one(*found, name);
        freeaddrinfo(found);
        if (!fd) {
            for (int open_fd : fds) {
                ::close(open_fd);
            }
            return unexpected{fd.error()};
        }
        fds.push_back(*fd);
        // With port 0 the first socket picks the port; the others join it.
        port = local_port(*fd);
    }
    return fds;
}

} // namespace ringcast::net
