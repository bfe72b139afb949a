// One connection to Redis on the shard's ring: include/ringcast/redis.h (link) draws its
// states. What it does per event:
//
//   on_connect_result ok ─► handshake: [AUTH] [SELECT] CLIENT SETNAME, pipelined
//   on_data ─► reader ─► "message" array? on_push : the oldest request's on_reply
//   on_timer (every second) ─► oldest request past reply_timeout? close : idle? PING;
//                              then the owner's on_tick
//   on_closed ─► every pending request answered null ─► on_down (if it was up) ─► backoff
//
// Reconnects never stop until stop(): the delay doubles from backoff_base_ms to
// backoff_cap_ms, drawn from [delay/2, delay] so that nodes restarted together do not
// reconnect together.
#include <ringcast/log.h>
#include <ringcast/redis.h>

#include <hiredis/hiredis.h>

#include <algorithm>

namespace ringcast::redis {

namespace {

/// Requests whose output has not left this many bytes ago make send() refuse: Redis is
/// not reading, and the shard must not buffer without bound for it.
constexpr std::size_t max_unsent_bytes = std::size_t{64} << 20;
constexpr uint64_t timer_period_ms = 1000;

bool is_push(const redisReply& r) noexcept {
    const auto items = elements_of(r);
    if (items.empty() || items[0] == nullptr) {
        return false;
    }
    const std::string_view kind = text_of(*items[0]);
    return kind == "message" || kind == "pmessage" || kind == "smessage";
}

} // namespace

link::link(core::conn_io& io, core::outbound_connector& connector, const redis_target& target,
           std::string name, link_owner& owner, link_timing timing)
    : _io(io), _connector(connector), _target(target), _name(std::move(name)), _owner(owner),
      _timing(timing),
      _backoff(timing.backoff_base_ms, timing.backoff_cap_ms,
               reinterpret_cast<uintptr_t>(this) ^ (core::monotonic_us() * 0x9E3779B97F4A7C15ull)) {
}

link::~link() = default;

void link::start() noexcept {
    if (_state == state::idle && !_have_handle) {
        connect_after(0);
    }
}

void link::stop() noexcept {
    _state = state::stopped;
    if (_have_handle) {
        _io.close(_h, core::close_mode::now);
    }
}

void link::connect_after(uint32_t delay_ms) noexcept {
    core::outbound_target to;
    to.address = _target.address;
    to.connect_timeout_ms = _timing.connect_timeout_ms;
    to.delay_ms = delay_ms;
    result<conn_handle> h = _connector.connect(to, *this);
    if (!h) {
        // No slot or the shard is stopping: nothing follows, so no retry either until the
        // owner sends again (send() in idle tries once more).
        ++_stats.connect_failures;
        _state = state::idle;
        RINGCAST_LOG(log::level::warn, "redis_connect_failed")
            .field("link", _name)
            .msg("redis %s: cannot start a connection to %s: %s", _name.c_str(),
                 _target.host.c_str(), h.error().message().c_str());
        return;
    }
    _h = *h;
    _have_handle = true;
    _state = state::connecting;
}

void link::on_connect_result(conn_handle h, std::error_code error) noexcept {
    if (error) {
        ++_stats.connect_failures;
        RINGCAST_LOG_EVERY(log::level::warn, "redis_connect_failed", 1, 10000)
            .field("link", _name)
            .msg("redis %s: connect to %s failed: %s", _name.c_str(), _target.host.c_str(),
                 error.message().c_str());
        return; // on_closed follows and schedules the retry
    }
    if (_state == state::stopped) {
        _io.close(h, core::close_mode::now);
        return;
    }
    _state = state::handshaking;
    _reader.reset();
    _last_rx_ms = _io.now_ms();
    _handshake_left = 0;
    if (!_target.password.empty()) {
        if (_target.username.empty()) {
            const std::string_view args[] = {"AUTH", _target.password};
            write(args, handshake_tag);
        } else {
            const std::string_view args[] = {"AUTH", _target.username, _target.password};
            write(args, handshake_tag);
        }
        ++_handshake_left;
    }
    if (_target.db != 0) {
        const std::string db = std::to_string(_target.db);
        const std::string_view args[] = {"SELECT", db};
        write(args, handshake_tag);
        ++_handshake_left;
    }
    const std::string client_name = "ringcast-" + _name;
    const std::string_view args[] = {"CLIENT", "SETNAME", client_name};
    write(args, handshake_tag);
    ++_handshake_left;
    arm_timer();
}

void link::write(std::span<const std::string_view> args, uint64_t tag) noexcept {
    _out.clear();
    append_command(_out, args);
    _io.send(_h, core::make_frame(_out));
    _pending.push_back(sent{tag, _io.now_ms()});
    _stats.pending = _pending.size();
}

bool link::send(std::span<const std::string_view> args, uint64_t tag) noexcept {
    if (_state == state::idle && !_have_handle) {
        connect_after(0); // a connect that could not even start: try again now
        return false;
    }
    if (_state != state::up || _pending.size() >= max_pending ||
        _io.queued_bytes(_h) > max_unsent_bytes) {
        return false;
    }
    ++_stats.requests;
    write(args, tag);
    return true;
}

void link::fail(std::string_view why) noexcept {
    RINGCAST_LOG_EVERY(log::level::warn, "redis_link_failed", 1, 10000)
        .field("link", _name)
        .field("reason", why)
        .msg("redis %s: closing the connection to %s: %.*s", _name.c_str(),
             _target.host.c_str(), int(why.size()), why.data());
    if (_state != state::stopped) {
        _state = state::connecting; // refuses sends until on_closed
    }
    _io.close(_h, core::close_mode::now);
}

void link::on_data(conn_handle, std::span<std::byte> bytes) noexcept {
    _last_rx_ms = _io.now_ms();
    if (!_reader.feed(bytes)) {
        return fail("reply larger than the reader's bound");
    }
    std::string error;
    while (_have_handle && (_state == state::handshaking || _state == state::up)) {
        reply_ptr r = _reader.next(error);
        if (!r) {
            if (!error.empty()) {
                fail(error);
            }
            return;
        }
        if (is_push(*r)) {
            ++_stats.pushes;
            if (_state == state::up) {
                _owner.on_push(*this, *r);
            }
            continue;
        }
        if (_pending.empty()) {
            return fail("a reply nobody asked for");
        }
        const sent s = _pending.front();
        _pending.pop_front();
        _stats.pending = _pending.size();
        if (type_of(*r) == reply_type::error) {
            ++_stats.errors;
        }
        if (s.tag == handshake_tag) {
            if (type_of(*r) == reply_type::error) {
                const std::string why = "handshake refused: " + std::string(text_of(*r));
                return fail(why);
            }
            if (--_handshake_left == 0) {
                _state = state::up;
                _stats.up = true;
                _backoff.reset();
                ++_stats.connects;
                RINGCAST_LOG(log::level::info, "redis_up")
                    .field("link", _name)
                    .msg("redis %s: connected to %s", _name.c_str(), _target.host.c_str());
                _owner.on_up(*this);
            }
            continue;
        }
        if (s.tag == ping_tag) {
            continue;
        }
        _owner.on_reply(*this, s.tag, r.get());
    }
}

void link::arm_timer() noexcept {
    _io.set_timer(_h, core::conn_timer::liveness, _io.now_ms() + timer_period_ms);
}

bool link::wake_at(uint64_t deadline_ms) noexcept {
    if (_state != state::up) {
        return false;
    }
    // The connection's acks timer: a link has no acks of its own to time.
    _io.set_timer(_h, core::conn_timer::acks, deadline_ms);
    return true;
}

void link::on_timer(conn_handle, core::conn_timer which) noexcept {
    switch (which) {
    case core::conn_timer::liveness:
        break;
    case core::conn_timer::acks:
        if (_state == state::up) {
            _owner.on_wake(*this);
        }
        return;
    case core::conn_timer::expiry:
        return; // never armed on a link
    }
    const uint64_t now = _io.now_ms();
    if (!_pending.empty() && now >= _pending.front().at_ms + _timing.reply_timeout_ms) {
        return fail("no reply in time");
    }
    if (_state == state::up && _pending.empty() && now >= _last_rx_ms + _timing.ping_idle_ms) {
        const std::string_view args[] = {"PING"};
        write(args, ping_tag);
    }
    arm_timer();
    if (_state == state::up) {
        _owner.on_tick(*this);
    }
}

void link::on_shutdown(conn_handle h) noexcept {
    _state = state::stopped;
    _io.close(h, core::close_mode::now);
}

void link::on_closed(conn_handle) noexcept {
    const bool was_up = _stats.up;
    const bool stopped = _state == state::stopped;
    // Neither idle (send() would start a second connect) nor up while the owner hears.
    _state = stopped ? state::stopped : state::connecting;
    _have_handle = false;
    _stats.up = false;
    // Answered null in order: the owner fails publishes and reads, re-sends the rest later.
    std::deque<sent> pending = std::move(_pending);
    _pending.clear();
    _stats.pending = 0;
    for (const sent& s : pending) {
        if (s.tag != handshake_tag && s.tag != ping_tag) {
            _owner.on_reply(*this, s.tag, nullptr);
        }
    }
    if (was_up) {
        ++_stats.disconnects;
        RINGCAST_LOG(log::level::warn, "redis_down")
            .field("link", _name)
            .msg("redis %s: connection to %s lost; reconnecting", _name.c_str(),
                 _target.host.c_str());
        _owner.on_down(*this);
    }
    if (stopped || _state == state::stopped) {
        return;
    }
    connect_after(_backoff.next_ms());
}

} // namespace ringcast::redis
