// Outbound connections (conn_io::connect) of a real shard to loopback listeners the test
// thread opens: what the handler hears and in which order (connected or failed, then
// closed), bytes both ways, a close from either side, refusal, the connect deadline, the
// outbound slots running out and coming back, and a stopping shard with a connect in flight
// or an open outbound connection. The shard is steered through a control connection to its
// own listener, whose lines the handler runs on the shard's thread. Judged by events; the
// only clock is the hang guard. Every case ends with the shard joined, every handle's
// on_closed seen (the handler frees its state there: LeakSanitizer would see a miss) and
// the process holding no descriptor it did not hold before.
#include "loopback.h"

#include <ringcast/core.h>

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

using namespace ringcast;
using testing::connect_loopback;
using testing::journal;
using testing::listen_loopback;

namespace {

/// Descriptors the process has open.
int open_fds() {
    DIR* d = ::opendir("/proc/self/fd");
    REQUIRE(d != nullptr);
    int n = 0;
    while (::readdir(d) != nullptr) {
        ++n;
    }
    ::closedir(d);
    return n;
}

std::string reason(std::error_code e) {
    if (e == std::errc::connection_refused) {
        return "refused";
    }
    if (e == std::errc::timed_out) {
        return "timed_out";
    }
    if (e == std::errc::operation_canceled) {
        return "canceled";
    }
    return e.message();
}

/// The handler's state for one connection: the control connection (accepted) or an
/// outbound one, numbered in the order of the connect commands.
struct peer_state {
    bool control = false;
    unsigned id = 0;
    std::string line; // control: bytes of an unfinished command line
};

/// Control lines:
///   "connect4 PORT TIMEOUT_MS [DELAY_MS]" / "connect6 …": connect to 127.0.0.1 / ::1;
///       journals "connect ok N" or "connect error <reason>"
///   "send N TEXT": sends TEXT on outbound N;  "close N": closes it (after_flush);
///   "timer N": arms its liveness timer 10 ms ahead
/// Outbound events: "connected N <peer>", "failed N <reason>", "data N <bytes>",
/// "timer N", "shutdown N", "closed N". On connecting it sends "hello" at once.
class outbound_handler final : public core::conn_handler {
public:
    outbound_handler(core::conn_io& io, journal& j) : _io(io), _journal(j) {}

    void* on_open(conn_handle, core::listener, core::admission) noexcept override {
        auto* p = new peer_state;
        p->control = true;
        return p;
    }
    void on_data(conn_handle h, void* user, std::span<std::byte> bytes) noexcept override {
        auto* p = static_cast<peer_state*>(user);
        const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        if (!p->control) {
            _journal.add("data " + std::to_string(p->id) + " " + std::string(text));
            return;
        }
        (void)h;
        p->line += text;
        for (std::size_t nl; (nl = p->line.find('\n')) != std::string::npos;) {
            const std::string command = p->line.substr(0, nl);
            p->line.erase(0, nl + 1);
            run(command);
        }
    }
    void on_connect_result(conn_handle h, void* user, std::error_code error) noexcept override {
        auto* p = static_cast<peer_state*>(user);
        if (error) {
            _journal.add("failed " + std::to_string(p->id) + " " + reason(error));
            return;
        }
        const peer_address to = _io.peer(h);
        _journal.add("connected " + std::to_string(p->id) + " " + to.text() + ":" +
                     std::to_string(to.port));
        _io.send(h, core::make_frame(std::string_view("hello")));
    }
    void on_timer(conn_handle, void* user, core::conn_timer) noexcept override {
        _journal.add("timer " + std::to_string(static_cast<peer_state*>(user)->id));
    }
    void on_shutdown(conn_handle h, void* user) noexcept override {
        auto* p = static_cast<peer_state*>(user);
        if (!p->control) {
            _journal.add("shutdown " + std::to_string(p->id));
        }
        _io.close(h, core::close_mode::now);
    }
    bool on_drain(conn_handle, void*) noexcept override { return false; }
    void on_output_budget(conn_handle h, void*) noexcept override {
        _io.close(h, core::close_mode::now);
    }
    void on_closed(conn_handle, void* user) noexcept override {
        std::unique_ptr<peer_state> p(static_cast<peer_state*>(user));
        if (!p->control) {
            _outbound.erase(p->id);
            _journal.add("closed " + std::to_string(p->id));
        }
    }

private:
    void run(const std::string& command) {
        char verb[16] = {};
        unsigned a = 0;
        unsigned b = 0;
        unsigned delay = 0;
        int consumed = 0;
        if (std::sscanf(command.c_str(), "%15s %u %u %u", verb, &a, &b, &delay) < 2) {
            _journal.add("bad command " + command);
            return;
        }
        const std::string_view v(verb);
        if (v == "connect4" || v == "connect6") {
            core::outbound_target to;
            to.address.family = v == "connect4" ? ip_family::v4 : ip_family::v6;
            to.address.port = static_cast<uint16_t>(a);
            if (to.address.family == ip_family::v4) {
                to.address.bytes[0] = 127;
                to.address.bytes[3] = 1;
            } else {
                to.address.bytes[15] = 1;
            }
            to.connect_timeout_ms = b;
            to.delay_ms = delay;
            auto p = std::make_unique<peer_state>();
            p->id = ++_next_id;
            auto h = _io.connect(to, p.get());
            if (!h) {
                _journal.add("connect error " + reason(h.error()));
                return;
            }
            _outbound[p.release()->id] = *h;
            _journal.add("connect ok " + std::to_string(_next_id));
            return;
        }
        auto it = _outbound.find(a);
        if (it == _outbound.end()) {
            _journal.add("no outbound " + std::to_string(a));
            return;
        }
        if (v == "send") {
            std::sscanf(command.c_str(), "%*s %*u %n", &consumed);
            _io.send(it->second, core::make_frame(std::string_view(command).substr(consumed)));
        } else if (v == "close") {
            _io.close(it->second, core::close_mode::after_flush);
        } else if (v == "timer") {
            _io.set_timer(it->second, core::conn_timer::liveness, _io.now_ms() + 10);
        }
    }

    core::conn_io& _io;
    journal& _journal;
    unsigned _next_id = 0;
    std::unordered_map<unsigned, conn_handle> _outbound; // open or connecting, by id
};

/// One shard with a control listener; `outbound_slots` for connect().
struct running_shard {
    journal events;
    core::stop_token stop;
    core::shard_group_ptr group;
    uint16_t control_port = 0;
    int control = -1;

    explicit running_shard(uint32_t outbound_slots = 16) {
        core::runtime_config config;
        config.max_connections_per_shard = 16;
        config.outbound_slots = outbound_slots;
        config.listeners.push_back({core::listener::main, core::listener_slots::capped, 0,
                                    {listen_loopback(control_port)}});
        auto started = core::start_shards(
            config,
            [this](core::conn_io& io) { return std::make_unique<outbound_handler>(io, events); },
            stop);
        REQUIRE(started);
        group = std::move(*started);
        control = connect_loopback(control_port);
    }
    /// Runs one control line on the shard's thread.
    void command(const std::string& line) {
        const std::string text = line + "\n";
        REQUIRE(::send(control, text.data(), text.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(text.size()));
    }
    core::shard_counters stop_and_join() {
        // A flag only: pairs with the relaxed load in shard::run (stop_token).
        stop.requested.store(true, std::memory_order_relaxed);
        auto counters = core::wait_shards(std::move(group));
        ::close(control);
        return counters.at(0);
    }
    ~running_shard() {
        if (group) {
            stop_and_join();
        }
    }
};

/// Accepts the connection waiting on `listener` (within the hang guard).
int accept_one(int listener) {
    timeval tv{static_cast<time_t>(testing::hang_guard.count()), 0};
    ::setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(fd >= 0);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/// Reads exactly `n` bytes from `fd` (within the hang guard per read).
std::string read_exactly(int fd, std::size_t n) {
    std::string out;
    char buf[256];
    while (out.size() < n) {
        const ssize_t got = ::recv(fd, buf, std::min(sizeof(buf), n - out.size()), 0);
        if (got <= 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(got));
    }
    return out;
}

/// A port where nothing listens: bound, so nobody else takes it while the test runs, but
/// not listening, so a SYN to it is answered with a reset.
int closed_port(uint16_t& port) {
    return testing::bind_loopback(port);
}

/// A listener whose accept queue is full, so the kernel drops new SYNs and a connect to it
/// stays in progress until its deadline: backlog 0 admits one connection, which `filler`
/// holds (never accepted).
struct silent_listener {
    int fd = -1;
    int filler = -1;
    uint16_t port = 0;
    silent_listener() {
        fd = listen_loopback(port, 0);
        filler = connect_loopback(port);
    }
    ~silent_listener() {
        ::close(filler);
        ::close(fd);
    }
};

/// Position of `e` in `events`, or -1.
long position(const std::vector<std::string>& events, const std::string& e) {
    const auto it = std::find(events.begin(), events.end(), e);
    return it == events.end() ? -1 : static_cast<long>(it - events.begin());
}

/// Checks that `first` was journalled, and before `then` (which may be missing only if
/// `first` is too: position() is -1 for both then, and the first check reports it).
void check_before(const std::vector<std::string>& events, const std::string& first,
                  const std::string& then) {
    INFO(first << " before " << then);
    CHECK(position(events, first) >= 0);
    CHECK(position(events, first) < position(events, then));
}

/// A loopback listener the shard connects out to; closed when the case's scope ends, so
/// declare it before the running_shard that connects to it.
struct loopback_target {
    uint16_t port = 0;
    int fd = -1;

    loopback_target() : fd(listen_loopback(port)) {}
    ~loopback_target() { ::close(fd); }
    loopback_target(const loopback_target&) = delete;
    loopback_target& operator=(const loopback_target&) = delete;

    /// The control line that connects to this target: `args` are TIMEOUT_MS [DELAY_MS].
    std::string connect4(const std::string& args = "5000") const {
        return "connect4 " + std::to_string(port) + " " + args;
    }
    /// The event outbound `id` journals when it connects here.
    std::string connected(unsigned id = 1) const {
        return "connected " + std::to_string(id) + " 127.0.0.1:" + std::to_string(port);
    }
};

/// Connects outbound 1 of `s` to `t` and returns the server side of it, accepted.
int open_outbound(running_shard& s, const loopback_target& t, const std::string& args = "5000") {
    s.command(t.connect4(args));
    REQUIRE(s.events.wait_for(t.connected(1)));
    return accept_one(t.fd);
}

} // namespace

TEST_CASE("outbound: a connection opens, carries bytes both ways, runs its timers and closes "
          "from the shard's side after flushing",
          "[core][outbound]") {
    const int fds_before = open_fds();
    {
        loopback_target target;
        running_shard s;
        const int server = open_outbound(s, target);
        REQUIRE(s.events.wait_for("connect ok 1"));
        CHECK(read_exactly(server, 5) == "hello"); // sent inside on_connect_result
        REQUIRE(::send(server, "world", 5, 0) == 5);
        REQUIRE(s.events.wait_for("data 1 world"));
        s.command("timer 1");
        REQUIRE(s.events.wait_for("timer 1"));
        s.command("send 1 bye");
        CHECK(read_exactly(server, 3) == "bye");
        s.command("close 1");
        CHECK(testing::closed_by_peer(server)); // our FIN after "bye"
        ::close(server);                         // the lingering close sees our EOF
        REQUIRE(s.events.wait_for("closed 1"));
        const core::shard_counters c = s.stop_and_join();
        CHECK(c.outbound_connects == 1);
        CHECK(c.outbound_connect_failures == 0);
        CHECK(c.outbound_closed == 1);
        CHECK(c.closed == 1); // the control connection: outbound ones are counted apart
        CHECK(s.events.count("failed 1 refused") == 0);
    }
    CHECK(open_fds() == fds_before);
}

TEST_CASE("outbound: the peer closing ends the connection with on_closed",
          "[core][outbound]") {
    const int fds_before = open_fds();
    {
        loopback_target target;
        running_shard s;
        ::close(open_outbound(s, target));
        REQUIRE(s.events.wait_for("closed 1"));
        check_before(s.events.snapshot(), target.connected(1), "closed 1");
    }
    CHECK(open_fds() == fds_before);
}

TEST_CASE("outbound: an IPv6 target connects like an IPv4 one", "[core][outbound]") {
    const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(::listen(fd, 8) == 0);
    socklen_t len = sizeof(a);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    const uint16_t port = ntohs(a.sin6_port);
    {
        running_shard s;
        s.command("connect6 " + std::to_string(port) + " 5000");
        REQUIRE(s.events.wait_for("connected 1 ::1:" + std::to_string(port)));
        const int server = accept_one(fd);
        CHECK(read_exactly(server, 5) == "hello");
        ::close(server);
        REQUIRE(s.events.wait_for("closed 1"));
    }
    ::close(fd);
}

TEST_CASE("outbound: a refused connect is reported, then closed, and never opens",
          "[core][outbound]") {
    const int fds_before = open_fds();
    uint16_t port = 0;
    const int nobody = closed_port(port);
    {
        running_shard s;
        s.command("connect4 " + std::to_string(port) + " 5000");
        REQUIRE(s.events.wait_for("closed 1"));
        const auto events = s.events.snapshot();
        CHECK(position(events, "connect ok 1") >= 0);
        check_before(events, "failed 1 refused", "closed 1");
        const core::shard_counters c = s.stop_and_join();
        CHECK(c.outbound_connects == 1);
        CHECK(c.outbound_connect_failures == 1);
        CHECK(c.outbound_closed == 1);
    }
    ::close(nobody);
    CHECK(open_fds() == fds_before);
}

TEST_CASE("outbound: a connect that gets no answer fails at its deadline with timed_out",
          "[core][outbound][timeout]") {
    const int fds_before = open_fds();
    {
        silent_listener silent;
        running_shard s;
        s.command("connect4 " + std::to_string(silent.port) + " 100");
        REQUIRE(s.events.wait_for("closed 1"));
        check_before(s.events.snapshot(), "failed 1 timed_out", "closed 1");
        CHECK(s.events.count("connected 1 127.0.0.1:" + std::to_string(silent.port)) == 0);
    }
    CHECK(open_fds() == fds_before);
}

TEST_CASE("outbound: connects beyond the outbound slots fail at once, and a slot comes back "
          "when its connection closes",
          "[core][outbound][slots]") {
    const int fds_before = open_fds();
    {
        silent_listener silent;
        running_shard s(2);
        const std::string connect = "connect4 " + std::to_string(silent.port) + " 60000";
        s.command(connect);
        s.command(connect);
        s.command(connect);
        REQUIRE(s.events.wait_for("connect error " +
                                  std::make_error_code(std::errc::too_many_files_open).message()));
        CHECK(s.events.count("connect ok 1") == 1);
        CHECK(s.events.count("connect ok 2") == 1);
        // Abandoning a connect frees its slot; the handler hears only on_closed.
        s.command("close 1");
        REQUIRE(s.events.wait_for("closed 1"));
        s.command(connect);
        REQUIRE(s.events.wait_for("connect ok 4"));
        const core::shard_counters c = s.stop_and_join();
        CHECK(s.events.count("failed 1 canceled") == 0);
        CHECK(s.events.count("failed 2 canceled") == 1);
        CHECK(s.events.count("failed 4 canceled") == 1);
        CHECK(s.events.count("closed 2") == 1);
        CHECK(s.events.count("closed 4") == 1);
        CHECK(c.outbound_connects == 3);
        CHECK(c.outbound_connect_failures == 3);
        CHECK(c.outbound_closed == 3);
    }
    CHECK(open_fds() == fds_before);
}

TEST_CASE("outbound: a stopping shard cancels a connect in flight: operation_canceled, then "
          "closed",
          "[core][outbound][shutdown]") {
    const int fds_before = open_fds();
    {
        silent_listener silent;
        running_shard s;
        s.command("connect4 " + std::to_string(silent.port) + " 60000");
        REQUIRE(s.events.wait_for("connect ok 1"));
        s.stop_and_join();
        check_before(s.events.snapshot(), "failed 1 canceled", "closed 1");
    }
    CHECK(open_fds() == fds_before);
}

TEST_CASE("outbound: a stopping shard says goodbye to an open outbound connection like to "
          "the others",
          "[core][outbound][shutdown]") {
    const int fds_before = open_fds();
    {
        loopback_target target;
        running_shard s;
        const int server = open_outbound(s, target);
        s.stop_and_join();
        check_before(s.events.snapshot(), "shutdown 1", "closed 1");
        CHECK(read_exactly(server, 5) == "hello");
        CHECK(testing::closed_by_peer(server));
        ::close(server);
    }
    CHECK(open_fds() == fds_before);
}

TEST_CASE("outbound: a delayed connect starts after its delay, and one closed or stopped "
          "before it starts never reaches the peer",
          "[core][outbound][delay]") {
    const int fds_before = open_fds();
    {
        loopback_target target;
        running_shard s;
        const int server = open_outbound(s, target, "5000 20");
        CHECK(read_exactly(server, 5) == "hello");
        ::close(server);
        REQUIRE(s.events.wait_for("closed 1"));
        // Abandoned during its delay: on_closed only.
        s.command(target.connect4("5000 60000"));
        REQUIRE(s.events.wait_for("connect ok 2"));
        s.command("close 2");
        REQUIRE(s.events.wait_for("closed 2"));
        // Stopped during its delay: cancelled, then closed.
        s.command(target.connect4("5000 60000"));
        REQUIRE(s.events.wait_for("connect ok 3"));
        const core::shard_counters c = s.stop_and_join();
        CHECK(s.events.count("failed 2 canceled") == 0);
        check_before(s.events.snapshot(), "failed 3 canceled", "closed 3");
        CHECK(c.outbound_connects == 3);
        CHECK(c.outbound_connect_failures == 2);
        CHECK(c.outbound_closed == 3);
        // Neither delayed connect reached the listener (the shard is joined by now).
        REQUIRE(::fcntl(target.fd, F_SETFL, O_NONBLOCK) == 0);
        CHECK(::accept4(target.fd, nullptr, nullptr, SOCK_CLOEXEC) < 0);
        CHECK(errno == EAGAIN);
    }
    CHECK(open_fds() == fds_before);
}
