// One AMQP 0-9-1 connection on the shard's ring: include/ringcast/amqp.h (link) draws its
// states. The handshake (§2.2.4, client side):
//
//   TCP open ─► "AMQP\0\0\x09\x01"
//   ◄─ connection.start     ─► connection.start-ok  PLAIN "\0user\0password", en_US
//   ◄─ connection.tune      ─► connection.tune-ok   channel-max 1, frame-max and heartbeat
//                           ─► connection.open      the vhost             (the smaller of
//   ◄─ connection.open-ok   ─► channel.open (1)                            ours and its)
//   ◄─ channel.open-ok      ─► up: the owner's on_open
//
// Then per event:
//   on_data ─► frames ─► channel 0: close (close-ok, leave), blocked (logged)
//                     ─► channel 1: deliver ─► header ─► body… ─► the owner's on_delivery
//                                   flow (flow-ok), close (close-ok, leave), the rest to
//                                   the owner's on_method
//   on_timer (every second) ─► handshake past its deadline? leave; nothing heard for two
//                              heartbeats? leave; nothing sent for half of one? heartbeat
//   on_closed ─► on_down (if it was up) ─► backoff ─► connect again
//
// A malformed frame or a method out of place closes the connection (counted as a protocol
// error); what was not acknowledged is the broker's to deliver again.
#include <ringcast/amqp.h>
#include <ringcast/log.h>

#include <algorithm>

namespace ringcast::amqp {

namespace {

constexpr uint64_t timer_period_ms = 1000;
/// Output not yet on the wire past which send() refuses: the broker is not reading, and the
/// shard must not buffer without bound for it. Acks are 21 bytes: 1 MiB is ~50 000 of them.
constexpr std::size_t max_unsent_bytes = std::size_t{1} << 20;
constexpr uint16_t channel = 1;

bool has_word(std::string_view list, std::string_view word) noexcept {
    std::size_t i = 0;
    while (i <= list.size()) {
        const std::size_t space = std::min(list.find(' ', i), list.size());
        if (list.substr(i, space - i) == word) {
            return true;
        }
        i = space + 1;
    }
    return false;
}

} // namespace

link::link(core::conn_io& io, core::outbound_connector& connector, const amqp_target& target,
           link_owner& owner, link_timing timing)
    : _io(io), _connector(connector), _target(target), _owner(owner), _timing(timing),
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
        // No slot or the shard is stopping: nothing follows; the owner's next wake_at is
        // refused and the bridge stays down (logged), as a Redis link does.
        ++_stats.connect_failures;
        _state = state::idle;
        RINGCAST_LOG(log::level::warn, "amqp_connect_failed")
            .msg("amqp: cannot start a connection to %s: %s", _target.host.c_str(),
                 h.error().message().c_str());
        return;
    }
    _h = *h;
    _have_handle = true;
    _state = state::connecting;
}

void link::on_connect_result(conn_handle h, std::error_code error) noexcept {
    if (error) {
        ++_stats.connect_failures;
        RINGCAST_LOG_EVERY(log::level::warn, "amqp_connect_failed", 1, 10000)
            .msg("amqp: connect to %s failed: %s", _target.host.c_str(),
                 error.message().c_str());
        return; // on_closed follows and schedules the retry
    }
    if (_state == state::stopped) {
        _io.close(h, core::close_mode::now);
        return;
    }
    _state = state::handshaking;
    _splitter.reset();
    _codec.recycle();
    _codec.recycle_content();
    _content = content::none;
    _heartbeat_ms = 0;
    _opened_ms = _last_rx_ms = _io.now_ms();
    _out.assign(protocol_header);
    flush();
    arm_timer();
}

void link::flush() noexcept {
    if (_out.empty() || !_have_handle) {
        _out.clear();
        return;
    }
    _io.send(_h, core::make_frame(_out));
    _out.clear();
    _last_tx_ms = _io.now_ms();
}

void link::write_method(uint16_t on, uint32_t id, void* arguments) noexcept {
    if (!append_method(_out, on, id, arguments)) {
        return fail("a method that does not encode", false);
    }
    flush();
}

bool link::send(uint32_t id, void* arguments) noexcept {
    if (_state != state::up || _io.queued_bytes(_h) > max_unsent_bytes) {
        return false;
    }
    if (!append_method(_out, channel, id, arguments)) {
        return false;
    }
    flush();
    return true;
}

void link::reconnect(std::string_view why) noexcept {
    if (_have_handle && (_state == state::handshaking || _state == state::up)) {
        fail(why, false);
    }
}

void link::fail(std::string_view why, bool protocol_error) noexcept {
    if (protocol_error) {
        ++_stats.protocol_errors;
    }
    RINGCAST_LOG_EVERY(log::level::warn, "amqp_link_failed", 1, 10000)
        .field("reason", why)
        .msg("amqp: leaving the connection to %s: %.*s", _target.host.c_str(),
             int(why.size()), why.data());
    if (_state != state::stopped) {
        _state = state::connecting; // refuses sends until on_closed
    }
    _io.close(_h, core::close_mode::now);
}

void link::on_data(conn_handle, std::span<std::byte> bytes) noexcept {
    _last_rx_ms = _io.now_ms();
    _splitter.feed(bytes);
    frame f;
    std::string_view error;
    while (_have_handle && (_state == state::handshaking || _state == state::up)) {
        const split_status s = _splitter.next(f, error);
        switch (s) {
        case split_status::need_more:
            return;
        case split_status::error:
            return fail(error, true);
        case split_status::frame:
            break;
        }
        const bool ok = on_frame(f);
        _codec.recycle();
        if (!ok) {
            return;
        }
    }
}

bool link::on_frame(const frame& f) noexcept {
    switch (f.type) {
    case frame_type::heartbeat:
        return true;
    case frame_type::header:
    case frame_type::body:
        return on_content(f);
    case frame_type::method:
        break;
    }
    uint32_t id = 0;
    void* arguments = nullptr;
    std::string_view error;
    if (!_codec.decode_method(f.payload, id, arguments, error)) {
        fail(error, true);
        return false;
    }
    const bool connection_class = (id >> 16) == AMQP_CONNECTION_CLASS;
    if (f.channel == 0 && connection_class) {
        return on_connection_method(id, arguments);
    }
    // §4.2.6: a channel's content frames follow its deliver with nothing between them.
    if (f.channel == channel && !connection_class && _content == content::none) {
        return on_channel_method(id, arguments);
    }
    fail("a method on a channel that does not carry it, or inside a delivery's content",
         true);
    return false;
}

bool link::on_connection_method(uint32_t id, const void* arguments) noexcept {
    switch (id) {
    case AMQP_CONNECTION_START_METHOD: {
        const auto& start = *static_cast<const amqp_connection_start_t*>(arguments);
        if (_state != state::handshaking || start.version_major != 0 || start.version_minor != 9) {
            fail("connection.start out of place or not AMQP 0-9", true);
            return false;
        }
        if (!has_word(view(start.mechanisms), "PLAIN")) {
            fail("the broker does not offer the PLAIN mechanism", false);
            return false;
        }
        // Capabilities: the broker's basic.cancel when the queue goes away (else the
        // consumer would wait on a deleted queue).
        amqp_table_entry_t capability[1];
        capability[0].key = bytes_of("consumer_cancel_notify");
        capability[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
        capability[0].value.value.boolean = 1;
        amqp_table_entry_t properties[2];
        properties[0].key = bytes_of("product");
        properties[0].value.kind = AMQP_FIELD_KIND_UTF8;
        properties[0].value.value.bytes = bytes_of("ringcast");
        properties[1].key = bytes_of("capabilities");
        properties[1].value.kind = AMQP_FIELD_KIND_TABLE;
        properties[1].value.value.table = amqp_table_t{1, capability};
        std::string response;
        response += '\0';
        response += _target.username;
        response += '\0';
        response += _target.password;
        amqp_connection_start_ok_t ok{};
        ok.client_properties = amqp_table_t{2, properties};
        ok.mechanism = bytes_of("PLAIN");
        ok.response = bytes_of(response);
        ok.locale = bytes_of("en_US");
        write_method(0, AMQP_CONNECTION_START_OK_METHOD, &ok);
        return _have_handle && _state == state::handshaking;
    }
    case AMQP_CONNECTION_TUNE_METHOD: {
        const auto& tune = *static_cast<const amqp_connection_tune_t*>(arguments);
        if (_state != state::handshaking) {
            fail("connection.tune out of place", true);
            return false;
        }
        // §1.4.2.6: 0 means "no limit" for frame-max and "no heartbeat" for heartbeat.
        const uint32_t frame_max =
            tune.frame_max == 0 ? frame_max_bytes : std::min(tune.frame_max, frame_max_bytes);
        const uint16_t heartbeat_s = static_cast<uint16_t>(
            tune.heartbeat == 0 ? _timing.heartbeat_s
                                : std::min<uint32_t>(tune.heartbeat, _timing.heartbeat_s));
        _splitter.set_max_frame_bytes(frame_max);
        _heartbeat_ms = uint32_t{heartbeat_s} * 1000;
        amqp_connection_tune_ok_t ok{};
        ok.channel_max = 1;
        ok.frame_max = std::max(frame_max, frame_min_bytes);
        ok.heartbeat = heartbeat_s;
        write_method(0, AMQP_CONNECTION_TUNE_OK_METHOD, &ok);
        amqp_connection_open_t open{};
        open.virtual_host = bytes_of(_target.vhost);
        open.capabilities = bytes_of("");
        write_method(0, AMQP_CONNECTION_OPEN_METHOD, &open);
        return _have_handle && _state == state::handshaking;
    }
    case AMQP_CONNECTION_OPEN_OK_METHOD: {
        if (_state != state::handshaking) {
            fail("connection.open-ok out of place", true);
            return false;
        }
        amqp_channel_open_t open{};
        open.out_of_band = bytes_of("");
        write_method(channel, AMQP_CHANNEL_OPEN_METHOD, &open);
        return _have_handle;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const auto& close = *static_cast<const amqp_connection_close_t*>(arguments);
        const std::string why = "the broker closed the connection: " +
                                std::to_string(close.reply_code) + " " +
                                std::string(view(close.reply_text));
        amqp_connection_close_ok_t ok{};
        write_method(0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        if (_have_handle) {
            fail(why, false);
        }
        return false;
    }
    case AMQP_CONNECTION_BLOCKED_METHOD:
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        // Blocks publishers only (RabbitMQ's resource alarms); a consumer reads on.
        RINGCAST_LOG_EVERY(log::level::info, "amqp_blocked", 1, 60000)
            .msg("amqp: the broker %s publishing on this connection (a consumer reads on)",
                 id == AMQP_CONNECTION_BLOCKED_METHOD ? "blocked" : "unblocked");
        return true;
    default:
        fail("a connection method out of place", true);
        return false;
    }
}

bool link::on_channel_method(uint32_t id, const void* arguments) noexcept {
    switch (id) {
    case AMQP_CHANNEL_OPEN_OK_METHOD:
        if (_state != state::handshaking) {
            fail("channel.open-ok out of place", true);
            return false;
        }
        _state = state::up;
        _stats.up = true;
        ++_stats.connects;
        RINGCAST_LOG(log::level::info, "amqp_up")
            .msg("amqp: connected to %s (vhost %s, heartbeat %u s)", _target.host.c_str(),
                 _target.vhost.c_str(), _heartbeat_ms / 1000);
        _owner.on_open(*this);
        return _have_handle && _state == state::up;
    case AMQP_CHANNEL_FLOW_METHOD: {
        amqp_channel_flow_ok_t ok{};
        ok.active = static_cast<const amqp_channel_flow_t*>(arguments)->active;
        write_method(channel, AMQP_CHANNEL_FLOW_OK_METHOD, &ok);
        return _have_handle;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const auto& close = *static_cast<const amqp_channel_close_t*>(arguments);
        const std::string why = "the broker closed the channel: " +
                                std::to_string(close.reply_code) + " " +
                                std::string(view(close.reply_text));
        amqp_channel_close_ok_t ok{};
        write_method(channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        if (_have_handle) {
            fail(why, false);
        }
        return false;
    }
    case AMQP_BASIC_DELIVER_METHOD: {
        if (_state != state::up) {
            fail("basic.deliver before the channel is open", true);
            return false;
        }
        const auto& d = *static_cast<const amqp_basic_deliver_t*>(arguments);
        _tag = d.delivery_tag;
        _redelivered = d.redelivered != 0;
        _consumer_tag.assign(view(d.consumer_tag));
        _exchange.assign(view(d.exchange));
        _routing_key.assign(view(d.routing_key));
        _content = content::want_header;
        return true;
    }
    default:
        if (_state != state::up) {
            fail("a channel method before the channel is open", true);
            return false;
        }
        _owner.on_method(*this, id, arguments);
        return _have_handle && _state == state::up;
    }
}

bool link::on_content(const frame& f) noexcept {
    if (f.channel != channel) {
        fail("content on a channel that has no delivery", true);
        return false;
    }
    if (f.type == frame_type::header) {
        std::string_view error;
        // librabbitmq's decoded strings point into the bytes decoded, and the splitter's
        // buffer moves with the next read: the properties must outlive the body frames, so
        // they are decoded from a copy of the header that stays until the delivery is out.
        _header.assign(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
        const std::span<const std::byte> header(reinterpret_cast<const std::byte*>(_header.data()),
                                                _header.size());
        if (_content != content::want_header ||
            !_codec.decode_header(header, _body_size, _properties, error)) {
            fail(_content != content::want_header ? "a content header out of place" : error,
                 true);
            return false;
        }
        _body_seen = 0;
        _body.clear();
        _content = content::want_body;
        if (_body_size == 0) {
            deliver();
        }
        return _have_handle && _state == state::up;
    }
    if (_content != content::want_body || f.payload.size() > _body_size - _body_seen) {
        fail("a body frame out of place or past the header's body size", true);
        return false;
    }
    _body_seen += f.payload.size();
    if (_body_size <= _max_body) {
        _body.append(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
    }
    if (_body_seen == _body_size) {
        deliver();
    }
    return _have_handle && _state == state::up;
}

void link::deliver() noexcept {
    delivery d;
    d.delivery_tag = _tag;
    d.redelivered = _redelivered;
    d.consumer_tag = _consumer_tag;
    d.exchange = _exchange;
    d.routing_key = _routing_key;
    d.properties = _properties;
    d.body_bytes = _body_size;
    d.body_too_large = _body_size > _max_body;
    d.body = d.body_too_large ? std::string_view{} : std::string_view(_body);
    _content = content::none;
    _owner.on_delivery(*this, d);
    _properties = nullptr;
    _codec.recycle_content();
    if (_body.capacity() > (std::size_t{64} << 10)) {
        std::string().swap(_body); // one large body does not stay held
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
    if (_state != state::handshaking && _state != state::up) {
        return;
    }
    const uint64_t now = _io.now_ms();
    if (_state == state::handshaking && now >= _opened_ms + _timing.handshake_timeout_ms) {
        return fail("the handshake did not finish in time", false);
    }
    if (_heartbeat_ms != 0) {
        if (now >= _last_rx_ms + 2 * uint64_t{_heartbeat_ms}) {
            return fail("nothing heard from the broker for two heartbeats", false);
        }
        if (now >= _last_tx_ms + _heartbeat_ms / 2) {
            append_heartbeat(_out);
            flush();
        }
    }
    arm_timer();
}

void link::on_shutdown(conn_handle h) noexcept {
    _state = state::stopped;
    _io.close(h, core::close_mode::now);
}

void link::on_closed(conn_handle) noexcept {
    const bool was_up = _stats.up;
    const bool stopped = _state == state::stopped;
    const bool opened = _state == state::handshaking || _state == state::connecting;
    _state = stopped ? state::stopped : state::connecting;
    _have_handle = false;
    _stats.up = false;
    _content = content::none;
    _properties = nullptr;
    _codec.recycle_content();
    if (was_up) {
        ++_stats.disconnects;
        RINGCAST_LOG(log::level::warn, "amqp_down")
            .msg("amqp: connection to %s lost; reconnecting", _target.host.c_str());
        _owner.on_down(*this);
    } else if (opened && _opened_ms != 0) {
        ++_stats.connect_failures; // opened but the handshake did not finish
    }
    _opened_ms = 0;
    if (stopped || _state == state::stopped) {
        return;
    }
    connect_after(_backoff.next_ms());
}

} // namespace ringcast::amqp
