// The pubsub engine of one shard, part 1: sessions, the command path and its order, the
// mesh dispatch and the queries the backend API gathers. Channels and subscriptions are in
// channel_index.cc, publishing and fan-out in publish.cc; include/ringcast/pubsub.h part 2
// has the model and engine_types.h the mesh kinds.
#include "engine_types.h"
#include "ordering.h"

#include <ringcast/ws.h>

#include <time.h>

#include <algorithm>
#include <cstdio>

namespace ringcast::pubsub {

/// One 429 reply a second for commands dropped over the rate: a client that floods learns
/// why, and its flood cannot turn into a flood of replies.
constexpr uint64_t rate_limit_reply_interval_ms = 1000;

uint64_t wall_clock_ms() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

unsigned home_shard(std::string_view name, unsigned shards) noexcept {
    // FNV-1a: stable across runs and builds, so a channel keeps its home after a restart.
    uint64_t h = 14695981039346656037ull;
    for (const char c : name) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ull;
    }
    return static_cast<unsigned>(h % shards);
}

session::session() = default;
session::~session() = default;

engine::engine(core::conn_io& io, const config& cfg)
    : _io(io),
      _config(cfg),
      _start_s(static_cast<uint32_t>(wall_clock_ms() / 1000)),
      _ordering(std::make_unique<ordering>(io.id(), io.shards(), _start_s,
                                           cfg.max_idle_channels)) {
    auto& receivers = _io.mesh_receivers();
    receivers.on<kinds::interest>(*this);
    receivers.on<kinds::confirmed>(*this);
    receivers.on<kinds::publish>(*this);
    receivers.on<kinds::published>(*this);
    receivers.on<kinds::deliver>(*this);
}

engine::~engine() = default;

// --- sessions -----------------------------------------------------------------------------

void engine::open_session(conn_handle h, session& s, std::string_view user_id, bool backend) {
    s._user_id = std::string(user_id);
    s._backend = backend;
    // A backend session (API key) is a feed, not a client: it has its own, higher budget.
    s._rate_limit_rate = backend ? _config.backend_command_rate : _config.command_rate;
    s._rate_limit_burst = backend ? _config.backend_command_burst : _config.command_burst;
    s._tokens_milli = s._rate_limit_burst * 1000;
    s._refill_ms = _io.now_ms();
    s._registry_index = static_cast<uint32_t>(_sessions.size());
    _sessions.emplace_back(h, &s);
    _by_slot[h.slot] = &s;
    ++_counters.sessions;
    if (!s._user_id.empty()) {
        _users[s._user_id].push_back(h);
        command join;
        join.op = command_op::subscribe;
        const std::string channel = "user:" + s._user_id;
        join.channel = channel;
        join.has_id = false;
        s._running = true;
        subscribe(h, s, join, reply_mode::silent);
        s._running = false;
        resume(h, s); // frees the reply slot's backlog when the join finished at once
    }
}

void engine::close_session(conn_handle h, session& s) noexcept {
    // O(this session's subscriptions and pending subscribes): nothing here walks the
    // shard's channels.
    while (!s._subs.empty()) {
        remove_subscription(s, s._subs.size() - 1);
    }
    cancel_pending(h, s);
    s._backlog.reset();
    // Swap-remove from the registry.
    const uint32_t at = s._registry_index;
    RINGCAST_ASSERT(at < _sessions.size() && _sessions[at].second == &s);
    _sessions[at] = _sessions.back();
    _sessions[at].second->_registry_index = at;
    _sessions.pop_back();
    _by_slot.erase(h.slot);
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

session* engine::find_session(conn_handle h) noexcept {
    auto it = _by_slot.find(h.slot);
    if (it == _by_slot.end() || _sessions[it->second->_registry_index].first != h) {
        return nullptr;
    }
    return it->second;
}

bool engine::take_token(session& s) noexcept {
    const uint64_t now = _io.now_ms();
    const uint64_t cap = uint64_t(s._rate_limit_burst) * 1000;
    const uint64_t refill = (now - s._refill_ms) * s._rate_limit_rate;
    s._refill_ms = now;
    s._tokens_milli = static_cast<uint32_t>(std::min<uint64_t>(cap, s._tokens_milli + refill));
    if (s._tokens_milli < 1000) {
        return false;
    }
    s._tokens_milli -= 1000;
    return true;
}

// --- the command path ---------------------------------------------------------------------

void engine::on_text(conn_handle h, session& s, std::string_view text) {
    ++_counters.commands;
    // Over the rate: dropped before any parsing, so a flood costs one bucket check each.
    if (!take_token(s)) {
        return refuse_over_rate(h, s);
    }
    if (s._backlog && !s._backlog->deferred.empty()) {
        return defer(h, s, text); // behind commands that are already waiting
    }
    auto parsed = parse_command(text);
    if (!parsed) {
        ++_counters.command_errors;
        const auto& e = parsed.error();
        return send_reply(h, s, reply_error(e.has_id, e.id, e.code, e.message));
    }
    if (!can_start(s, parsed->op)) {
        return defer(h, s, text);
    }
    run(h, s, *parsed);
    resume(h, s); // a command that finished at once may have freed what waited
}

bool engine::can_start(const session& s, command_op op) const noexcept {
    if (s._pending > 0) {
        return false;
    }
    return s._publishing == 0 ||
           (op == command_op::publish && s._publishing < max_publishes_in_flight);
}

void engine::run(conn_handle h, session& s, const command& cmd) {
    const bool outer = !s._running;
    s._running = true;
    switch (cmd.op) {
    case command_op::subscribe:
        subscribe(h, s, cmd, reply_mode::reply);
        break;
    case command_op::unsubscribe:
        unsubscribe(h, s, cmd);
        break;
    case command_op::publish:
        client_publish(h, s, cmd);
        break;
    case command_op::ping:
        send_reply(h, s, reply_ok(cmd.has_id, cmd.id));
        break;
    }
    if (outer) {
        s._running = false;
    }
}

void engine::resume(conn_handle h, session& s) {
    if (s._running || !s._backlog) {
        return;
    }
    s._running = true;
    auto& deferred = s._backlog->deferred;
    while (!deferred.empty()) {
        auto parsed = parse_command(deferred.front());
        if (parsed && !can_start(s, parsed->op)) {
            break;
        }
        // Parsing again is cheaper than keeping parsed commands: their views point into
        // the text, which moves out here and stays alive while the command runs.
        const std::string text = std::move(deferred.front());
        deferred.pop_front();
        s._backlog->deferred_bytes -= text.size();
        parsed = parse_command(text);
        if (!parsed) {
            ++_counters.command_errors;
            const auto& e = parsed.error();
            send_reply(h, s, reply_error(e.has_id, e.id, e.code, e.message));
            continue;
        }
        run(h, s, *parsed);
    }
    s._running = false;
    if (deferred.empty() && s._backlog->replies.empty()) {
        s._backlog.reset();
    }
}

void engine::defer(conn_handle h, session& s, std::string_view text) {
    if (!s._backlog) {
        s._backlog = std::make_unique<session_backlog>();
    }
    session_backlog& b = *s._backlog;
    if (b.deferred.size() >= max_deferred_commands ||
        b.deferred_bytes + text.size() > max_deferred_bytes) {
        ++_counters.backlog_refused;
        // The command is not parsed, so the reply cannot echo its id.
        return send_reply(h, s,
                          reply_error(false, 0, 429,
                                      "too many commands waiting for earlier ones; wait for "
                                      "replies before sending more"));
    }
    ++_counters.commands_waited;
    b.deferred.emplace_back(text);
    b.deferred_bytes += text.size();
}

void engine::refuse_over_rate(conn_handle h, session& s) {
    ++_counters.rate_limited;
    const uint64_t now = _io.now_ms();
    if (s._limit_reply_ms != 0 && now - s._limit_reply_ms < rate_limit_reply_interval_ms) {
        return; // counted; one reply a second says it
    }
    s._limit_reply_ms = now;
    send_reply(h, s,
               reply_error(false, 0, 429,
                           "too many commands; slow down (commands over the rate are dropped "
                           "unread)"));
}

// --- replies in command order -------------------------------------------------------------

void engine::reply(conn_handle h, const std::string& text) noexcept {
    _io.send(h, ws::make_server_frame(ws::opcode::text, text));
}

void engine::send_reply(conn_handle h, session& s, std::string text) {
    if (!s._backlog || s._backlog->replies.empty()) {
        return reply(h, text);
    }
    s._backlog->replies.push_back({true, std::move(text)});
}

uint32_t engine::reserve_reply(session& s) {
    if (!s._backlog) {
        s._backlog = std::make_unique<session_backlog>();
    }
    auto& b = *s._backlog;
    b.replies.push_back({});
    return b.first_slot + static_cast<uint32_t>(b.replies.size() - 1);
}

void engine::fill_reply(conn_handle h, session& s, uint32_t slot, std::string text) {
    RINGCAST_ASSERT(s._backlog);
    auto& b = *s._backlog;
    const uint32_t at = slot - b.first_slot;
    RINGCAST_ASSERT(at < b.replies.size() && !b.replies[at].ready);
    b.replies[at] = {true, std::move(text)};
    while (!b.replies.empty() && b.replies.front().ready) {
        if (!b.replies.front().text.empty()) {
            reply(h, b.replies.front().text);
        }
        b.replies.pop_front();
        ++b.first_slot;
    }
}

// --- what the backend API gathers ---------------------------------------------------------

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
    const home_channel* ch = _ordering->find(channel);
    if (ch == nullptr) {
        return false;
    }
    offset = ch->offset;
    epoch = ch->epoch;
    return true;
}

counters engine::stats() const noexcept {
    counters c = _counters;
    c.home_channels = _ordering->size();
    c.idle_channels_evicted = _ordering->evicted();
    return c;
}

// --- mesh ---------------------------------------------------------------------------------

void engine::on_mesh(kinds::interest, shard_id from, std::unique_ptr<interest_msg> m) noexcept {
    on_interest(unsigned(from), m->channel, m->generation,
                m->gained ? interest_change::gained : interest_change::lost);
}

void engine::on_mesh(kinds::confirmed, shard_id, std::unique_ptr<interest_msg> m) noexcept {
    auto it = _local.find(m->channel);
    if (it != _local.end() && !it->second->confirmed &&
        it->second->generation == m->generation) {
        confirm_interest(*it->second, m->epoch, m->offset);
    }
}

void engine::on_mesh(kinds::publish, shard_id from, std::unique_ptr<publish_job> job) noexcept {
    order(*job);
    _io.post<kinds::published>(from, std::move(job)); // the origin answers
}

void engine::on_mesh(kinds::published, shard_id, std::unique_ptr<publish_job> job) noexcept {
    finish_publish(job->origin, job->offset);
}

void engine::on_mesh(kinds::deliver, shard_id, std::unique_ptr<delivery> d) noexcept {
    deliver_local(d->channel, d->frame, d->prio, d->offset);
}

} // namespace ringcast::pubsub
