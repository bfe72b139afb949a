// Running under systemd (docs/operations.md "systemd"): the notify protocol spoken
// directly — one datagram per state change to the socket $NOTIFY_SOCKET names (sd_notify(3);
// no libsystemd) — and the watchdog's decision, which pets only while every shard's loop
// turns.
//
//   start ─► READY=1, STATUS=…            every tick ─► watchdog::check(loop passes)
//   SIGTERM ─► STOPPING=1                              └─ all moved ─► WATCHDOG=1
//                                                      └─ one stuck ─► say which; no pet
//
// Used by the main thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::app {

/// The service manager's notify socket, when there is one.
class notifier {
public:
    /// From the environment: $NOTIFY_SOCKET (a path, or "@name" for an abstract socket);
    /// $WATCHDOG_USEC (and $WATCHDOG_PID, when set, must be this process). Disabled (every
    /// call a no-op) without $NOTIFY_SOCKET. The variables are left in place.
    static notifier from_environment();
    /// For `socket_path` directly (tests); `watchdog_usec` 0: no watchdog.
    notifier(std::string socket_path, uint64_t watchdog_usec);
    notifier() = default;
    ~notifier();
    notifier(notifier&& other) noexcept;
    notifier& operator=(notifier&& other) noexcept;
    notifier(const notifier&) = delete;
    notifier& operator=(const notifier&) = delete;

    bool enabled() const noexcept { return _fd >= 0; }
    /// How often the manager wants WATCHDOG=1 at the latest (microseconds); 0: never.
    uint64_t watchdog_usec() const noexcept { return _watchdog_usec; }
    /// Sends `state`: newline-separated assignments (e.g. "READY=1\nSTATUS=…"), one
    /// datagram, not blocking. False when it could not be sent (the reason in `error()`).
    bool send(std::string_view state) noexcept;
    /// Why the socket could not be opened or the last send failed; empty when fine.
    const std::string& error() const noexcept { return _error; }

private:
    int _fd = -1;
    uint64_t _watchdog_usec = 0;
    std::string _error;
};

/// The watchdog's decision: pet only while every shard's loop turns.
///
/// Contract: check() compares each shard's loop passes with the previous check's; it says
/// pet when every count moved, else names the shards whose count did not (a shard stuck in
/// a handler, a lock, or a long loop). The first check only records.
class watchdog {
public:
    struct verdict {
        bool pet = false;
        std::vector<unsigned> stuck; ///< shards whose loop did not turn since the last check
    };
    verdict check(const std::vector<uint64_t>& loop_passes);

private:
    std::vector<uint64_t> _last;
};

/// The STATUS= line: "<n> connections, <r> frames/s sent, <s> shards".
std::string status_line(uint32_t connections, double frames_per_s, std::size_t shards);

} // namespace ringcast::app
