// The pubsub engine of one shard: the facade that owns its three parts — subscriptions
// (subscriptions.h), ordering (ordering.h) and fanout (fanout.h) — and carries what goes
// between them: the session registry, a publish's way to its channel's home shard and its
// answer back, the interest round trip between this shard's subscriptions and a home's
// ordering, the mesh handlers, and the queries the backend API gathers. The command path
// is in commands.cc; include/ringcast/pubsub.h (engine) draws how a message flows, and
// engine_types.h lists the mesh kinds.
//
//   publish ─► route ─► home here? ─yes─► order ─► ordering (offset) ─► fanout ─► finish
//                          └─no─► (publish) ─► home: order ─► (published) ─► finish
//   subscribe's first waiter ─► relay ─► send_interest ─► home here? on_interest : (interest)
//   on_interest ─► ordering ─► gained: confirm (here) or (confirmed) ─► confirm_interest
#include "acks.h"
#include "engine_types.h"
#include "fanout.h"
#include "ordering.h"
#include "subscriptions.h"

#include <ringcast/ws.h>

#include <sys/random.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <limits>
#include <memory>

namespace ringcast::pubsub {

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

uint64_t epoch_instance() noexcept {
    // Start milliseconds and 16 random bits: a restart gets new epochs even within the
    // same second (seconds alone repeated them: tests/integration/recovery.py), and two
    // processes started in the same millisecond still differ.
    uint16_t nonce = 0;
    if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce)) {
        nonce = static_cast<uint16_t>(wall_clock_ms() * 2654435761u);
    }
    return (wall_clock_ms() << 16) | nonce;
}

channel_rules with_offline(const config& cfg) {
    // Offline messages are the user: channels' history (a namespace --namespace cannot
    // name): the same ring, ttl and budget.
    channel_rules rules = cfg.channels;
    if (cfg.offline_messages > 0) {
        rules.by_namespace.emplace_back("user",
                                        channel_policy{cfg.offline_messages, cfg.offline_ttl_s});
    }
    return rules;
}

session::session() = default;
session::~session() = default;

/// Carries the interest changes of this shard's subscriptions to the channels' home shards.
struct engine::interest_relay final : interest_sink {
    explicit interest_relay(engine& e) : owner(e) {}
    void interest_changed(std::string_view channel, uint64_t generation,
                          interest_change change) override {
        owner.send_interest(channel, generation, change);
    }
    void member_changed(const local_channel& ch, const session& s,
                        member_change change) override {
        owner.send_member(ch.name, s, change); // presence
    }
    engine& owner;
};

/// Hands the broker's reports to the engine's private handlers.
struct engine::broker_relay final : broker_events {
    explicit broker_relay(engine& e) : owner(e) {}
    void on_ordered(uint64_t token, std::string_view epoch, uint64_t offset,
                    std::string_view reason) noexcept override {
        owner.on_ordered(token, epoch, offset, reason);
    }
    void on_message(const broker_message& m) noexcept override { owner.on_broker_message(m); }
    void on_point(std::string_view channel, std::string_view epoch,
                  uint64_t offset) noexcept override {
        owner.on_point(channel, epoch, offset);
    }
    void on_point_lost(std::string_view channel) noexcept override {
        owner.on_point_lost(channel);
    }
    void on_history(uint64_t token, bool ok, std::string_view epoch, uint64_t offset,
                    std::span<const broker_message> messages) noexcept override {
        owner.on_history(token, ok, epoch, offset, messages);
    }
    void on_range(uint64_t token, bool ok, std::string_view epoch, uint64_t offset,
                  uint64_t first, std::span<const broker_message> messages) noexcept override {
        owner.on_range(token, ok, epoch, offset, first, messages);
    }
    void on_presence(std::string_view channel, std::string_view user, bool joined,
                     uint64_t users) noexcept override {
        owner.on_broker_presence(channel, user, joined, users);
    }
    void on_presence_page(uint64_t token, bool ok, const presence_page& page) noexcept override {
        owner.on_presence_page(token, ok, page);
    }
    void on_members_lost() noexcept override { owner.on_members_lost(); }
    void on_broadcast(std::string_view text, priority prio) noexcept override {
        owner.on_node_broadcast(text, prio);
    }
    engine& owner;
};

engine::engine(core::conn_io& io, const config& cfg, auth::verifier* tokens, broker* nodes)
    : _io(io),
      _config(cfg),
      _tokens(tokens),
      _start_s(static_cast<uint32_t>(wall_clock_ms() / 1000)),
      _relay(std::make_unique<interest_relay>(*this)),
      _subscriptions(std::make_unique<subscriptions>(*_relay)),
      _ordering(std::make_unique<ordering>(io.id(), io.shards(), epoch_instance(),
                                           cfg.max_idle_channels, with_offline(cfg),
                                           cfg.history_budget_bytes)),
      _fanout(std::make_unique<fanout>(io, *_subscriptions, cfg.slow_consumer_bytes, _start_s,
                                       cfg.ack_timeout_ms, cfg.deflate_threshold_bytes,
                                       &_config.socketio)),
      _broker(nodes) {
    if (_broker != nullptr) {
        _broker_relay = std::make_unique<broker_relay>(*this);
        _broker->set_events(_broker_relay.get());
    }
    auto& receivers = _io.mesh_receivers();
    receivers.on<kinds::interest>(*this);
    receivers.on<kinds::confirmed>(*this);
    receivers.on<kinds::publish>(*this);
    receivers.on<kinds::published>(*this);
    receivers.on<kinds::deliver>(*this);
    // Recovery on user: channels too, where offline messages keep history.
    _config.channels = with_offline(cfg);
    receivers.on<kinds::recover>(*this);
    receivers.on<kinds::recovered>(*this);
    receivers.on<kinds::acked>(*this);
    // presence (presence.cc)
    receivers.on<kinds::member>(*this);
    receivers.on<kinds::presence_ask>(*this);
    receivers.on<kinds::presence_answer>(*this);
}

engine::~engine() = default;

void engine::reload(const config& cfg, auth::verifier* tokens) {
    const std::size_t history_budget = _config.history_budget_bytes;
    const uint32_t max_idle = _config.max_idle_channels;
    channel_rules rules = with_offline(cfg);
    // Presence and acks can be switched on live, not off: members already counted would
    // never leave the home's count, and messages waiting for acks could not be acked
    // (docs/operations.md "Reload"). A namespace that had them keeps them until a restart.
    for (const auto& old : _config.channels.by_namespace) {
        const std::string& name = old.first; // not a structured binding: clang 14 cannot
        const channel_policy& before = old.second; // capture those in a lambda
        if (!before.presence && !before.ack) {
            continue;
        }
        auto it = std::find_if(rules.by_namespace.begin(), rules.by_namespace.end(),
                               [&](const auto& r) { return r.first == name; });
        if (it == rules.by_namespace.end()) {
            rules.by_namespace.emplace_back(name, channel_policy{});
            it = std::prev(rules.by_namespace.end());
        }
        it->second.presence = it->second.presence || before.presence;
        it->second.ack = it->second.ack || before.ack;
    }
    _config = cfg;
    _config.history_budget_bytes = history_budget; // sizes of the parts: as started
    _config.max_idle_channels = max_idle;
    _config.channels = std::move(rules);
    _tokens = tokens;
    _ordering->set_rules(_config.channels);
    _fanout->set_limits(cfg.slow_consumer_bytes, cfg.ack_timeout_ms);
}

// --- sessions -----------------------------------------------------------------------------

void engine::open_session(conn_handle h, session& s, std::string_view user_id, bool backend,
                          sys_access sys) {
    s._user_id = std::string(user_id);
    s._backend = backend;
    s._sys = sys == sys_access::yes;
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

void engine::open_session(conn_handle h, session& s, auth::identity who) {
    RINGCAST_ASSERT(_config.namespaces != nullptr && valid_user_id(who.user_id));
    arm_expiry(h, who);
    const std::string user_id = who.user_id;
    s._identity = std::make_unique<auth::identity>(std::move(who));
    open_session(h, s, user_id, false);
}

void engine::arm_expiry(conn_handle h, const auth::identity& who) noexcept {
    if (!who.expires_at_s) {
        return;
    }
    // The verifier accepts a token while now < exp + leeway (wall clock); the timer runs on
    // the monotonic clock, so the remaining time is carried over once, here.
    const int64_t leeway_s = _tokens != nullptr ? _tokens->options().leeway_s : 0;
    // Saturating: the verifier accepts any exp that fits int64_t, and exp + leeway in
    // milliseconds need not (a wrapped, negative end would close the session at once).
    int64_t end_s = 0;
    int64_t end_ms = 0;
    if (__builtin_add_overflow(*who.expires_at_s, leeway_s, &end_s)) {
        end_s = leeway_s > 0 ? std::numeric_limits<int64_t>::max()
                             : std::numeric_limits<int64_t>::min();
    }
    if (__builtin_mul_overflow(end_s, int64_t{1000}, &end_ms)) {
        end_ms = end_s > 0 ? std::numeric_limits<int64_t>::max()
                           : std::numeric_limits<int64_t>::min();
    }
    const auto now_wall_ms = static_cast<int64_t>(wall_clock_ms());
    // Capped (~35 years) so the monotonic deadline cannot wrap, however far away exp is.
    const uint64_t left_ms = end_ms > now_wall_ms
                                 ? std::min(static_cast<uint64_t>(end_ms - now_wall_ms),
                                            uint64_t{1} << 50)
                                 : 0;
    _io.set_timer(h, core::conn_timer::expiry, _io.now_ms() + left_ms);
}

void engine::close_session(conn_handle h, session& s) noexcept {
    // O(this session's subscriptions and pending subscribes): nothing here walks the
    // shard's channels.
    _subscriptions->close(h, s);
    _fanout->release(s);
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

// --- what the backend API gathers ---------------------------------------------------------

uint64_t engine::broadcast_local(const core::frame_ref& f, priority prio) noexcept {
    return _fanout->broadcast(_sessions, f, prio);
}

uint64_t engine::disconnect_user(std::string_view user_id, uint16_t code, std::string_view reason) {
    auto it = _users.find(user_id);
    if (it == _users.end()) {
        return 0;
    }
    const auto handles = it->second; // closing does not change the map until on_closed
    for (const conn_handle h : handles) {
        if (session* s = find_session(h); s != nullptr) {
            s->mark_closing(); // nothing may follow the close frame (RFC 6455 §5.5.1)
        }
        _fanout->close_sent(static_cast<ws::close_code>(code));
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
    return _subscriptions->channel_counts();
}

std::vector<std::pair<std::string, uint32_t>> engine::top_local_channels(std::size_t most) const {
    return _subscriptions->top_counts(most);
}

bool engine::watched(std::string_view channel) const noexcept {
    const home_channel* ch = _ordering->find(channel);
    return ch != nullptr && ch->interested_count > 0;
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

history_page engine::history(std::string_view channel, uint64_t since, std::size_t limit) {
    history_page page;
    const home_channel* ch = _ordering->find(channel);
    if (ch == nullptr) {
        return page;
    }
    page.found = true;
    page.epoch = ch->epoch;
    page.offset = ch->offset;
    page.first = ch->offset + 1;
    if (ch->history) {
        page.kept = true;
        page.frames = ch->history->after(since, limit, _io.now_ms() / 1000);
        page.first = ch->history->first_offset();
    }
    return page;
}

const core::latency_histogram& engine::publish_latency() const noexcept {
    return _fanout->stats().publish_to_send;
}

const ws::close_counts& engine::closes() const noexcept {
    return _fanout->stats().closes;
}

counters engine::stats() const noexcept {
    counters c = _counters;
    c.subscriptions = _subscriptions->subscription_count();
    c.local_channels = _subscriptions->channel_count();
    const delivery_stats& d = _fanout->stats();
    c.messages_out = d.messages_out;
    c.bytes_out = d.bytes_out;
    c.deflate_compressions = d.deflate_compressions;
    c.deflate_input_bytes = d.deflate_input_bytes;
    c.deflate_output_bytes = d.deflate_output_bytes;
    c.compressed_messages_out = d.compressed_messages_out;
    c.compressed_bytes_out = d.compressed_bytes_out;
    std::copy(std::begin(d.dropped), std::end(d.dropped), std::begin(c.dropped));
    c.slow_consumer_closes = d.slow_consumer_closes;
    c.home_channels = _ordering->size();
    c.idle_channels_evicted = _ordering->evicted();
    const history_stats& h = _ordering->history();
    c.history_messages = h.messages;
    c.history_bytes = h.bytes;
    c.history_channels = h.channels;
    c.history_evicted_count = h.evicted_count;
    c.history_evicted_age = h.evicted_age;
    c.history_evicted_budget = h.evicted_budget;
    c.ack_pending = d.ack_pending;
    c.acked = d.acked;
    c.ack_resent = d.ack_resent;
    c.ack_closes = d.ack_closes;
    return c;
}

// --- publishing: to the home shard, ordered, fanned out, answered ---------------------------

bool engine::accepts_work_for(std::string_view channel) const noexcept {
    const unsigned home_id = home_shard(channel, _io.shards());
    return home_id == unsigned(_io.id()) ||
           !_io.mesh_congested(shard_id(static_cast<uint16_t>(home_id)));
}

void engine::publish(const publish_request& req, std::string_view channel, publish_origin origin,
                     core::frame_ref data) {
    auto job = std::make_unique<publish_job>(publish_job{std::string(channel),
                                std::string(req.event),
                                data ? std::move(data) : core::make_frame(req.data),
                                std::string(req.user_id),
                                req.prio,
                                origin,
                                0});
    route(std::move(job));
}

void engine::route(std::unique_ptr<publish_job> job) {
    ++_counters.messages_in;
    job->accepted_us = core::monotonic_us();
    const unsigned home_id = home_shard(job->channel, _io.shards());
    if (home_id == unsigned(_io.id())) {
        if (_broker != nullptr) {
            return order_by_broker(std::move(job), home_id);
        }
        order(*job);
        finish_publish(job->origin, job->offset);
        return;
    }
    _io.post<kinds::publish>(shard_id(static_cast<uint16_t>(home_id)), std::move(job));
}

void engine::order(publish_job& job) {
    home_channel& ch = _ordering->order(job.channel);
    job.offset = ch.offset;
    ch.stamp_ms = std::max(ch.stamp_ms, wall_clock_ms());
    job.timestamp_ms = ch.stamp_ms;
    // Acks: the namespace's, or a critical message to a user (docs/protocol.md "Acks").
    job.ack = ch.ack || (job.prio == priority::critical && job.channel.starts_with("user:"));
    fan_out_ordered(job, ch);
}

void engine::fan_out_ordered(publish_job& job, home_channel& ch) {
    if (ch.interested_count > 0) {
        ch.delivered_through = ch.offset;
    }
    core::frame_ref f = _fanout->fan_out(job, ch.interested);
    if (ch.history) {
        ch.history->push(job.offset, std::move(f), _io.now_ms() / 1000, job.ack);
    }
}

void engine::finish_publish(const publish_origin& origin, uint64_t offset,
                            std::string_view failure) {
    if (origin.from == publish_origin::kind::api) {
        if (_listener != nullptr) {
            _listener->on_published(origin, offset, failure);
        }
        return;
    }
    if (origin.from == publish_origin::kind::bridge) {
        if (_bridge_listener != nullptr) {
            _bridge_listener->on_published(origin, offset, failure);
        }
        return;
    }
    session* s = find_session(origin.conn);
    if (s == nullptr) {
        return; // the publisher left meanwhile
    }
    --s->_publishing;
    fill_reply(origin.conn, *s, origin.index,
               offset == 0 ? reply_error(origin.has_id, origin.id, 503, failure)
                           : reply_ok(origin.has_id, origin.id,
                                      ",\"offset\":" + std::to_string(offset)));
    resume(origin.conn, *s);
}

// --- the interest round trip ----------------------------------------------------------------

void engine::send_interest(std::string_view channel, uint64_t generation,
                           interest_change change) {
    const unsigned home_id = home_shard(channel, _io.shards());
    if (home_id == unsigned(_io.id())) {
        return on_interest(home_id, channel, generation, change);
    }
    _io.post<kinds::interest>(shard_id(static_cast<uint16_t>(home_id)),
                              std::make_unique<interest_msg>(interest_msg{
                                  std::string(channel), {}, 0, generation,
                                  change == interest_change::gained}));
}

void engine::on_interest(unsigned from_shard, std::string_view channel, uint64_t generation,
                         interest_change change) {
    const home_channel* before = _ordering->find(channel);
    const bool was_unwanted = before == nullptr || before->interested_count == 0;
    home_channel& ch = _ordering->interest(from_shard, channel, change);
    switch (change) {
    case interest_change::lost:
        if (_broker != nullptr && ch.interested_count == 0 && ch.watching) {
            ch.watching = false;
            ch.point_known = false;
            ch.awaiting_point.clear(); // whoever waited lost interest since
            _broker->unwatch(channel);
        }
        return;
    case interest_change::gained:
        break;
    }
    if (was_unwanted && _listener != nullptr &&
        channel_namespace(channel) == auth::sys_namespace) {
        _listener->on_watched(channel);
    }
    if (_broker != nullptr) {
        // The node-wide order names the point (broker.cc); offline messages are the
        // broker's history, which a recovering subscribe reads (docs/scaling.md).
        return gain_by_broker(ch, from_shard, generation);
    }
    confirm_to(from_shard, ch, generation);
    if (was_unwanted && channel.starts_with("user:")) {
        deliver_offline(from_shard, ch);
    }
}

void engine::confirm_to(unsigned to_shard, const home_channel& ch, uint64_t generation) {
    if (to_shard == unsigned(_io.id())) {
        if (local_channel* local = _subscriptions->find(*ch.name);
            local != nullptr && local->generation == generation) {
            confirm_interest(*local, ch.epoch, ch.offset);
        }
    } else {
        _io.post<kinds::confirmed>(shard_id(static_cast<uint16_t>(to_shard)),
                                   std::make_unique<interest_msg>(interest_msg{
                                       *ch.name, ch.epoch, ch.offset, generation, true}));
    }
}

void engine::deliver_offline(unsigned to_shard, home_channel& ch) {
    // The user's first connection anywhere: what was ordered while nobody had one, and
    // what needed an ack and never got one (the connection that had it went), follow the
    // confirmation, in order, before any later message (the mesh's order per pair).
    if (!ch.history) {
        ch.delivered_through = ch.offset;
        return;
    }
    if (ch.delivered_through >= ch.offset && ch.acked_through >= ch.delivered_through) {
        return;
    }
    const std::vector<channel_history::item> items = ch.history->unconfirmed(
        ch.acked_through, ch.delivered_through, max_recover_messages, _io.now_ms() / 1000);
    for (const channel_history::item& it : items) {
        if (it.offset <= ch.delivered_through) {
            ++_counters.ack_replayed; // delivered before, never acknowledged
        } else {
            ++_counters.offline_delivered;
        }
        if (to_shard == unsigned(_io.id())) {
            _fanout->deliver_local(*ch.name, it.frame, priority::high, it.offset, it.ack);
        } else {
            _io.post<kinds::deliver>(shard_id(static_cast<uint16_t>(to_shard)),
                                     std::make_unique<delivery>(delivery{
                                         it.frame, *ch.name, priority::high, it.offset, it.ack}));
        }
    }
    ch.delivered_through = ch.offset;
}

// --- mesh ---------------------------------------------------------------------------------

void engine::on_mesh(kinds::interest, shard_id from, std::unique_ptr<interest_msg> m) noexcept {
    on_interest(unsigned(from), m->channel, m->generation,
                m->gained ? interest_change::gained : interest_change::lost);
}

void engine::on_mesh(kinds::confirmed, shard_id, std::unique_ptr<interest_msg> m) noexcept {
    local_channel* ch = _subscriptions->find(m->channel);
    if (ch != nullptr && !ch->confirmed && ch->generation == m->generation) {
        confirm_interest(*ch, m->epoch, m->offset);
    }
}

void engine::on_mesh(kinds::publish, shard_id from, std::unique_ptr<publish_job> job) noexcept {
    if (_broker != nullptr) {
        return order_by_broker(std::move(job), unsigned(from));
    }
    order(*job);
    _io.post<kinds::published>(from, std::move(job)); // the origin answers
}

void engine::on_mesh(kinds::published, shard_id, std::unique_ptr<publish_job> job) noexcept {
    finish_publish(job->origin, job->offset, job->failure);
}

void engine::on_mesh(kinds::deliver, shard_id, std::unique_ptr<delivery> d) noexcept {
    _fanout->deliver_local(d->channel, d->frame, d->prio, d->offset, d->ack, d->accepted_us);
}

void engine::on_mesh(kinds::recover, shard_id from, std::unique_ptr<recover_msg> m) noexcept {
    recover_at_home(unsigned(from), std::move(m));
}

void engine::on_mesh(kinds::recovered, shard_id, std::unique_ptr<recover_msg> m) noexcept {
    finish_recovery(*m);
    if (session* s = find_session(m->conn); s != nullptr) {
        resume(m->conn, *s);
    }
}

uint64_t engine::socketio_seq() const noexcept {
    return _fanout->socketio_seq();
}

std::optional<uint64_t> engine::socketio_position(std::string_view channel, std::string_view last,
                                                  uint64_t joined_offset,
                                                  uint64_t joined_seq) const noexcept {
    return _fanout->socketio_position(channel, last, joined_offset, joined_seq);
}

} // namespace ringcast::pubsub
