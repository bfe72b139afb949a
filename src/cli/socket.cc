// tcp_stream: non-blocking socket + poll(), so every wait has a deadline and a signal
// (SIGINT, installed without SA_RESTART) ends a wait early. Contracts in socket.h.
#include "socket.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace ringcast::cli {

namespace {

/// Milliseconds left until `until` for poll(): -1 for never, at least 0.
int poll_timeout(deadline until) {
    if (until == deadline::max()) {
        return -1;
    }
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(until - clock::now()).count();
    return int(std::clamp<long long>(left, 0, 24LL * 3600 * 1000));
}

/// Waits for `events` on `fd`: 1 ready, 0 deadline passed, -1 with errno (EINTR included).
int wait_for(int fd, short events, deadline until) {
    pollfd p{.fd = fd, .events = events, .revents = 0};
    return ::poll(&p, 1, poll_timeout(until));
}

std::string errno_text(int err) {
    return std::strerror(err);
}

} // namespace

tcp_stream& tcp_stream::operator=(tcp_stream&& other) noexcept {
    if (this != &other) {
        if (_fd >= 0) {
            ::close(_fd);
        }
        _fd = other._fd;
        other._fd = -1;
    }
    return *this;
}

tcp_stream::~tcp_stream() {
    if (_fd >= 0) {
        ::close(_fd);
    }
}

result<tcp_stream, std::string> tcp_stream::connect(const std::string& host, uint16_t port,
                                                    deadline until) {
    const std::string where = (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                              ":" + std::to_string(port);
    until = std::min(until, clock::now() + connect_timeout);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
        rc != 0) {
        return unexpected{"cannot resolve " + host + ": " + ::gai_strerror(rc)};
    }
    const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
    std::string why = "no address";
    for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                                ai->ai_protocol);
        if (fd < 0) {
            why = errno_text(errno);
            continue;
        }
        tcp_stream s(fd);
        int err = 0;
        if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            if (err == EINPROGRESS) {
                int ready = 0;
                do { // a signal while connecting is not a reason to give up
                    ready = wait_for(fd, POLLOUT, until);
                } while (ready < 0 && errno == EINTR && clock::now() < until);
                socklen_t len = sizeof err;
                if (ready == 0) {
                    err = ETIMEDOUT;
                } else if (ready < 0) {
                    err = errno;
                } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
                    err = errno;
                }
            }
        }
        if (err == 0) {
            const int one = 1; // frames and requests are written whole: send them at once
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return s;
        }
        why = errno_text(err);
    }
    return unexpected{"cannot connect to " + where + ": " + why};
}

result<void, std::string> tcp_stream::send_all(std::span<const std::byte> bytes,
                                               deadline until) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes = bytes.subspan(std::size_t(n));
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno != EAGAIN) {
            return unexpected{"sending failed: " + errno_text(errno)};
        }
        const int ready = wait_for(_fd, POLLOUT, until);
        if (ready == 0) {
            return unexpected{std::string("sending timed out")};
        }
        if (ready < 0 && errno != EINTR) {
            return unexpected{"sending failed: " + errno_text(errno)};
        }
    }
    return {};
}

receive_result tcp_stream::receive(std::span<std::byte> buf, deadline until) {
    using st = receive_result::status;
    for (;;) {
        const ssize_t n = ::recv(_fd, buf.data(), buf.size(), 0);
        if (n > 0) {
            return {st::data, std::size_t(n), {}};
        }
        if (n == 0) {
            return {st::eof, 0, {}};
        }
        if (errno == EINTR) {
            return {st::interrupted, 0, {}};
        }
        if (errno != EAGAIN) {
            return {st::error, 0, errno_text(errno)};
        }
        const int ready = wait_for(_fd, POLLIN, until);
        if (ready == 0) {
            return {st::timeout, 0, {}};
        }
        if (ready < 0) {
            return errno == EINTR ? receive_result{st::interrupted, 0, {}}
                                  : receive_result{st::error, 0, errno_text(errno)};
        }
    }
}

} // namespace ringcast::cli
