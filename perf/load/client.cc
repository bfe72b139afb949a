// See client.h for the connection state machine and the output path.
#include "client.h"

#include "stats.h"

#include <ringcast/http.h>

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24 // Linux 4.2
#endif

namespace ringcast::bench {

namespace {

/// Completions taken per peek; 256 × 16 B on the stack.
constexpr unsigned reap_batch = 256;
/// Peeks per iteration: bounds one pass to 16 K completions so ticks keep their pace.
constexpr int reap_rounds = 64;
/// Longest wait in one submit_and_wait: keeps ticks (progress, phase ends) on time when
/// nothing happens.
constexpr uint64_t max_wait_ns = 50'000'000;
/// Largest upgrade response we accept; the server's 101 is ~130 bytes.
constexpr uint32_t max_handshake_bytes = 4096;

void base64_encode(const uint8_t* in, std::size_t n, char* out) noexcept {
    static constexpr char table[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::size_t o = 0;
    for (std::size_t i = 0; i < n; i += 3) {
        const uint32_t b0 = in[i];
        const uint32_t b1 = i + 1 < n ? in[i + 1] : 0;
        const uint32_t b2 = i + 2 < n ? in[i + 2] : 0;
        const uint32_t v = b0 << 16 | b1 << 8 | b2;
        out[o++] = table[(v >> 18) & 63];
        out[o++] = table[(v >> 12) & 63];
        out[o++] = i + 1 < n ? table[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? table[v & 63] : '=';
    }
}

bool iequals_prefix(std::string_view line, std::string_view name) noexcept {
    if (line.size() < name.size()) {
        return false;
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char a = char(line[i] | 0x20);
        if (a != name[i]) {
            return false;
        }
    }
    return true;
}

std::string_view trim(std::string_view v) noexcept {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
        v.remove_prefix(1);
    }
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) {
        v.remove_suffix(1);
    }
    return v;
}

uint32_t next_pow2(uint32_t v) noexcept {
    uint32_t p = 1;
    while (p < v && p < (1u << 30)) {
        p <<= 1;
    }
    return p;
}

} // namespace

bool parse_url(const std::string& url, endpoint& out, std::string& error) {
    constexpr std::string_view scheme = "ws://";
    if (url.rfind(scheme, 0) != 0) {
        error = "--url " + url + " must start with ws:// (wss is not supported by the bench)";
        return false;
    }
    std::string rest = url.substr(scheme.size());
    const std::size_t slash = rest.find('/');
    out.path = slash == std::string::npos ? "/" : rest.substr(slash);
    const std::string hostport = rest.substr(0, slash);
    const std::size_t colon = hostport.rfind(':');
    if (colon == std::string::npos) {
        error = "--url " + url + " needs an explicit port, e.g. ws://127.0.0.1:8080/echo";
        return false;
    }
    out.host = hostport.substr(0, colon);
    if (out.host == "localhost") {
        out.host = "127.0.0.1";
    }
    const std::string port = hostport.substr(colon + 1);
    char* end = nullptr;
    const unsigned long p = std::strtoul(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p == 0 || p > 65535) {
        error = "--url " + url + ": port '" + port + "' is not a number from 1 to 65535";
        return false;
    }
    out.port = uint16_t(p);
    out.addr = {};
    out.addr.sin_family = AF_INET;
    out.addr.sin_port = htons(out.port);
    if (inet_pton(AF_INET, out.host.c_str(), &out.addr.sin_addr) != 1) {
        error = "--url " + url + ": host '" + out.host + "' is not an IPv4 address";
        return false;
    }
    if ((ntohl(out.addr.sin_addr.s_addr) >> 24) != 127) {
        error = "--url " + url + ": host " + out.host +
                " is not in 127.0.0.0/8; the bench only drives loopback servers";
        return false;
    }
    return true;
}

// Routes parser events of one connection; lives on the stack for one feed().
class client::sink final : public ws::frame_sink {
public:
    sink(client& owner, uint32_t slot, uint64_t now) noexcept
        : _owner(owner), _slot(slot), _now(now) {}

    void on_message(ws::opcode type, std::span<const std::byte> payload) noexcept override {
        _owner._handler.on_message(_slot, type, payload, _now);
    }
    void on_compressed_message(ws::opcode type,
                               std::span<const std::byte> payload) noexcept override {
        ++_owner._counters.compressed_received;
        if (_owner._inflater->inflate(payload, std::size_t{64} << 20, _owner._inflated) !=
            ws::inflate_status::ok) {
            ++_owner._counters.protocol_errors;
            return _owner.fail(_slot, close_cause::protocol_error);
        }
        _owner._handler.on_message(_slot, type, _owner._inflated, _now);
    }
    void on_ping(std::span<const std::byte> payload) noexcept override {
        ++_owner._counters.pings_answered;
        _owner.queue_control(_slot, ws::opcode::pong, payload);
    }
    void on_pong(std::span<const std::byte>) noexcept override {}
    void on_close(uint16_t code, std::string_view) noexcept override {
        _owner.on_peer_close(_slot, code);
    }

private:
    client& _owner;
    uint32_t _slot;
    uint64_t _now;
};

client::client(client_config config, conn_handler& handler)
    : _config(std::move(config)), _handler(handler) {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed) {
        seed = now_ns();
    }
    _rng = seed | 1;

    const uint32_t n = _config.connections;
    // Every connection has ≤ 3 ops outstanding, but at most one connect phase at a time:
    // recv + send per connection, plus connect + timeout + cancel per concurrent connect.
    const uint32_t cq =
        std::clamp(next_pow2(2 * n + 4 * _config.connect_concurrency + 1024), 4096u, 65536u);
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                   IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
    params.cq_entries = cq;
    _ring_mode = "single_issuer+defer_taskrun";
    int ret = io_uring_queue_init_params(4096, &_ring, &params);
    if (ret == -EINVAL) {
        // Pre-6.1 kernel: same loop, the kernel just runs task work on its own schedule.
        params = {};
        params.flags = IORING_SETUP_CQSIZE;
        params.cq_entries = cq;
        _ring_mode = "default (DEFER_TASKRUN refused)";
        ret = io_uring_queue_init_params(4096, &_ring, &params);
    }
    if (ret < 0) {
        _setup_error = std::string("io_uring_queue_init failed: ") + std::strerror(-ret) +
                       " (is /proc/sys/kernel/io_uring_disabled set, or a seccomp profile "
                       "blocking io_uring?)";
        return;
    }
    _ring_ready = true;
    io_uring_register_ring_fd(&_ring); // optional: saves an fdget per enter

    _conns.resize(n);
    _live = n;
    const std::size_t arena = std::size_t(n) * _config.recv_buffer_bytes;
    _recv_arena.reset(new (std::nothrow) std::byte[arena]);
    if (_recv_arena == nullptr) {
        _setup_error = "cannot allocate " + std::to_string(arena) + " bytes of receive buffers";
        return;
    }
    const auto head_for = [&](const std::string& path) {
        return "GET " + path + " HTTP/1.1\r\nHost: " + _config.target.host + ":" +
               std::to_string(_config.target.port) +
               "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: 13\r\nUser-Agent: ringcast-bench\r\n" +
               _config.extra_headers;
    };
    _request_heads.reserve(_config.paths.size() + 1);
    for (const auto& path : _config.paths) {
        _request_heads.push_back(head_for(path));
    }
    _request_heads.push_back(head_for(_config.target.path));
    _connect_timeout.tv_sec = _config.connect_timeout_ms / 1000;
    _connect_timeout.tv_nsec = long(_config.connect_timeout_ms % 1000) * 1'000'000;
    _ok = true;
}

client::~client() {
    for (auto& c : _conns) {
        if (c.fd >= 0) {
            ::close(c.fd);
        }
    }
    if (_ring_ready) {
        io_uring_queue_exit(&_ring);
    }
}

std::array<std::byte, 4> client::random_mask() noexcept {
    // xorshift64*: a masking key only has to vary, not resist prediction, for a load test.
    _rng ^= _rng >> 12;
    _rng ^= _rng << 25;
    _rng ^= _rng >> 27;
    const uint64_t r = _rng * 2685821657736338717ull;
    return {std::byte(r >> 24), std::byte(r >> 32), std::byte(r >> 40), std::byte(r >> 48)};
}

io_uring_sqe* client::get_sqe() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
    if (sqe == nullptr) {
        io_uring_submit(&_ring);
        sqe = io_uring_get_sqe(&_ring);
        if (sqe == nullptr) {
            ++_counters.sqe_starved;
        }
    }
    return sqe;
}

bool client::run_once(uint64_t deadline_ns) noexcept {
    uint64_t now = now_ns();
    if (now >= deadline_ns) {
        return false;
    }
    ++_counters.loop_iterations;
    start_connects(now);
    _handler.on_tick(now);
    const uint64_t wait = std::min(deadline_ns - now, max_wait_ns);
    __kernel_timespec ts{};
    ts.tv_sec = int64_t(wait / 1'000'000'000u);
    ts.tv_nsec = int64_t(wait % 1'000'000'000u);
    io_uring_cqe* cqe = nullptr;
    // -ETIME (nothing happened) and -EINTR are normal here; completions are reaped below.
    io_uring_submit_and_wait_timeout(&_ring, &cqe, 1, &ts, nullptr);
    reap_completions(now_ns());
    return true;
}

void client::reap_completions(uint64_t now) noexcept {
    io_uring_cqe* cqes[reap_batch];
    for (int round = 0; round < reap_rounds; ++round) {
        const unsigned n = io_uring_peek_batch_cqe(&_ring, cqes, reap_batch);
        _counters.cqes += n;
        for (unsigned i = 0; i < n; ++i) {
            dispatch(*cqes[i], now);
        }
        io_uring_cq_advance(&_ring, n);
        if (n < reap_batch) {
            return;
        }
    }
}

void client::dispatch(const io_uring_cqe& cqe, uint64_t now) noexcept {
    const auto o = op(cqe.user_data >> 56);
    const auto slot = uint32_t(cqe.user_data);
    const auto generation = uint32_t(cqe.user_data >> 32) & 0xffffff;
    if (slot >= _conns.size() || (_conns[slot].generation & 0xffffff) != generation) {
        return; // a completion for a slot that was reused: nothing of ours is waiting
    }
    switch (o) {
    case op::connect:
        return on_connect(slot, cqe.res, now);
    case op::aux:
        return;
    case op::recv:
        return on_recv(slot, cqe.res, now);
    case op::send:
        return on_send(slot, cqe.res);
    }
}

void client::start_connects(uint64_t now) noexcept {
    // Bounded by connect_concurrency per call and by the table size overall.
    while (_pending_opens < _config.connect_concurrency && _next_to_connect < _conns.size()) {
        const uint32_t slot = _next_to_connect++;
        connection& c = _conns[slot];
        ++_counters.connects_started;
        ++_pending_opens;
        c.state = conn_state::connecting;
        c.started_ns = now;
        // A blocking-mode socket: io_uring never blocks on it (it polls internally), and
        // CONNECT on it completes with the final result instead of -EINPROGRESS.
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c.fd < 0) {
            c.cause = close_cause::connect_failed;
            c.shut = true;
            finish_if_done(slot);
            continue;
        }
        const int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        // Spread over 127.0.0.1..K: the port is picked at connect time per 4-tuple
        // (IP_BIND_ADDRESS_NO_PORT), so each source address gives a full ephemeral range.
        setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        const uint32_t global = _config.first_global_index + slot;
        sockaddr_in src{};
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl((127u << 24) + 1 + global / _config.per_source_address);
        if (::bind(c.fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) {
            c.cause = close_cause::connect_failed;
            c.shut = true;
            finish_if_done(slot);
            continue;
        }
        io_uring_sqe* sqe = get_sqe();
        io_uring_sqe* timeout = sqe ? get_sqe() : nullptr;
        if (sqe == nullptr || timeout == nullptr) {
            c.cause = close_cause::connect_failed;
            c.shut = true;
            finish_if_done(slot);
            return;
        }
        io_uring_prep_connect(sqe, c.fd, reinterpret_cast<const sockaddr*>(&_config.target.addr),
                              sizeof(sockaddr_in));
        io_uring_sqe_set_data64(sqe, encode(op::connect, slot, c.generation));
        sqe->flags |= IOSQE_IO_LINK;
        io_uring_prep_link_timeout(timeout, &_connect_timeout, 0);
        io_uring_sqe_set_data64(timeout, encode(op::aux, slot, c.generation));
        ++c.ops;
    }
}

void client::on_connect(uint32_t slot, int res, uint64_t now) noexcept {
    connection& c = _conns[slot];
    --c.ops;
    if (c.shut) {
        return finish_if_done(slot);
    }
    if (res < 0) {
        c.cause = res == -ECANCELED ? close_cause::connect_timeout : close_cause::connect_failed;
        return fail(slot, c.cause);
    }
    c.state = conn_state::handshaking;
    uint8_t raw[16];
    for (int i = 0; i < 4; ++i) {
        const auto m = random_mask();
        std::memcpy(raw + 4 * i, m.data(), 4);
    }
    base64_encode(raw, sizeof raw, c.key.data());
    const std::size_t paths = _config.paths.size();
    const std::string& head =
        slot < _config.path_slots && paths > 0
            ? _request_heads[(std::size_t(_config.first_global_index) + slot) % paths]
            : _request_heads.back();
    c.request.reserve(head.size() + 48);
    c.request = head;
    c.request += "Sec-WebSocket-Key: ";
    c.request.append(c.key.data(), c.key.size());
    c.request += "\r\n\r\n";
    c.pending[0] = iovec{c.request.data(), c.request.size()};
    c.pending_count = 1;
    kick_send(slot);
    prep_recv(slot);
    (void)now;
}

void client::prep_recv(uint32_t slot) noexcept {
    connection& c = _conns[slot];
    std::byte* buf = _recv_arena.get() + std::size_t(slot) * _config.recv_buffer_bytes;
    uint32_t offset = 0;
    uint32_t room = _config.recv_buffer_bytes;
    if (c.state == conn_state::handshaking) {
        offset = c.recv_used;
        room = std::min(room, max_handshake_bytes) - offset;
    }
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        return fail(slot, close_cause::io_error);
    }
    io_uring_prep_recv(sqe, c.fd, buf + offset, room, 0);
    io_uring_sqe_set_data64(sqe, encode(op::recv, slot, c.generation));
    ++c.ops;
    ++_counters.recv_calls;
}

void client::on_recv(uint32_t slot, int res, uint64_t now) noexcept {
    connection& c = _conns[slot];
    --c.ops;
    if (c.shut) {
        return finish_if_done(slot);
    }
    if (res == 0) {
        if (c.close_sent) {
            // The close handshake ended (or the server dropped TCP after our close frame):
            // the cause is already recorded.
            do_shutdown(slot);
            return finish_if_done(slot);
        }
        if (c.state == conn_state::handshaking) {
            return fail(slot, close_cause::handshake_failed);
        }
        ++_counters.peer_eofs;
        return fail(slot, close_cause::peer_eof);
    }
    if (res < 0) {
        ++_counters.io_errors;
        return fail(slot, c.state == conn_state::handshaking ? close_cause::handshake_failed
                                                             : close_cause::io_error);
    }
    _counters.bytes_received += uint64_t(res);
    _batching_slot = slot;
    if (c.state == conn_state::handshaking) {
        c.recv_used += uint32_t(res);
        on_handshake_bytes(slot, now);
    } else {
        std::byte* buf = _recv_arena.get() + std::size_t(slot) * _config.recv_buffer_bytes;
        feed_frames(slot, std::span<std::byte>(buf, std::size_t(res)), now);
    }
    _batching_slot = UINT32_MAX;
    if (c.shut) {
        return finish_if_done(slot);
    }
    kick_send(slot);
    maybe_shutdown(slot);
    if (!c.shut) {
        prep_recv(slot);
    }
}

void client::on_handshake_bytes(uint32_t slot, uint64_t now) noexcept {
    connection& c = _conns[slot];
    std::byte* buf = _recv_arena.get() + std::size_t(slot) * _config.recv_buffer_bytes;
    const std::string_view text(reinterpret_cast<const char*>(buf), c.recv_used);
    const std::size_t end = text.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (c.recv_used >= std::min(_config.recv_buffer_bytes, max_handshake_bytes)) {
            fail(slot, close_cause::handshake_failed);
        }
        return; // need more; on_recv re-arms into the rest of the buffer
    }
    // RFC 6455 §4.1: the client must see 101 and the right Sec-WebSocket-Accept.
    bool status_ok = text.rfind("HTTP/1.1 101", 0) == 0;
    bool accept_ok = false;
    std::size_t pos = text.find("\r\n");
    // Bounded by the header block (≤ 4 KB): each step moves past one CRLF.
    while (status_ok && pos < end) {
        const std::size_t next = text.find("\r\n", pos + 2);
        const std::string_view line = text.substr(pos + 2, next - pos - 2);
        if (_config.deflate && iequals_prefix(line, "sec-websocket-extensions:") &&
            line.find("permessage-deflate") != std::string_view::npos) {
            if (!_inflater) {
                _inflater = std::make_unique<ws::inflater>(15, false);
            }
            c.parser.accept_compressed();
            ++_counters.deflate_opened;
        }
        if (iequals_prefix(line, "sec-websocket-accept:")) {
            const std::string expected =
                http::websocket_accept(std::string_view(c.key.data(), c.key.size()));
            accept_ok = trim(line.substr(21)) == expected;
        }
        pos = next;
    }
    if (!status_ok || !accept_ok) {
        return fail(slot, close_cause::handshake_failed);
    }
    c.state = conn_state::open;
    c.was_open = true;
    c.open_latency_ns = now - c.started_ns;
    --_pending_opens;
    ++_open;
    ++_counters.opened;
    _handler.on_open(slot, now);
    const std::size_t head = end + 4;
    if (head < c.recv_used && c.state == conn_state::open) {
        feed_frames(slot, std::span<std::byte>(buf + head, c.recv_used - head), now);
    }
    c.recv_used = 0;
}

void client::feed_frames(uint32_t slot, std::span<std::byte> bytes, uint64_t now) noexcept {
    connection& c = _conns[slot];
    sink events(*this, slot, now);
    const ws::parse_result r = c.parser.feed(bytes, events);
    if (r.status == ws::parse_status::error && !c.shut) {
        ++_counters.protocol_errors;
        fail(slot, close_cause::protocol_error);
    }
}

void client::on_peer_close(uint32_t slot, uint16_t code) noexcept {
    connection& c = _conns[slot];
    if (c.close_received) {
        return;
    }
    c.close_received = true;
    if (!c.close_sent) {
        ++_counters.peer_closes;
        c.cause = close_cause::peer_close;
        // RFC 6455 §5.5.1: answer with a close frame, echoing the status code.
        std::array<std::byte, 2> body{std::byte(code >> 8), std::byte(code & 0xff)};
        const bool has_code = code != uint16_t(ws::close_code::no_status);
        queue_control(slot, ws::opcode::close,
                      std::span<const std::byte>(body.data(), has_code ? 2 : 0));
        c.close_sent = true;
    }
    if (c.state == conn_state::open) {
        --_open;
    }
    c.state = conn_state::closing;
}

queue_status client::queue_data(uint32_t slot, std::span<const std::byte> bytes) noexcept {
    connection& c = _conns[slot];
    if (c.state != conn_state::open || c.shut) {
        return queue_status::not_open;
    }
    if (c.pending_count > 0) {
        iovec& last = c.pending[c.pending_count - 1];
        if (static_cast<const std::byte*>(last.iov_base) + last.iov_len == bytes.data()) {
            last.iov_len += bytes.size();
            return queue_status::queued;
        }
    }
    if (c.pending_count == max_iov) {
        return queue_status::full;
    }
    c.pending[c.pending_count++] = iovec{const_cast<std::byte*>(bytes.data()), bytes.size()};
    if (slot != _batching_slot) {
        kick_send(slot);
    }
    return queue_status::queued;
}

void client::queue_control(uint32_t slot, ws::opcode type,
                           std::span<const std::byte> payload) noexcept {
    connection& c = _conns[slot];
    if (c.close_sent || c.shut) {
        return; // RFC 6455 §5.5.1: nothing may follow our close frame
    }
    auto& buf = c.control[c.control_pending];
    uint16_t& len = c.control_len[c.control_pending];
    const std::size_t need = ws::max_frame_header_bytes + payload.size();
    if (payload.size() > 125 || len + need > buf.size()) {
        return; // a second ping before the first pong went out: answering the last is enough
    }
    const auto key = random_mask();
    std::byte* out = buf.data() + len;
    const std::size_t header =
        ws::write_frame_header(out, type, payload.size(), ws::fin::yes, &key);
    if (!payload.empty()) {
        std::memcpy(out + header, payload.data(), payload.size());
        ws::apply_mask(std::span<std::byte>(out + header, payload.size()), key);
    }
    len = uint16_t(len + header + payload.size());
    if (slot != _batching_slot) {
        kick_send(slot);
    }
}

void client::kick_send(uint32_t slot) noexcept {
    connection& c = _conns[slot];
    if (c.send_in_flight || c.shut || c.fd < 0) {
        return;
    }
    const uint8_t cp = c.control_pending;
    if (c.pending_count == 0 && c.control_len[cp] == 0) {
        return;
    }
    uint8_t n = 0;
    // Control frames go first: a pong must not wait behind a window of data. They never
    // split a data frame because pending holds whole frames only.
    if (c.control_len[cp] != 0) {
        c.flight[n++] = iovec{c.control[cp].data(), c.control_len[cp]};
        c.control_pending = uint8_t(cp ^ 1);
        c.control_len[c.control_pending] = 0;
    }
    for (uint8_t i = 0; i < c.pending_count; ++i) {
        c.flight[n++] = c.pending[i];
    }
    c.pending_count = 0;
    c.flight_count = n;
    c.flight_first = 0;
    submit_flight(slot);
}

void client::submit_flight(uint32_t slot) noexcept {
    connection& c = _conns[slot];
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        return fail(slot, close_cause::io_error);
    }
    const unsigned n = unsigned(c.flight_count - c.flight_first);
    const iovec& first = c.flight[c.flight_first];
    if (n == 1) {
        io_uring_prep_send(sqe, c.fd, first.iov_base, first.iov_len, MSG_NOSIGNAL);
    } else {
        io_uring_prep_writev(sqe, c.fd, &first, n, 0);
    }
    io_uring_sqe_set_data64(sqe, encode(op::send, slot, c.generation));
    ++c.ops;
    c.send_in_flight = true;
    ++_counters.send_calls;
}

void client::on_send(uint32_t slot, int res) noexcept {
    connection& c = _conns[slot];
    --c.ops;
    c.send_in_flight = false;
    if (c.shut) {
        return finish_if_done(slot);
    }
    if (res < 0) {
        ++_counters.io_errors;
        return fail(slot, close_cause::io_error);
    }
    _counters.bytes_sent += uint64_t(res);
    auto left = std::size_t(res);
    // Bounded by flight_count (≤ max_iov + 1).
    while (c.flight_first < c.flight_count && left >= c.flight[c.flight_first].iov_len) {
        left -= c.flight[c.flight_first].iov_len;
        ++c.flight_first;
    }
    if (c.flight_first < c.flight_count) {
        iovec& part = c.flight[c.flight_first];
        part.iov_base = static_cast<std::byte*>(part.iov_base) + left;
        part.iov_len -= left;
        return submit_flight(slot); // short send: the rest first, keeping byte order
    }
    if (c.state == conn_state::open && c.was_open && !c.request.empty()) {
        c.request.clear();
        c.request.shrink_to_fit();
    }
    kick_send(slot);
    maybe_shutdown(slot);
}

void client::maybe_shutdown(uint32_t slot) noexcept {
    connection& c = _conns[slot];
    // RFC 6455 §7.1.1: after both close frames, the TCP connection can go.
    if (c.close_sent && c.close_received && !c.send_in_flight && c.pending_count == 0) {
        do_shutdown(slot);
        finish_if_done(slot); // nothing may be outstanding to complete and finish it
    }
}

void client::begin_close(uint32_t slot) noexcept {
    connection& c = _conns[slot];
    switch (c.state) {
    case conn_state::idle:
        c.cause = close_cause::local;
        c.shut = true;
        return finish_if_done(slot);
    case conn_state::connecting:
    case conn_state::handshaking:
        return fail(slot, close_cause::local);
    case conn_state::open: {
        std::array<std::byte, 2> body{std::byte(1000 >> 8), std::byte(1000 & 0xff)};
        queue_control(slot, ws::opcode::close, body);
        c.close_sent = true;
        c.cause = close_cause::local;
        --_open;
        c.state = conn_state::closing;
        return;
    }
    case conn_state::closing:
    case conn_state::closed:
    case conn_state::failed:
        return;
    }
}

void client::begin_close_all() noexcept {
    for (uint32_t i = 0; i < _conns.size(); ++i) {
        begin_close(i);
    }
}

void client::abort_all() noexcept {
    for (uint32_t i = 0; i < _conns.size(); ++i) {
        connection& c = _conns[i];
        if (c.state == conn_state::closed || c.state == conn_state::failed) {
            continue;
        }
        if (c.cause == close_cause::none) {
            c.cause = close_cause::local;
        }
        do_shutdown(i);
        c.ops = 0; // the ring is torn down with the client; no completion will be read
        finish_if_done(i);
    }
}

void client::fail(uint32_t slot, close_cause cause) noexcept {
    connection& c = _conns[slot];
    if (c.cause == close_cause::none) {
        c.cause = cause;
    }
    if (c.state == conn_state::open) {
        --_open;
    }
    if (c.state == conn_state::connecting && !c.shut) {
        // shutdown() does not stop a connect in progress; cancel it by its user_data.
        if (io_uring_sqe* sqe = get_sqe()) {
            io_uring_prep_cancel64(sqe, encode(op::connect, slot, c.generation), 0);
            io_uring_sqe_set_data64(sqe, encode(op::aux, slot, c.generation));
        }
    }
    if (c.state != conn_state::closed && c.state != conn_state::failed) {
        c.state = conn_state::closing;
    }
    do_shutdown(slot);
    finish_if_done(slot);
}

void client::do_shutdown(uint32_t slot) noexcept {
    connection& c = _conns[slot];
    if (c.shut) {
        return;
    }
    c.shut = true;
    if (c.fd >= 0) {
        // Wakes the outstanding recv (it completes with 0) and send (-EPIPE); the fd is
        // closed when both have completed, so no CQE can refer to a reused descriptor.
        ::shutdown(c.fd, SHUT_RDWR);
    }
}

void client::finish_if_done(uint32_t slot) noexcept {
    connection& c = _conns[slot];
    if (!c.shut || c.ops != 0 || c.state == conn_state::closed || c.state == conn_state::failed) {
        return;
    }
    if (c.fd >= 0) {
        ::close(c.fd);
        c.fd = -1;
    }
    if (!c.was_open && c.state != conn_state::idle) {
        --_pending_opens;
        if (c.cause == close_cause::connect_failed) {
            ++_counters.connect_failed;
        } else if (c.cause == close_cause::connect_timeout) {
            ++_counters.connect_timeout;
        } else if (c.cause == close_cause::handshake_failed) {
            ++_counters.handshake_failed;
        }
    }
    c.state = c.was_open ? conn_state::closed : conn_state::failed;
    ++c.generation; // completions still in the ring for this slot are now stale
    c.request.clear();
    c.request.shrink_to_fit();
    --_live;
    _handler.on_closed(slot, c.cause);
}

} // namespace ringcast::bench
