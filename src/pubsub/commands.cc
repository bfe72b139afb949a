// The pubsub engine's command path: what a /ws connection's commands do, in the order
// they were sent (see session in include/ringcast/pubsub.h for the flow). A command is rate
// limited, parsed, run — at once, or held back until the commands before it finish — and
// answered through reply slots, so replies leave in command order whichever shards
// answer. The subscribe commands check and answer here and change state through
// subscriptions (subscriptions.h); a publish leaves through engine::route (engine.cc).
#include "engine_types.h"
#include "fanout.h"
#include "ordering.h"
#include "subscriptions.h"

#include <ringcast/ws.h>

#include <algorithm>
#include <limits>
#include <string>

namespace ringcast::pubsub {

namespace {

/// One 429 reply a second for commands dropped over the rate: a client that floods learns
/// why, and its flood cannot turn into a flood of replies.
constexpr uint64_t rate_limit_reply_interval_ms = 1000;

/// A session without a token that the gateway did not grant sys_access (docs/security.md
/// "The dashboard and sys:stats").
constexpr std::string_view sys_refused =
    "sys channels need an admin token, an API key with the admin scope, or (on a server "
    "with neither) a connection from this host";

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

// --- the command path ---------------------------------------------------------------------

void engine::on_text(conn_handle h, session& s, std::string_view text) {
    // Over the rate: dropped before any parsing, so a flood costs one bucket check each.
    if (!take_token(s)) {
        ++_counters.commands;
        return refuse_over_rate(h, s);
    }
    on_own_text(h, s, text);
}

bool engine::over_rate(session& s) noexcept {
    refill(s);
    if (s._tokens_milli >= 1000) {
        return false;
    }
    ++_counters.commands;
    ++_counters.rate_limited;
    return true;
}

void engine::on_own_text(conn_handle h, session& s, std::string_view text) {
    ++_counters.commands;
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
    if (subscriptions::pending(s) > 0 || s._recovering > 0 ||
        s._asking_presence > 0 /* presence */) {
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
    case command_op::refresh:
        refresh(h, s, cmd);
        break;
    case command_op::ack:
        acknowledge(h, s, cmd);
        break;
    case command_op::presence:
        presence(h, s, cmd);
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

void engine::refill(session& s) noexcept {
    const uint64_t now = _io.now_ms();
    if (now <= s._refill_ms) {
        return; // in debt (charge_inflated) until then, or refilled this millisecond
    }
    const uint64_t cap = uint64_t(s._rate_limit_burst) * 1000;
    const uint64_t refill = (now - s._refill_ms) * s._rate_limit_rate;
    s._refill_ms = now;
    s._tokens_milli = static_cast<uint32_t>(std::min<uint64_t>(cap, s._tokens_milli + refill));
}

bool engine::take_token(session& s) noexcept {
    refill(s);
    if (s._tokens_milli < 1000) {
        return false;
    }
    s._tokens_milli -= 1000;
    return true;
}

bool engine::may_inflate(conn_handle h, session& s) {
    refill(s);
    if (s._tokens_milli >= 1000) {
        return true;
    }
    ++_counters.commands;
    refuse_over_rate(h, s);
    return false;
}

void engine::charge_inflated(session& s, std::size_t inflated_bytes) noexcept {
    if (inflated_bytes <= inflate_bytes_per_token || s._rate_limit_rate == 0) {
        return;
    }
    refill(s);
    const uint64_t want = uint64_t(inflated_bytes / inflate_bytes_per_token) * 1000;
    if (want <= s._tokens_milli) {
        s._tokens_milli -= static_cast<uint32_t>(want);
        return;
    }
    // The rest is owed: the refill clock moves ahead by the time the rate takes to pay it
    // (at most one message's worth: no message is inflated while the bucket is empty).
    const uint64_t owed = want - s._tokens_milli;
    s._tokens_milli = 0;
    s._refill_ms += (owed + s._rate_limit_rate - 1) / s._rate_limit_rate;
}


// --- replies in command order -------------------------------------------------------------

void engine::reply(conn_handle h, session& s, const std::string& text) noexcept {
    if (s._sink != nullptr) {
        return s._sink->on_reply(h, text);
    }
    _io.send(h, ws::make_server_frame(ws::opcode::text, text));
}

void engine::send_reply(conn_handle h, session& s, std::string text) {
    if (!s._backlog || s._backlog->replies.empty()) {
        return reply(h, s, text);
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
            reply(h, s, b.replies.front().text);
        }
        b.replies.pop_front();
        ++b.first_slot;
    }
}

// --- the subscribe commands ---------------------------------------------------------------

void engine::subscribe(conn_handle h, session& s, const command& cmd, reply_mode mode) {
    const std::string_view channel = cmd.channel;
    auto answer = [&](std::string text) {
        if (mode == reply_mode::reply) {
            send_reply(h, s, std::move(text));
        }
    };
    if (s._identity) {
        const auth::access_verdict v =
            auth::may_subscribe(*s._identity, channel, *_config.namespaces);
        if (!v.allowed) {
            ++_counters.permission_refused;
            return answer(reply_error(cmd.has_id, cmd.id, 403, v.reason));
        }
    } else if (channel.starts_with("user:") && channel.substr(5) != s._user_id) {
        return answer(reply_error(cmd.has_id, cmd.id, 403, "another user's channel"));
    } else if (channel_namespace(channel) == auth::sys_namespace && !s._sys) {
        ++_counters.permission_refused;
        return answer(reply_error(cmd.has_id, cmd.id, 403, sys_refused));
    }
    if (const local_channel* ch = _subscriptions->subscribed(s, channel); ch != nullptr) {
        return answer(reply_ok(cmd.has_id, cmd.id, offset_fields(channel, ch->epoch, ch->offset)));
    }
    if (subscriptions::held(s) >= _config.max_channels_per_connection) {
        ++_counters.channel_limit_refused;
        return answer(reply_error(cmd.has_id, cmd.id, 403, "channel limit reached"));
    }
    // Recovery only where the namespace keeps history (the same rules on every shard):
    // elsewhere "recover" gets "recovered":false on an ordinary subscribe.
    const bool recover = cmd.has_recover && mode == reply_mode::reply &&
                         _config.channels.find(channel).count > 0;
    const std::string_view not_recovered = cmd.has_recover ? ",\"recovered\":false" : "";
    local_channel* ch = _subscriptions->find(channel);
    if (ch != nullptr && ch->confirmed) {
        _subscriptions->add(*ch, h, s);
        if (recover) {
            return start_recovery(h, s, *ch, cmd.recover, cmd.has_id, cmd.id, reserve_reply(s));
        }
        if (cmd.has_recover) {
            ++_counters.recover_failed;
        }
        return answer(reply_ok(cmd.has_id, cmd.id,
                               offset_fields(channel, ch->epoch, ch->offset) +
                                   std::string(not_recovered)));
    }
    const unsigned home_id = home_shard(channel, _io.shards());
    if (ch == nullptr && home_id != unsigned(_io.id()) &&
        _io.mesh_congested(shard_id(static_cast<uint16_t>(home_id)))) {
        ++_counters.busy_refused;
        return answer(reply_error(cmd.has_id, cmd.id, 503, "server busy; retry the subscribe"));
    }
    // Answered when the home shard confirms (confirm_interest), in this reply slot.
    const uint32_t slot = reserve_reply(s);
    pending_sub p{h, &s, cmd.has_id, cmd.id, mode, slot};
    p.recover_asked = cmd.has_recover;
    p.recover = recover;
    p.recover_since = cmd.recover.offset;
    p.recover_epoch = std::string(cmd.recover.epoch);
    p.recover_by_time = cmd.recover.by_time;
    p.recover_since_ms = cmd.recover.since_ms;
    _subscriptions->wait(channel, ch, p);
}

void engine::unsubscribe(conn_handle h, session& s, const command& cmd) {
    if (!s._user_id.empty() && cmd.channel == "user:" + s._user_id) {
        return send_reply(h, s,
                          reply_error(cmd.has_id, cmd.id, 403,
                                      "cannot leave your own user channel"));
    }
    if (const local_channel* ch = _subscriptions->subscribed(s, cmd.channel); ch != nullptr) {
        _fanout->forget(s, *ch); // its unacknowledged messages are no longer owed
    }
    if (_subscriptions->remove(s, cmd.channel)) {
        return send_reply(h, s, reply_ok(cmd.has_id, cmd.id));
    }
    send_reply(h, s, reply_error(cmd.has_id, cmd.id, 404, "not subscribed"));
}

void engine::confirm_interest(local_channel& ch, std::string_view epoch, uint64_t offset) {
    const std::vector<pending_sub> waiting = _subscriptions->confirm(ch, epoch, offset);
    const auto recovers = [&](const pending_sub& p) {
        return p.recover && subscriptions::entry_of(ch, *p.s) != nullptr;
    };
    for (const pending_sub& p : waiting) {
        if (recovers(p)) {
            continue; // its recovery answers it, below
        }
        if (p.recover_asked) {
            ++_counters.recover_failed;
        }
        fill_reply(p.h, *p.s, p.slot,
                   p.mode == reply_mode::reply
                       ? reply_ok(p.has_id, p.id,
                                  offset_fields(ch.name, ch.epoch, ch.offset) +
                                      (p.recover_asked ? ",\"recovered\":false" : ""))
                       : std::string());
    }
    // Recoveries start from this subscription point, while `ch` is certainly valid: none
    // of them runs a command (a recovery answered at once does not resume its session).
    for (const pending_sub& p : waiting) {
        if (recovers(p)) {
            const recover_point from{p.recover_epoch, p.recover_since, p.recover_by_time,
                                     p.recover_since_ms};
            start_recovery(p.h, *p.s, ch, from, p.has_id, p.id, p.slot);
        }
    }
    // Only now may the sessions run what they held back: a command run earlier could
    // unsubscribe and erase `ch` while this loop still used it. A session may also have
    // closed meanwhile, hence the lookup by handle.
    for (const pending_sub& p : waiting) {
        if (session* s = find_session(p.h); s != nullptr) {
            resume(p.h, *s);
        }
    }
}

// --- recovery -------------------------------------------------------------------------------
//
// A subscribe with "recover" (docs/protocol.md "Recovery") joins the channel at its
// subscription point P like any other, but live messages skip it (entry::recovering) until
// the channel's home answers: the home takes everything after the client's offset O from
// history (or, when it cannot, everything after P it still has) up to its last offset H. By
// the mesh's order per shard pair, every live message up to H reached this shard before the
// answer and every later one comes after it; so the reply, the frames of the answer, then
// the live stream leave in offset order with no gap and no duplicate at the seam. Later
// commands of the session wait (_recovering), so nothing of it overtakes the reply.

void engine::start_recovery(conn_handle h, session& s, local_channel& ch,
                            const recover_point& from, bool has_id, uint64_t id, uint32_t slot) {
    local_channel::entry* e = subscriptions::entry_of(ch, s);
    RINGCAST_ASSERT(e != nullptr);
    if (++_recover_seq == 0) {
        ++_recover_seq;
    }
    e->recovering = _recover_seq;
    ++s._recovering;
    auto m = std::make_unique<recover_msg>();
    m->channel = ch.name;
    m->epoch = std::string(from.epoch);
    m->since = from.offset;
    m->by_time = from.by_time;
    m->since_ms = from.since_ms;
    m->point = ch.offset;
    m->conn = h;
    m->token = _recover_seq;
    m->has_id = has_id;
    m->id = id;
    m->slot = slot;
    const unsigned home_id = home_shard(ch.name, _io.shards());
    if (home_id == unsigned(_io.id())) {
        return recover_at_home(home_id, std::move(m));
    }
    _io.post<kinds::recover>(shard_id(static_cast<uint16_t>(home_id)), std::move(m));
}

void engine::recover_at_home(unsigned from_shard, std::unique_ptr<recover_msg> m) {
    if (_broker != nullptr && !answerable_here(*m)) {
        return read_by_broker(from_shard, std::move(m)); // answered in on_history
    }
    answer_recovery(*m);
    if (from_shard == unsigned(_io.id())) {
        return finish_recovery(*m); // at once: the session is running, no resume
    }
    _io.post<kinds::recovered>(shard_id(static_cast<uint16_t>(from_shard)), std::move(m));
}

void engine::answer_recovery(recover_msg& m) {
    const home_channel* ch = _ordering->find(m.channel);
    if (ch == nullptr || !ch->history) {
        // Not known here any more (never so while a shard is interested) or keeping no
        // history (the same rules on every shard): nothing to add after the point.
        m.recovered = false;
        m.offset = m.point;
        return;
    }
    channel_history& history = *ch->history;
    const uint64_t now_s = _io.now_ms() / 1000;
    history.expire(now_s);
    const uint64_t first = history.first_offset();
    if (m.by_time) {
        // The same point an offset would name, found by the stamps: after every retained
        // message stamped before since_ms. Complete only if nothing before the first
        // retained one could be at or after since_ms: it is stamped before, or none was
        // ever dropped (the epoch's offsets start at 1).
        const channel_history::stamped at = history.stamped_from(m.since_ms);
        m.epoch = at.complete || first == 1 ? ch->epoch : std::string();
        m.since = at.offset - 1;
    }
    m.recovered = m.epoch == ch->epoch && m.since <= ch->offset && first <= m.since + 1 &&
                  ch->offset - m.since <= max_recover_messages;
    // Not recovered: from the subscription point, or from what is left when the point's
    // successors are gone already; the reply says which.
    m.point = m.recovered ? m.since : std::min(std::max(m.point, first - 1), ch->offset);
    m.epoch = ch->epoch;
    m.offset = ch->offset;
    m.frames = history.after(m.point, std::numeric_limits<std::size_t>::max(), now_s);
}

void engine::finish_recovery(recover_msg& m) {
    session* s = find_session(m.conn);
    if (s == nullptr) {
        return; // closed meanwhile
    }
    --s->_recovering;
    local_channel* ch = _subscriptions->find(m.channel);
    if (ch != nullptr) {
        if (local_channel::entry* e = subscriptions::entry_of(*ch, *s);
            e != nullptr && e->recovering == m.token) {
            e->recovering = 0;
        }
        // The live stream resumes after the answer's last offset; a later local subscriber
        // starts there too.
        ch->offset = std::max(ch->offset, m.offset);
    }
    ++(m.recovered ? _counters.recovered : _counters.recover_failed);
    fill_reply(m.conn, *s, m.slot,
               reply_ok(m.has_id, m.id,
                        offset_fields(m.channel, m.epoch, m.point) +
                            (m.recovered ? ",\"recovered\":true" : ",\"recovered\":false")));
    // In a namespace that takes acks, recovered messages wait for theirs like live ones;
    // they are the offsets after the answer's point, one each.
    const bool ack = ch != nullptr && _config.channels.find(m.channel).ack;
    uint64_t offset = m.point;
    for (const core::frame_ref& f : m.frames) {
        _fanout->deliver_recovered(m.conn, *s, f, ch, ++offset, ack);
    }
    _counters.recovered_messages += m.frames.size();
}

// --- the publish command -------------------------------------------------------------------

void engine::client_publish(conn_handle h, session& s, const command& cmd) {
    if (channel_namespace(cmd.channel) == auth::sys_namespace) {
        return send_reply(h, s,
                          reply_error(cmd.has_id, cmd.id, 403,
                                      "sys channels are written by the server only"));
    }
    if (s._identity) {
        // Authenticated: the namespace rules alone decide (--client-publish is refused at
        // start together with JWT keys).
        const auth::access_verdict v =
            auth::may_publish(*s._identity, cmd.channel, *_config.namespaces);
        if (!v.allowed) {
            ++_counters.permission_refused;
            return send_reply(h, s, reply_error(cmd.has_id, cmd.id, 403, v.reason));
        }
    }
    const std::string_view ns = channel_namespace(cmd.channel);
    const auto& allowed = _config.client_publish_namespaces;
    const bool permitted =
        s._backend || s._identity ||
        (!ns.empty() && std::find(allowed.begin(), allowed.end(), ns) != allowed.end());
    if (!permitted) {
        return send_reply(h, s,
                          reply_error(cmd.has_id, cmd.id, 403,
                                      "publishing to this channel is not allowed for clients"));
    }
    if (cmd.channel.starts_with("user:") && !s._backend) {
        return send_reply(h, s,
                          reply_error(cmd.has_id, cmd.id, 403, "user channels are server-only"));
    }
    if (!accepts_work_for(cmd.channel)) {
        ++_counters.busy_refused;
        return send_reply(h, s, reply_error(cmd.has_id, cmd.id, 503, "server busy; retry"));
    }
    auto job = std::make_unique<publish_job>(publish_job{std::string(cmd.channel),
                                std::string(cmd.event),
                                core::make_frame(cmd.data),
                                s._user_id,
                                cmd.prio,
                                {},
                                0});
    job->origin.from = publish_origin::kind::client;
    job->origin.conn = h;
    job->origin.has_id = cmd.has_id;
    job->origin.id = cmd.id;
    job->origin.index = reserve_reply(s);
    ++s._publishing;
    route(std::move(job));
}

// --- the refresh command -------------------------------------------------------------------

void engine::refresh(conn_handle h, session& s, const command& cmd) {
    if (_tokens == nullptr || !s._identity) {
        ++_counters.refresh_refused;
        return send_reply(h, s,
                          reply_error(cmd.has_id, cmd.id, 400,
                                      s._backend ? "a backend session has no token to refresh"
                                                 : "authentication is off: no token to refresh"));
    }
    const auto now_s = static_cast<int64_t>(wall_clock_ms() / 1000);
    auto verified = _tokens->verify(cmd.token, now_s);
    if (!verified) {
        // The connection keeps its old token, and with it its deadline.
        ++_counters.refresh_refused;
        return send_reply(h, s, reply_error(cmd.has_id, cmd.id, 401, verified.error()));
    }
    if (verified->user_id != s._user_id) {
        ++_counters.refresh_refused;
        return send_reply(h, s, reply_error(cmd.has_id, cmd.id, 403, "token for another user"));
    }
    ++_counters.refreshes;
    *s._identity = std::move(*verified);
    // Every subscription is decided again under the new claims: those no longer allowed end,
    // each with a notice ahead of the reply. Names are copied first: remove() reorders _subs.
    std::vector<std::string> revoked;
    std::vector<std::string_view> reasons;
    for (const session::subscription& sub : s._subs) {
        const auth::access_verdict v =
            auth::may_subscribe(*s._identity, sub.channel->name, *_config.namespaces);
        if (!v.allowed) {
            revoked.push_back(sub.channel->name);
            reasons.push_back(v.reason);
        }
    }
    for (std::size_t i = 0; i < revoked.size(); ++i) {
        if (const local_channel* ch = _subscriptions->subscribed(s, revoked[i]); ch != nullptr) {
            _fanout->forget(s, *ch);
        }
        if (_subscriptions->remove(s, revoked[i])) {
            ++_counters.revoked_subscriptions;
            send_reply(h, s, notice_unsubscribed(revoked[i], reasons[i]));
        }
    }
    arm_expiry(h, *s._identity);
    std::string fields;
    if (s._identity->expires_at_s) {
        fields = ",\"expiresAt\":" + std::to_string(*s._identity->expires_at_s);
    }
    send_reply(h, s, reply_ok(cmd.has_id, cmd.id, fields));
}

} // namespace ringcast::pubsub
