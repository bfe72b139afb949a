// The systemd notify protocol and the watchdog's decision (service.h).
#include "service.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ringcast::app {

notifier notifier::from_environment() {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (path == nullptr || *path == '\0') {
        return {};
    }
    uint64_t usec = 0;
    if (const char* value = std::getenv("WATCHDOG_USEC"); value != nullptr) {
        const char* pid = std::getenv("WATCHDOG_PID");
        // Meant for this process (or for whoever the manager started, when not said).
        if (pid == nullptr || std::strtoll(pid, nullptr, 10) == static_cast<long long>(getpid())) {
            usec = std::strtoull(value, nullptr, 10);
        }
    }
    return notifier(path, usec);
}

notifier::notifier(std::string socket_path, uint64_t watchdog_usec)
    : _watchdog_usec(watchdog_usec) {
    sockaddr_un addr{};
    if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path) ||
        (socket_path[0] != '/' && socket_path[0] != '@')) {
        _error = "NOTIFY_SOCKET is not an absolute path or an @abstract name";
        return;
    }
    _fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (_fd < 0) {
        _error = std::string("socket: ") + std::strerror(errno);
        return;
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path.size());
    if (socket_path[0] == '@') {
        addr.sun_path[0] = '\0'; // abstract namespace: no terminating NUL counted
    } else {
        ++len; // the path's NUL
    }
    // Connected once: every state is then one send(), and the kernel keeps the address.
    if (connect(_fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
        _error = "connect " + socket_path + ": " + std::strerror(errno);
        close(_fd);
        _fd = -1;
    }
}

notifier::~notifier() {
    if (_fd >= 0) {
        close(_fd);
    }
}

notifier::notifier(notifier&& other) noexcept
    : _fd(other._fd), _watchdog_usec(other._watchdog_usec), _error(std::move(other._error)) {
    other._fd = -1;
}

notifier& notifier::operator=(notifier&& other) noexcept {
    if (this != &other) {
        if (_fd >= 0) {
            close(_fd);
        }
        _fd = other._fd;
        _watchdog_usec = other._watchdog_usec;
        _error = std::move(other._error);
        other._fd = -1;
    }
    return *this;
}

bool notifier::send(std::string_view state) noexcept {
    if (_fd < 0) {
        return false;
    }
    const ssize_t n = ::send(_fd, state.data(), state.size(), MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(state.size())) {
        // EAGAIN: the manager is not reading; a later state says it again.
        _error = std::string("send to NOTIFY_SOCKET: ") + std::strerror(n < 0 ? errno : EMSGSIZE);
        return false;
    }
    _error.clear();
    return true;
}

watchdog::verdict watchdog::check(const std::vector<uint64_t>& loop_passes) {
    verdict v;
    if (_last.size() == loop_passes.size()) {
        for (unsigned i = 0; i < loop_passes.size(); ++i) {
            if (loop_passes[i] == _last[i]) {
                v.stuck.push_back(i);
            }
        }
        v.pet = v.stuck.empty();
    }
    _last = loop_passes;
    return v;
}

std::string status_line(uint32_t connections, double frames_per_s, std::size_t shards) {
    char line[128];
    std::snprintf(line, sizeof(line), "%u connection%s, %.0f frames/s sent, %zu shard%s",
                  connections, connections == 1 ? "" : "s", frames_per_s, shards,
                  shards == 1 ? "" : "s");
    return line;
}

} // namespace ringcast::app
