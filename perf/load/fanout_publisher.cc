// See fanout_publisher.h for the message layout, the pacing and the two transports.
#include "fanout_publisher.h"

#include "protocol.h"
#include "stats.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

namespace ringcast::bench {

namespace {

/// HTTP answers buffered per connection: a batch answer of 1000 offsets is ~20 KB.
constexpr std::size_t http_in_bytes = 64 * 1024;
/// Upper bound of one step's messages: keeps a step (and the loop iteration it runs in)
/// short even with --rate 0 and large windows; the next step follows within 100 µs.
constexpr uint64_t max_messages_per_step = 65536;
/// send()/recv() calls per connection per step; each moves data or ends with EAGAIN.
constexpr int max_syscalls_per_step = 64;
/// Output bytes already sent that are kept before compacting the string (memmove).
constexpr std::size_t compact_after_bytes = 256 * 1024;
/// Bytes of a message besides the channel name and the data object: {"op":"publish",
/// "channel":"","event":"tick","data":,"id":N} and HTTP's {"messages":[...]} share.
constexpr std::size_t message_overhead_bytes = 96;

char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? char(c | 0x20) : c;
}

/// What follows the first case-insensitive match of `needle` (lower case) in `hay`;
/// a null view when there is none.
std::string_view find_ci(std::string_view hay, std::string_view needle) noexcept {
    // Header blocks are a few hundred bytes: a plain scan is enough.
    for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
        std::size_t k = 0;
        while (k < needle.size() && ascii_lower(hay[i + k]) == needle[k]) {
            ++k;
        }
        if (k == needle.size()) {
            return hay.substr(i + needle.size());
        }
    }
    return {};
}

uint64_t parse_digits(std::string_view v) noexcept {
    while (!v.empty() && v.front() == ' ') {
        v.remove_prefix(1);
    }
    uint64_t out = 0;
    std::from_chars(v.data(), v.data() + v.size(), out);
    return out;
}

} // namespace

fanout_publisher::fanout_publisher(publisher_config config) : _config(std::move(config)) {
    const uint32_t k = std::min(_config.connections, _config.channels);
    _conns.resize(k);
    for (uint32_t i = 0; i < k; ++i) {
        _conns[i].index = i;
        _conns[i].channels = (_config.channels - i + k - 1) / k;
    }
    _seq_by_channel.assign(_config.channels, 0);
    _accepted_by_channel.assign(_config.channels, 0);
    _channel_names.reserve(_config.channels);
    for (uint32_t c = 0; c < _config.channels; ++c) {
        _channel_names.push_back(_config.channel_prefix + std::to_string(c));
    }
    _pad.assign(_config.size, 'x');
    if (_config.text_pad) {
        // Deterministic feed-like text, no JSON escapes needed: "ACME3 101.25 x17;".
        std::string text;
        uint32_t seed = 12345;
        while (text.size() < _config.size) {
            seed = seed * 1103515245u + 12345u;
            const uint32_t r = seed >> 8;
            text += "ACME" + std::to_string(r % 37) + " " + std::to_string(90 + r % 23) + "." +
                    std::to_string(r % 100) + " x" + std::to_string(r % 997) + ";";
        }
        _pad.assign(text, 0, _config.size);
    }
    _http_head = "POST /api/publish HTTP/1.1\r\nHost: " + _config.target.host + ":" +
                 std::to_string(_config.target.port) + "\r\nContent-Type: application/json\r\n";
    if (!_config.api_key.empty()) {
        _http_head += "Authorization: Bearer " + _config.api_key + "\r\n";
    }
    _http_head += "Content-Length: ";
    if (!_config.raw_path.empty()) {
        _raw_heads.reserve(_config.channels);
        for (uint32_t c = 0; c < _config.channels; ++c) {
            _raw_heads.push_back("POST " + substitute_channel(_config.raw_path, _channel_names[c]) +
                                 " HTTP/1.1\r\nHost: " + _config.target.host + ":" +
                                 std::to_string(_config.target.port) +
                                 "\r\nContent-Type: application/json\r\nContent-Length: ");
        }
    }
    const std::size_t max_message =
        _config.size + message_overhead_bytes + _config.channel_prefix.size() + 48;
    _body.reserve(max_message * _config.batch + 32);
    _bucket_depth = std::max(double(_config.batch), double(_config.rate) / 100.0); // 10 ms
    _step_ns = _config.rate == 0 ? 100'000 : 1'000'000;
    if (_config.ws) {
        // Room for a full window plus the tail wasted at the wrap (< one frame).
        _arena_bytes = (std::size_t(_config.window) + 2) * (max_message + 14);
    }
}

fanout_publisher::~fanout_publisher() {
    for (auto& c : _conns) {
        if (c.fd >= 0) {
            ::close(c.fd);
        }
    }
}

bool fanout_publisher::connect_http(std::string& error) {
    for (auto& c : _conns) {
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c.fd < 0) {
            error = std::string("publisher socket: ") + std::strerror(errno);
            return false;
        }
        const int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        // Loopback: connect completes or is refused at once, no timeout needed.
        if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&_config.target.addr),
                      sizeof(sockaddr_in)) != 0) {
            error = "publisher cannot connect to " + _config.target.host + ":" +
                    std::to_string(_config.target.port) + ": " + std::strerror(errno);
            return false;
        }
        fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
        c.in.reset(new char[http_in_bytes]);
        c.fifo.assign(_config.window, request_record{});
        const std::size_t per_request = _body.capacity() + _http_head.size() + 32;
        c.out.reserve(std::min<std::size_t>(per_request * _config.window, 64u << 20));
    }
    return true;
}

void fanout_publisher::attach_ws(client& cl, uint32_t first_slot) {
    _ws_client = &cl;
    _first_slot = first_slot;
    for (auto& c : _conns) {
        c.slot = first_slot + c.index;
        c.arena.reset(new std::byte[_arena_bytes]);
        c.start.assign(_config.window, 0);
        c.id.assign(_config.window, 0);
    }
}

bool fanout_publisher::ws_ready() const noexcept {
    for (const auto& c : _conns) {
        if (_ws_client->state(c.slot) != conn_state::open) {
            return false;
        }
    }
    return true;
}

void fanout_publisher::start(uint64_t now) noexcept {
    _publishing = true;
    _tokens = 0;
    _last_fill_ns = now;
    _next_step_ns = now;
}

void fanout_publisher::step(uint64_t now) noexcept {
    if (now < _next_step_ns) {
        return;
    }
    _next_step_ns = now + _step_ns;
    if (!_config.ws) {
        for (auto& c : _conns) {
            if (c.alive && c.fd >= 0) {
                read_http(c);
            }
        }
    }
    if (!_publishing) {
        return;
    }
    uint64_t budget = max_messages_per_step;
    if (_config.rate > 0) {
        _tokens += double(_config.rate) * double(now - _last_fill_ns) / 1e9;
        _last_fill_ns = now;
        if (_tokens > _bucket_depth) {
            _tokens_dropped += uint64_t(_tokens - _bucket_depth);
            _tokens = _bucket_depth;
        }
        budget = uint64_t(_tokens);
    }
    const auto k = uint32_t(_conns.size());
    const uint64_t base = budget / k;
    const uint64_t extra = budget % k;
    uint64_t done = 0;
    for (uint32_t i = 0; i < k; ++i) {
        connection& c = _conns[(_rr + i) % k];
        const uint64_t quota = base + (i < extra ? 1 : 0);
        if (quota == 0 || !c.alive || (!_config.ws && c.fd < 0)) {
            continue;
        }
        done += _config.ws ? publish_ws(c, quota, now) : publish_http(c, quota, now);
    }
    _rr = uint32_t((_rr + extra) % k);
    if (_config.rate > 0) {
        _tokens -= double(done);
    }
}

void fanout_publisher::append_message(std::string& out, connection& c, uint64_t j,
                                      uint64_t now) noexcept {
    const uint32_t channel = channel_of(c, j);
    out += "\"channel\":\"";
    out += _channel_names[channel];
    out += "\",\"event\":\"tick\",\"data\":";
    append_data(out, channel, now);
}

void fanout_publisher::append_data(std::string& out, uint32_t channel, uint64_t now) noexcept {
    const uint64_t seq = ++_seq_by_channel[channel];
    char digits[24];
    out += "{\"seq\":";
    const std::size_t seq_len = std::size_t(std::to_chars(digits, digits + 24, seq).ptr - digits);
    out.append(digits, seq_len);
    out += ",\"t\":";
    const std::size_t t_len = std::size_t(std::to_chars(digits, digits + 24, now).ptr - digits);
    out.append(digits, t_len);
    out += ",\"pad\":\"";
    // {"seq": 7 + ,"t": 5 + ,"pad":" 8 + "} 2 = 22 bytes around the two numbers.
    const std::size_t fixed = 22 + seq_len + t_len;
    if (_config.size > fixed) {
        out.append(_pad.data(), _config.size - fixed);
    }
    out += "\"}";
    ++_sent;
}

uint64_t fanout_publisher::publish_http(connection& c, uint64_t quota, uint64_t now) noexcept {
    uint64_t done = 0;
    // Bounded by the quota and by the window (one record per request).
    while (done < quota && c.fifo_count < _config.window) {
        const auto n = uint32_t(std::min<uint64_t>(_config.batch, quota - done));
        _body.clear();
        const std::string* head = &_http_head;
        if (!_raw_heads.empty()) {
            // Raw: one message per request, the data object is the whole body.
            const uint32_t channel = channel_of(c, c.next);
            head = &_raw_heads[channel];
            append_data(_body, channel, now);
        } else if (_config.batch > 1) {
            _body += "{\"messages\":[";
        }
        for (uint32_t i = 0; i < n && _raw_heads.empty(); ++i) {
            _body += i == 0 ? "{" : ",{";
            append_message(_body, c, c.next + i, now);
            _body += "}";
        }
        if (_config.batch > 1 && _raw_heads.empty()) {
            _body += "]}";
        }
        char len[24];
        const auto len_end = std::to_chars(len, len + 24, _body.size()).ptr;
        c.out += *head;
        c.out.append(len, std::size_t(len_end - len));
        c.out += "\r\n\r\n";
        c.out += _body;
        c.fifo[(c.fifo_head + c.fifo_count) % _config.window] = request_record{c.next, n};
        ++c.fifo_count;
        c.next += n;
        done += n;
        ++_requests;
        now = now_ns(); // each request carries the time it was built
    }
    flush_http(c);
    return done;
}

void fanout_publisher::flush_http(connection& c) noexcept {
    for (int i = 0; i < max_syscalls_per_step && c.out_sent < c.out.size(); ++i) {
        const ssize_t n = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                lose(c);
            }
            break;
        }
        c.out_sent += std::size_t(n);
    }
    if (c.out_sent == c.out.size()) {
        c.out.clear();
        c.out_sent = 0;
    } else if (c.out_sent > compact_after_bytes) {
        c.out.erase(0, c.out_sent);
        c.out_sent = 0;
    }
}

void fanout_publisher::read_http(connection& c) noexcept {
    flush_http(c); // whatever an earlier step could not send
    for (int i = 0; i < max_syscalls_per_step && c.alive; ++i) {
        if (c.in_used == http_in_bytes) {
            lose(c); // an answer larger than 64 KB is not a publish answer
            return;
        }
        const ssize_t n =
            ::recv(c.fd, c.in.get() + c.in_used, http_in_bytes - c.in_used, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            lose(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        c.in_used += std::size_t(n);
        const std::string_view all(c.in.get(), c.in_used);
        std::size_t pos = 0;
        // Bounded by the buffer: each answer consumes its header and body.
        while (pos < all.size()) {
            const std::string_view rest = all.substr(pos);
            const std::size_t head_end = rest.find("\r\n\r\n");
            if (head_end == std::string_view::npos) {
                break;
            }
            const std::string_view head = rest.substr(0, head_end + 2);
            const uint32_t status = head.size() > 12 && head.substr(0, 5) == "HTTP/"
                                        ? uint32_t(parse_digits(head.substr(9, 3)))
                                        : 0;
            const std::string_view cl = find_ci(head, "\r\ncontent-length:");
            uint64_t body_len = cl.data() != nullptr ? parse_digits(cl) : 0;
            if (cl.data() == nullptr && find_ci(head, "\r\ntransfer-encoding:").data() != nullptr) {
                // Chunked (error answers of some servers): the body ends with the last chunk.
                const std::size_t last = rest.find("\r\n0\r\n\r\n", head_end + 2);
                if (last == std::string_view::npos) {
                    break;
                }
                body_len = last + 7 - (head_end + 4);
            }
            if (head_end + 4 + body_len > rest.size()) {
                break;
            }
            const std::string_view body = rest.substr(head_end + 4, body_len);
            pos += head_end + 4 + body_len;
            if (c.fifo_count == 0) {
                ++_rejected; // an answer to nothing we sent: count it as an error
                _last_error = status;
                continue;
            }
            const request_record r = c.fifo[c.fifo_head];
            c.fifo_head = (c.fifo_head + 1) % _config.window;
            --c.fifo_count;
            // Peers answer a publish in their own words (nchan: 201/202 with channel
            // info); ringcast's API says "ok":true.
            const bool ok = _raw_heads.empty() ? status == 200 && body.find("\"ok\":true") !=
                                                                      std::string_view::npos
                                               : status >= 200 && status < 300;
            answer(c, r.first, r.count, ok, status);
        }
        if (pos > 0) {
            std::memmove(c.in.get(), c.in.get() + pos, c.in_used - pos);
            c.in_used -= pos;
        }
    }
}

uint64_t fanout_publisher::publish_ws(connection& c, uint64_t quota, uint64_t now) noexcept {
    uint64_t done = 0;
    const uint32_t w = _config.window;
    // Bounded by the quota and by the window: j may run at most W ahead of the oldest
    // unanswered frame, so the W slots always name distinct frames.
    while (done < quota && c.alive && c.next - c.oldest < w) {
        const uint64_t j = c.next;
        _body.clear();
        _body += "{\"op\":\"publish\",";
        append_message(_body, c, j, now);
        char id[24];
        _body += ",\"id\":";
        _body.append(id, std::size_t(std::to_chars(id, id + 24, j).ptr - id));
        _body += "}";
        const std::size_t header = ws::frame_header_size(_body.size(), true);
        const std::size_t len = header + _body.size();
        const uint64_t pos = c.head % _arena_bytes;
        const uint64_t start = pos + len > _arena_bytes ? c.head + (_arena_bytes - pos) : c.head;
        const uint64_t tail = c.in_flight == 0 ? start : c.tail;
        if (start + len - tail > _arena_bytes) {
            --_sent; // built but not sent: the arena is full until answers arrive
            --_seq_by_channel[channel_of(c, j)];
            break;
        }
        std::byte* frame = c.arena.get() + start % _arena_bytes;
        const auto key = _ws_client->random_mask();
        ws::write_frame_header(frame, ws::opcode::text, _body.size(), ws::fin::yes, &key);
        std::memcpy(frame + header, _body.data(), _body.size());
        ws::apply_mask(std::span<std::byte>(frame + header, _body.size()), key);
        if (_ws_client->queue_data(c.slot, std::span<const std::byte>(frame, len)) !=
            queue_status::queued) {
            --_sent;
            --_seq_by_channel[channel_of(c, j)];
            break;
        }
        if (c.in_flight == 0) {
            c.tail = start;
            c.oldest = j;
        }
        c.start[j % w] = start;
        c.id[j % w] = j + 1;
        c.head = start + len;
        ++c.in_flight;
        ++c.next;
        ++done;
        ++_requests;
        now = now_ns();
    }
    return done;
}

void fanout_publisher::on_ws_message(uint32_t slot, std::span<const std::byte> payload) noexcept {
    connection& c = _conns[slot - _first_slot];
    const std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
    const std::size_t at = text.find("\"id\":");
    if (at == std::string_view::npos) {
        ++_rejected; // not a reply: the server said something we did not ask for
        return;
    }
    const uint64_t j = parse_digits(text.substr(at + 5, 24));
    const uint32_t w = _config.window;
    if (j < c.oldest || j >= c.next || c.id[j % w] != j + 1) {
        ++_rejected; // a reply to nothing outstanding
        return;
    }
    c.id[j % w] = 0;
    --c.in_flight;
    const bool ok = text.find("\"ok\":true") != std::string_view::npos;
    uint32_t code = 0;
    if (!ok) {
        const std::size_t code_at = text.find("\"code\":");
        code = code_at == std::string_view::npos
                   ? 0
                   : uint32_t(parse_digits(text.substr(code_at + 7, 8)));
    }
    answer(c, j, 1, ok, code);
    // Bounded by the window: oldest moves at most W frames.
    while (c.oldest < c.next && c.id[c.oldest % w] == 0) {
        ++c.oldest;
    }
    c.tail = c.oldest < c.next ? c.start[c.oldest % w] : c.head;
}

void fanout_publisher::on_ws_closed(uint32_t slot) noexcept {
    lose(_conns[slot - _first_slot]);
}

void fanout_publisher::answer(connection& c, uint64_t first, uint32_t count, bool ok,
                              uint32_t status) noexcept {
    if (!ok) {
        _rejected += count;
        _last_error = status;
        return;
    }
    _accepted += count;
    for (uint64_t j = first; j < first + count; ++j) {
        ++_accepted_by_channel[channel_of(c, j)];
    }
}

void fanout_publisher::lose(connection& c) noexcept {
    if (!c.alive) {
        return;
    }
    c.alive = false;
    ++_connections_lost;
    if (c.fd >= 0) {
        ::close(c.fd);
        c.fd = -1;
    }
}

uint64_t fanout_publisher::unanswered() const noexcept {
    uint64_t n = 0;
    for (const auto& c : _conns) {
        if (!c.alive) {
            continue;
        }
        if (_config.ws) {
            n += c.in_flight;
            continue;
        }
        for (uint32_t i = 0; i < c.fifo_count; ++i) {
            n += c.fifo[(c.fifo_head + i) % _config.window].count;
        }
    }
    return n;
}

} // namespace ringcast::bench
