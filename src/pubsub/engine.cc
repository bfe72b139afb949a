// The pubsub engine of one shard: client commands, the channel index, home-shard ordering
// and fan-out by reference. See include/ringcast/pubsub.h part 2 for the model.
//
// Mesh kinds (core::mesh_message::kind) and who owns `ptr`:
//
//   interest    S → home   ptr: interest_msg*   S gained (flags=1) or lost (0) its first /
//                                               last local subscriber; home deletes it
//   confirmed   home → S   ptr: interest_msg*   the subscription point (epoch, offset);
//                                               S deletes it
//   publish     S → home   ptr: publish_job*    home orders it and sends it back
//   published   home → S   ptr: publish_job*    offset filled in; S answers and deletes it
//   deliver     home → T   ptr: delivery*       one ordered frame for T's local
//                                               subscribers; T deletes it
#include "engine_types.h"

#include <ringcast/ws.h>

#include <time.h>

#include <algorithm>
#include <cstdio>

namespace ringcast::pubsub {

namespace {

enum kind : uint16_t { interest = 1, confirmed, publish_kind, published, deliver_kind };

uint64_t wall_clock_ms() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

uint32_t wall_clock_s() noexcept {
    return static_cast<uint32_t>(wall_clock_ms() / 1000);
}

core::mesh_message message(kind k, void* ptr, uint16_t flags = 0) noexcept {
    core::mesh_message m;
    m.kind = k;
    m.flags = flags;
    m.ptr = ptr;
    return m;
}

std::string offset_fields(std::string_view channel, std::string_view epoch, uint64_t offset) {
    std::string out = ",\"channel\":\"";
    out.append(channel);
    out += "\",\"epoch\":\"";
    out.append(epoch);
    out += "\",\"offset\":";
    out += std::to_string(offset);
    return out;
}

} // namespace

unsigned home_shard(std::string_view name, unsigned shards) noexcept {
    // FNV-1a: stable across runs and builds, so a channel keeps its home after a restart.
    uint64_t h = 14695981039346656037ull;
    for (const char c : name) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ull;
    }
    return static_cast<unsigned>(h % shards);
}

engine::engine(core::conn_io& io, const config& cfg)
    : _io(io), _config(cfg), _start_s(wall_clock_s()) {}

engine::~engine() = default;

// --- sessions -----------------------------------------------------------------------------

void engine::open_session(conn_handle h, session& s, std::string_view user_id, bool backend) {
    s._user_id = std::string(user_id);
    s._backend = backend;
    s._tokens_milli = (backend ? _config.backend_command_burst : _config.command_burst) * 1000;
    s._refill_ms = _io.now_ms();
    s._registry_index = static_cast<uint32_t>(_sessions.size());
    _sessions.emplace_back(h, &s);
    ++_counters.sessions;
    if (!s._user_id.empty()) {
        _users[s._user_id].push_back(h);
        command join;
        join.op = command_op::subscribe;
        const std::string channel = "user:" + s._user_id;
        join.channel = channel;
        join.has_id = false;
        subscribe(h, s, join, reply_mode::silent);
    }
}

void engine::close_session(conn_handle h, session& s) noexcept {
    while (!s._subs.empty()) {
        remove_subscription(s, s._subs.size() - 1);
    }
    if (s._pending > 0) {
        for (auto& [name, ch] : _local) {
            std::erase_if(ch->waiting, [&](const pending_sub& p) { return p.h == h; });
        }
    }
    // Swap-remove from the registry.
    const uint32_t at = s._registry_index;
    RINGCAST_ASSERT(at < _sessions.size() && _sessions[at].second == &s);
    _sessions[at] = _sessions.back();
    _sessions[at].second->_registry_index = at;
    _sessions.pop_back();
    --_counters.sessions;
    if (!s._user_id.empty()) {
        if (auto it = _users.find(s._user_id); it != _users.end()) {
            std::erase(it->second, h);
            if (it->second.empty()) {
                _users.erase(it);
            }
        }
    }
}

bool engine::take_token(session& s) noexcept {
    const uint64_t now = _io.now_ms();
    // A backend session (API key) is a feed, not a client: it has its own, higher budget.
    const uint64_t cap =
        uint64_t(s._backend ? _config.backend_command_burst : _config.command_burst) * 1000;
    const uint64_t refill =
        (now - s._refill_ms) * (s._backend ? _config.backend_command_rate : _config.command_rate);
    s._refill_ms = now;
    s._tokens_milli = static_cast<uint32_t>(std::min<uint64_t>(cap, s._tokens_milli + refill));
    if (s._tokens_milli < 1000) {
        return false;
    }
    s._tokens_milli -= 1000;
    return true;
}

void engine::reply(conn_handle h, const std::string& text) noexcept {
    _io.send(h, ws::make_server_frame(ws::opcode::text, text));
}

void engine::on_text(conn_handle h, session& s, std::string_view text) {
    ++_counters.commands;
    auto parsed = parse_command(text);
    if (!parsed) {
        ++_counters.command_errors;
        const auto& e = parsed.error();
        return reply(h, reply_error(e.has_id, e.id, e.code, e.message));
    }
    const command& cmd = *parsed;
    if (!take_token(s)) {
        ++_counters.rate_limited;
        return reply(h, reply_error(cmd.has_id, cmd.id, 429, "too many commands; slow down"));
    }
    switch (cmd.op) {
    case command_op::subscribe:
        return subscribe(h, s, cmd, reply_mode::reply);
    case command_op::unsubscribe:
        return unsubscribe(h, s, cmd);
    case command_op::publish:
        return client_publish(h, s, cmd);
    case command_op::ping:
        return reply(h, reply_ok(cmd.has_id, cmd.id));
    }
}

// --- subscriptions ------------------------------------------------------------------------

void engine::subscribe(conn_handle h, session& s, const command& cmd, reply_mode mode) {
    const std::string_view channel = cmd.channel;
    if (channel.starts_with("user:") && channel.substr(5) != s._user_id) {
        return reply(h, reply_error(cmd.has_id, cmd.id, 403, "another user's channel"));
    }
    for (const auto& sub : s._subs) {
        if (sub.channel->name == channel) {
            if (mode == reply_mode::reply) {
                reply(h, reply_ok(cmd.has_id, cmd.id,
                                  offset_fields(channel, sub.channel->epoch, sub.channel->offset)));
            }
            return;
        }
    }
    if (s._subs.size() + s._pending >= _config.max_channels_per_connection) {
        return reply(h, reply_error(cmd.has_id, cmd.id, 403, "channel limit reached"));
    }
    auto [it, created] = _local.try_emplace(std::string(channel));
    if (created) {
        it->second = std::make_unique<local_channel>();
        it->second->name = it->first;
    }
    local_channel& ch = *it->second;
    if (ch.confirmed) {
        add_subscriber(ch, h, s);
        if (mode == reply_mode::reply) {
            reply(h, reply_ok(cmd.has_id, cmd.id, offset_fields(channel, ch.epoch, ch.offset)));
        }
        return;
    }
    ch.waiting.push_back({h, &s, cmd.has_id, cmd.id, mode});
    ++s._pending;
    if (created) {
        // First local subscriber: a round trip to the home shard fixes the point from which
        // this shard receives the channel's messages.
        const unsigned home_id = home_shard(channel, _io.shards());
        if (home_id == unsigned(_io.id())) {
            on_interest(home_id, channel, true);
        } else {
            auto* msg = new interest_msg{std::string(channel), {}, 0};
            _io.send_to_shard(shard_id(static_cast<uint16_t>(home_id)), message(interest, msg, 1));
        }
    }
}

void engine::add_subscriber(local_channel& ch, conn_handle h, session& s) {
    s._subs.push_back({&ch, static_cast<uint32_t>(ch.subscribers.size())});
    ch.subscribers.push_back({h, &s, static_cast<uint32_t>(s._subs.size() - 1)});
    ++_counters.subscriptions;
}

void engine::remove_subscription(session& s, std::size_t at) noexcept {
    local_channel* ch = s._subs[at].channel;
    const uint32_t index = s._subs[at].index;
    // Swap-remove in the channel, fixing the moved subscriber's back-reference...
    ch->subscribers[index] = ch->subscribers.back();
    ch->subscribers.pop_back();
    if (index < ch->subscribers.size()) {
        const auto& moved = ch->subscribers[index];
        moved.s->_subs[moved.sub_index].index = index;
    }
    // ...and in the session.
    s._subs[at] = s._subs.back();
    s._subs.pop_back();
    if (at < s._subs.size()) {
        const auto& moved = s._subs[at];
        moved.channel->subscribers[moved.index].sub_index = static_cast<uint32_t>(at);
    }
    --_counters.subscriptions;
    if (ch->subscribers.empty() && ch->waiting.empty()) {
        const std::string name = ch->name;
        _local.erase(name);
        const unsigned home_id = home_shard(name, _io.shards());
        if (home_id == unsigned(_io.id())) {
            on_interest(home_id, name, false);
        } else if (!_io.final_drain()) {
            auto* msg = new interest_msg{name, {}, 0};
            _io.send_to_shard(shard_id(static_cast<uint16_t>(home_id)), message(interest, msg, 0));
        }
    }
}

void engine::unsubscribe(conn_handle h, session& s, const command& cmd) {
    if (!s._user_id.empty() && cmd.channel == "user:" + s._user_id) {
        return reply(h, reply_error(cmd.has_id, cmd.id, 403, "cannot leave your own user channel"));
    }
    for (std::size_t i = 0; i < s._subs.size(); ++i) {
        if (s._subs[i].channel->name == cmd.channel) {
            remove_subscription(s, i);
            return reply(h, reply_ok(cmd.has_id, cmd.id));
        }
    }
    reply(h, reply_error(cmd.has_id, cmd.id, 404, "not subscribed"));
}

home_channel& engine::home(std::string_view channel) {
    auto [it, created] = _home.try_emplace(std::string(channel));
    if (created) {
        it->second = std::make_unique<home_channel>();
        char epoch[32];
        std::snprintf(epoch, sizeof(epoch), "%x%02x%x", _start_s, unsigned(_io.id()) & 0xff,
                      static_cast<unsigned>(++_epoch_seq));
        it->second->epoch = epoch;
        it->second->interested.assign(_io.shards(), false);
    }
    return *it->second;
}

void engine::on_interest(unsigned from_shard, std::string_view channel, bool interested) {
    home_channel& ch = home(channel);
    ch.interested[from_shard] = interested;
    if (!interested) {
        return;
    }
    if (from_shard == unsigned(_io.id())) {
        if (auto it = _local.find(channel); it != _local.end()) {
            confirm_interest(*it->second, ch.epoch, ch.offset);
        }
        return;
    }
    auto* msg = new interest_msg{std::string(channel), ch.epoch, ch.offset};
    _io.send_to_shard(shard_id(static_cast<uint16_t>(from_shard)), message(confirmed, msg));
}

void engine::confirm_interest(local_channel& ch, std::string_view epoch, uint64_t offset) {
    ch.confirmed = true;
    ch.epoch = std::string(epoch);
    ch.offset = offset;
    auto waiting = std::move(ch.waiting);
    ch.waiting.clear();
    for (const pending_sub& p : waiting) {
        --p.s->_pending;
        bool already = false;
        for (const auto& sub : p.s->_subs) {
            already = already || sub.channel == &ch;
        }
        if (!already) {
            add_subscriber(ch, p.h, *p.s);
        }
        if (p.mode == reply_mode::reply) {
            reply(p.h, reply_ok(p.has_id, p.id, offset_fields(ch.name, ch.epoch, ch.offset)));
        }
    }
}

// --- publishing ---------------------------------------------------------------------------

void engine::client_publish(conn_handle h, session& s, const command& cmd) {
    const std::string_view ns = channel_namespace(cmd.channel);
    const auto& allowed = _config.client_publish_namespaces;
    const bool permitted = s._backend || (!ns.empty() && std::find(allowed.begin(), allowed.end(),
                                                                   ns) != allowed.end());
    if (!permitted) {
        return reply(h, reply_error(cmd.has_id, cmd.id, 403,
                                    "publishing to this channel is not allowed for clients"));
    }
    if (cmd.channel.starts_with("user:") && !s._backend) {
        return reply(h, reply_error(cmd.has_id, cmd.id, 403, "user channels are server-only"));
    }
    auto* job = new publish_job{std::string(cmd.channel),
                                std::string(cmd.event),
                                std::string(cmd.data),
                                s._user_id,
                                cmd.prio,
                                {},
                                0};
    job->origin.from = publish_origin::kind::client;
    job->origin.conn = h;
    job->origin.has_id = cmd.has_id;
    job->origin.id = cmd.id;
    route(job);
}

void engine::publish(const publish_request& req, std::string_view channel, publish_origin origin) {
    auto* job = new publish_job{std::string(channel),
                                std::string(req.event),
                                std::string(req.data),
                                std::string(req.user_id),
                                req.prio,
                                origin,
                                0};
    route(job);
}

void engine::route(publish_job* job) {
    ++_counters.messages_in;
    const unsigned home_id = home_shard(job->channel, _io.shards());
    if (home_id == unsigned(_io.id())) {
        order(*job);
        finish_publish(job->origin, job->offset);
        delete job;
        return;
    }
    _io.send_to_shard(shard_id(static_cast<uint16_t>(home_id)), message(publish_kind, job));
}

std::string engine::next_message_id() {
    char id[48];
    std::snprintf(id, sizeof(id), "m-%x-%x-%llx", _start_s, unsigned(_io.id()),
                  static_cast<unsigned long long>(++_message_seq));
    return id;
}

void engine::order(publish_job& job) {
    home_channel& ch = home(job.channel);
    job.offset = ++ch.offset;
    const std::string id = next_message_id();
    envelope e;
    e.message_id = id;
    e.event = job.event;
    e.channel = job.channel;
    e.data = job.data;
    e.prio = job.prio;
    e.timestamp_ms = wall_clock_ms();
    e.user_id = job.user_id;
    e.offset = job.offset;
    // Frame once: the WebSocket header and the envelope in one shareable buffer.
    const std::size_t body = envelope_size(e);
    const std::size_t header = ws::frame_header_size(body);
    core::frame_ref f = core::make_frame(header + body);
    ws::write_frame_header(f->mutable_data(), ws::opcode::text, body);
    write_envelope(e, std::span(reinterpret_cast<char*>(f->mutable_data() + header), body));

    const unsigned self = unsigned(_io.id());
    for (unsigned shard = 0; shard < ch.interested.size(); ++shard) {
        if (!ch.interested[shard]) {
            continue;
        }
        if (shard == self) {
            deliver_local(job.channel, f, job.prio, job.offset);
        } else {
            auto* d = new delivery{f, job.channel, job.prio, job.offset};
            _io.send_to_shard(shard_id(static_cast<uint16_t>(shard)), message(deliver_kind, d));
        }
    }
}

void engine::finish_publish(const publish_origin& origin, uint64_t offset) {
    if (origin.from == publish_origin::kind::client) {
        reply(origin.conn,
              reply_ok(origin.has_id, origin.id, ",\"offset\":" + std::to_string(offset)));
    } else if (_listener != nullptr) {
        _listener->on_published(origin, offset);
    }
}

// --- delivery -----------------------------------------------------------------------------

void engine::deliver_local(std::string_view channel, const core::frame_ref& f, priority prio,
                           uint64_t offset) noexcept {
    auto it = _local.find(channel);
    if (it == _local.end()) {
        return; // the last local subscriber left while this was in flight
    }
    local_channel& ch = *it->second;
    ch.offset = offset;
    // Index loop: a slow-consumer close does not change the list (the session stays until
    // its connection is released), so positions are stable during the pass. The shard's
    // budget is read once per message, not per subscriber.
    const bool over = shard_over_budget();
    for (std::size_t i = 0; i < ch.subscribers.size(); ++i) {
        const auto& sub = ch.subscribers[i];
        if (!sub.s->_closing) {
            deliver(sub.h, *sub.s, f, prio, over);
        }
    }
}

bool engine::shard_over_budget() const noexcept {
    return _io.shard_queued_bytes() > _config.shard_queue_budget_bytes;
}

bool engine::deliver(conn_handle h, session& s, const core::frame_ref& f, priority prio,
                     bool shard_over) noexcept {
    // Backpressure (DESIGN §2.7): the connection's queued bytes decide. Priority 4 goes
    // first, then 3; 1 and 2 are never dropped: past the hard mark the connection closes.
    const std::size_t queued = _io.queued_bytes(h);
    const std::size_t hard = _config.slow_consumer_bytes;
    if (queued >= hard) {
        close_slow_consumer(h, s);
        return false;
    }
    const bool drop = (prio == priority::low && (queued >= hard / 2 || shard_over)) ||
                      (prio == priority::normal && (queued >= hard / 4 * 3 || shard_over));
    if (drop) {
        ++_counters.dropped[static_cast<unsigned>(prio)];
        return false;
    }
    ++_counters.messages_out;
    _counters.bytes_out += f->size();
    _io.send(h, f);
    return true;
}

uint64_t engine::broadcast_local(const core::frame_ref& f, priority prio) noexcept {
    uint64_t n = 0;
    const bool over = shard_over_budget();
    for (std::size_t i = 0; i < _sessions.size(); ++i) {
        auto [h, s] = _sessions[i];
        if (!s->_closing && deliver(h, *s, f, prio, over)) {
            ++n;
        }
    }
    return n;
}

void engine::close_slow_consumer(conn_handle h, session& s) noexcept {
    // Whatever has not started on the wire is dropped so the close frame is next; the
    // close timeout bounds how long we wait for a peer that never reads it.
    s._closing = true;
    ++_counters.slow_consumer_closes;
    _io.discard_queued(h);
    _io.send(h, ws::make_close_frame(ws::close_code::policy_violation, "slow consumer"));
    _io.close(h, core::close_mode::after_flush);
}

uint64_t engine::disconnect_user(std::string_view user_id, uint16_t code, std::string_view reason) {
    auto it = _users.find(user_id);
    if (it == _users.end()) {
        return 0;
    }
    const auto handles = it->second; // closing does not change the map until on_closed
    for (const conn_handle h : handles) {
        _io.send(h, ws::make_close_frame(static_cast<ws::close_code>(code), reason));
        _io.close(h, core::close_mode::after_flush);
    }
    return handles.size();
}

std::vector<std::pair<std::string, uint32_t>> engine::local_users() const {
    std::vector<std::pair<std::string, uint32_t>> out;
    out.reserve(_users.size());
    for (const auto& [user, handles] : _users) {
        out.emplace_back(user, static_cast<uint32_t>(handles.size()));
    }
    return out;
}

std::vector<std::pair<std::string, uint32_t>> engine::local_channels() const {
    std::vector<std::pair<std::string, uint32_t>> out;
    for (const auto& [name, ch] : _local) {
        if (!ch->subscribers.empty()) {
            out.emplace_back(name, static_cast<uint32_t>(ch->subscribers.size()));
        }
    }
    return out;
}

bool engine::home_info(std::string_view channel, uint64_t& offset, std::string& epoch) const {
    auto it = _home.find(channel);
    if (it == _home.end()) {
        return false;
    }
    offset = it->second->offset;
    epoch = it->second->epoch;
    return true;
}

// --- mesh ---------------------------------------------------------------------------------

void engine::on_mesh(shard_id from, const core::mesh_message& msg) noexcept {
    const bool final_drain = _io.final_drain();
    switch (msg.kind) {
    case interest: {
        std::unique_ptr<interest_msg> m(static_cast<interest_msg*>(msg.ptr));
        if (!final_drain) {
            on_interest(unsigned(from), m->channel, msg.flags != 0);
        }
        return;
    }
    case confirmed: {
        std::unique_ptr<interest_msg> m(static_cast<interest_msg*>(msg.ptr));
        if (auto it = _local.find(m->channel); it != _local.end() && !final_drain) {
            confirm_interest(*it->second, m->epoch, m->offset);
        }
        return;
    }
    case publish_kind: {
        auto* job = static_cast<publish_job*>(msg.ptr);
        if (final_drain) {
            delete job;
            return;
        }
        order(*job);
        _io.send_to_shard(from, message(published, job)); // the origin answers
        return;
    }
    case published: {
        std::unique_ptr<publish_job> job(static_cast<publish_job*>(msg.ptr));
        if (!final_drain) {
            finish_publish(job->origin, job->offset);
        }
        return;
    }
    case deliver_kind: {
        std::unique_ptr<delivery> d(static_cast<delivery*>(msg.ptr));
        if (!final_drain) {
            deliver_local(d->channel, d->frame, d->prio, d->offset);
        }
        return;
    }
    default:
        std::fprintf(stderr, "ringcastd: pubsub: unknown mesh kind %u\n", unsigned(msg.kind));
    }
}

} // namespace ringcast::pubsub
