// Presence (presence.h has the model): the member deltas from a shard's subscriptions to
// the channel's home, the home's members and its join / leave events, and the presence
// command's round trip (S asks the home, the home answers, S replies in the command's
// slot, as recovery does in commands.cc).
#include "presence.h"

#include "fanout.h"
#include "ordering.h"
#include "subscriptions.h"

#include <ringcast/ws.h>

#include <algorithm>
#include <memory>
#include <string>

namespace ringcast::pubsub {

// --- the members of one channel -------------------------------------------------------------

user_transition apply_member(channel_presence& p, std::string_view user_id, member_change change) {
    switch (change) {
    case member_change::joined:
        ++p.connections;
        if (user_id.empty()) {
            ++p.anonymous;
            return user_transition::none;
        }
        if (auto it = p.users.find(user_id); it != p.users.end()) {
            ++it->second;
            return user_transition::none;
        }
        p.users.emplace(std::string(user_id), 1);
        return user_transition::joined;
    case member_change::left:
        break;
    }
    if (user_id.empty()) {
        if (p.anonymous == 0) {
            return user_transition::none;
        }
        --p.anonymous;
        --p.connections;
        return user_transition::none;
    }
    auto it = p.users.find(user_id);
    if (it == p.users.end()) {
        return user_transition::none;
    }
    --p.connections;
    if (--it->second > 0) {
        return user_transition::none;
    }
    p.users.erase(it);
    return user_transition::left;
}

std::vector<std::pair<std::string, uint32_t>> member_entries(const channel_presence& p) {
    std::vector<std::pair<std::string, uint32_t>> out;
    out.reserve(p.users.size() + 1);
    for (const auto& [user, connections] : p.users) {
        out.emplace_back(user, connections);
    }
    if (p.anonymous > 0) {
        out.emplace_back(std::string(), static_cast<uint32_t>(p.anonymous));
    }
    return out;
}

presence_page presence_page_of(const channel_presence* p, presence_detail detail,
                               uint32_t max_listed) {
    presence_page page;
    if (p == nullptr) {
        return page;
    }
    page.users = p->users.size();
    page.connections = p->connections;
    page.anonymous = p->anonymous;
    page.listed = page.users <= max_listed;
    switch (detail) {
    case presence_detail::counts:
        return page;
    case presence_detail::members:
        break;
    }
    if (!page.listed) {
        return page;
    }
    page.members.reserve(p->users.size());
    for (const auto& [user, connections] : p->users) {
        page.members.emplace_back(user, connections);
    }
    std::sort(page.members.begin(), page.members.end());
    return page;
}

std::string presence_event_text(std::string_view channel, std::string_view user_id,
                                member_change change) {
    std::string out = R"({"op":"presence","type":")";
    switch (change) {
    case member_change::joined:
        out += "join";
        break;
    case member_change::left:
        out += "leave";
        break;
    }
    out += R"(","channel":")";
    out.append(channel);
    out += R"(","userId":")";
    out.append(user_id);
    out += "\"}";
    return out;
}

std::string presence_fields(std::string_view channel, const presence_page& page) {
    std::string out = "\"channel\":\"";
    out.append(channel);
    out += "\",\"users\":" + std::to_string(page.users) +
           ",\"connections\":" + std::to_string(page.connections) +
           ",\"anonymous\":" + std::to_string(page.anonymous);
    if (!page.listed) {
        out += ",\"listed\":false";
        return out;
    }
    out += ",\"members\":[";
    for (std::size_t i = 0; i < page.members.size(); ++i) {
        out += i == 0 ? "{\"userId\":\"" : ",{\"userId\":\"";
        out += page.members[i].first;
        out += "\",\"connections\":" + std::to_string(page.members[i].second) + "}";
    }
    out += "]";
    return out;
}

// --- member deltas: S → home ----------------------------------------------------------------

bool engine::tracks_presence(std::string_view channel) const noexcept {
    return !channel.starts_with("user:") && _config.channels.find(channel).presence;
}

void engine::send_member(std::string_view channel, const session& s, member_change change) {
    // Only marked namespaces: a subscribe elsewhere costs this one lookup and nothing more.
    if (!tracks_presence(channel)) {
        return;
    }
    const unsigned home_id = home_shard(channel, _io.shards());
    if (home_id == unsigned(_io.id())) {
        return on_member(channel, s.user_id(), change);
    }
    _io.post<kinds::member>(
        shard_id(static_cast<uint16_t>(home_id)),
        std::make_unique<member_msg>(member_msg{std::string(channel), s.user_id(), change}));
}

void engine::on_member(std::string_view channel, std::string_view user_id, member_change change) {
    home_channel* ch = _ordering->find(channel);
    if (ch == nullptr) {
        return; // never so: the member's shard is interested, so the channel is known here
    }
    const bool first = !ch->presence;
    if (first) {
        ch->presence = std::make_unique<channel_presence>();
        ++_counters.presence_channels;
    }
    channel_presence& p = *ch->presence;
    // The user count the event is judged by: with the user, before a leave or after a join.
    const std::size_t users_before = p.users.size();
    const user_transition t = apply_member(p, user_id, change);
    const std::size_t users_with = std::max(users_before, p.users.size());
    switch (t) {
    case user_transition::none:
        break;
    case user_transition::joined:
        ++_counters.presence_joins;
        ++_counters.presence_members;
        break;
    case user_transition::left:
        ++_counters.presence_leaves;
        --_counters.presence_members;
        break;
    }
    if (_broker != nullptr) {
        // This node's entry for the user in Redis; the channel's first member here and its
        // last one rewrite all of them (the first also sweeps dead nodes' entries).
        if (first || p.connections == 0) {
            _broker->replace_members(*ch->name, member_entries(p));
        } else if (user_id.empty()) {
            _broker->set_member(*ch->name, user_id, p.anonymous);
        } else {
            const auto it = p.users.find(user_id);
            _broker->set_member(*ch->name, user_id, it == p.users.end() ? 0 : it->second);
        }
    }
    if (p.connections == 0) {
        ch->presence.reset();
        --_counters.presence_channels;
    }
    if (t == user_transition::none) {
        return;
    }
    // With a broker that is up the event comes back from it once, for every node
    // (on_broker_presence): a user's first connection anywhere, its last one anywhere.
    if (_broker != nullptr && _broker->up()) {
        return;
    }
    emit_presence(*ch, user_id, change, users_with);
}

void engine::emit_presence(const home_channel& ch, std::string_view user, member_change change,
                           uint64_t users_with) {
    if (users_with > _config.max_presence_members) {
        ++_counters.presence_events_suppressed;
        return;
    }
    // One frame for every subscriber on every interested shard, handed by reference like a
    // message; offset 0 moves no channel's offset, priority 4 goes first under backpressure.
    const core::frame_ref f =
        ws::make_server_frame(ws::opcode::text, presence_event_text(*ch.name, user, change));
    ++_counters.presence_events_sent;
    for (unsigned shard = 0; shard < ch.interested.size(); ++shard) {
        if (!ch.interested[shard]) {
            continue;
        }
        if (shard == unsigned(_io.id())) {
            _fanout->deliver_local(*ch.name, f, priority::low, 0);
        } else {
            _io.post<kinds::deliver>(
                shard_id(static_cast<uint16_t>(shard)),
                std::make_unique<delivery>(delivery{f, *ch.name, priority::low, 0}));
        }
    }
}

void engine::on_broker_presence(std::string_view channel, std::string_view user, bool joined,
                                uint64_t users) noexcept {
    // Only a channel watched here comes through, so its home_channel exists; the check is
    // for a message in flight when the last subscriber left.
    const home_channel* ch = _ordering->find(channel);
    if (ch == nullptr || !valid_user_id(user)) {
        return;
    }
    emit_presence(*ch, user, joined ? member_change::joined : member_change::left, users);
}

void engine::on_members_lost() noexcept {
    _ordering->for_each([&](home_channel& ch) {
        if (ch.presence) {
            _broker->replace_members(*ch.name, member_entries(*ch.presence));
        }
    });
}

void engine::on_mesh(kinds::member, shard_id, std::unique_ptr<member_msg> m) noexcept {
    on_member(m->channel, m->user_id, m->change);
}

// --- the page: the presence command and the API -------------------------------------------

presence_page engine::presence_of(std::string_view channel, presence_detail detail) {
    const home_channel* ch = _ordering->find(channel);
    switch (detail) {
    case presence_detail::counts:
        break;
    case presence_detail::members:
        ++_counters.presence_queries;
        break;
    }
    return presence_page_of(ch != nullptr ? ch->presence.get() : nullptr, detail,
                            _config.max_presence_members);
}

presence_page engine::local_presence(std::string_view channel) const {
    const home_channel* ch = _ordering->find(channel);
    return presence_page_of(ch != nullptr ? ch->presence.get() : nullptr,
                            presence_detail::members, _config.max_presence_members);
}

std::optional<presence_page> engine::read_presence(std::string_view channel,
                                                   presence_listener& to, uint64_t token) {
    if (_broker != nullptr) {
        const uint64_t asked = ++_broker_seq;
        if (_broker->read_presence(channel, _config.max_presence_members, asked)) {
            ++_counters.presence_queries;
            _presence_reads.emplace(asked, presence_read{&to, token, std::string(channel)});
            return std::nullopt;
        }
    }
    return presence_of(channel, presence_detail::members);
}

void engine::ask_home_presence(unsigned from_shard, std::unique_ptr<presence_msg> m) {
    if (_broker != nullptr) {
        const uint64_t asked = ++_broker_seq;
        if (_broker->read_presence(m->channel, _config.max_presence_members, asked)) {
            ++_counters.presence_queries;
            _presence_asks.emplace(asked, std::make_pair(from_shard, std::move(m)));
            return;
        }
    }
    m->page = presence_of(m->channel, presence_detail::members);
    if (from_shard == unsigned(_io.id())) {
        return finish_presence(*m); // in the command's own run: its caller resumes
    }
    _io.post<kinds::presence_answer>(shard_id(static_cast<uint16_t>(from_shard)), std::move(m));
}

void engine::on_presence_page(uint64_t token, bool ok, const presence_page& page) noexcept {
    // Not ok (the connection to the broker went): this node's members, as when down.
    if (auto node = _presence_asks.extract(token); !node.empty()) {
        auto& [from_shard, m] = node.mapped();
        m->page = ok ? page : local_presence(m->channel);
        if (from_shard != unsigned(_io.id())) {
            _io.post<kinds::presence_answer>(shard_id(static_cast<uint16_t>(from_shard)),
                                             std::move(m));
            return;
        }
        finish_presence(*m);
        if (session* s = find_session(m->conn); s != nullptr) {
            resume(m->conn, *s);
        }
        return;
    }
    if (auto node = _presence_reads.extract(token); !node.empty()) {
        const presence_read& r = node.mapped();
        r.to->on_presence_page(r.token, ok ? page : local_presence(r.channel));
    }
}

void engine::presence(conn_handle h, session& s, const command& cmd) {
    // A list is up to ~35 KB for a 60-byte command: answered only to a connection that
    // reads what it is sent, so replies it does not read cannot pile up past the bound
    // (perf/attack/ack-presence: 20 connections that never read held 4.5 MB each).
    if (_io.queued_bytes(h) >= max_presence_backlog_bytes) {
        ++_counters.backlog_refused;
        return send_reply(h, s,
                          reply_error(cmd.has_id, cmd.id, 429,
                                      "too much unread output; read your replies before asking "
                                      "for presence again"));
    }
    // Whoever may subscribe to the channel may see who is in it (engine::subscribe's checks).
    if (s._identity) {
        const auth::access_verdict v =
            auth::may_subscribe(*s._identity, cmd.channel, *_config.namespaces);
        if (!v.allowed) {
            ++_counters.permission_refused;
            return send_reply(h, s, reply_error(cmd.has_id, cmd.id, 403, v.reason));
        }
    } else if (cmd.channel.starts_with("user:") && cmd.channel.substr(5) != s._user_id) {
        return send_reply(h, s, reply_error(cmd.has_id, cmd.id, 403, "another user's channel"));
    }
    if (!tracks_presence(cmd.channel)) {
        return send_reply(
            h, s,
            reply_error(cmd.has_id, cmd.id, 400, "presence is off for this channel's namespace"));
    }
    const unsigned home_id = home_shard(cmd.channel, _io.shards());
    if (home_id != unsigned(_io.id()) &&
        _io.mesh_congested(shard_id(static_cast<uint16_t>(home_id)))) {
        ++_counters.busy_refused;
        return send_reply(h, s, reply_error(cmd.has_id, cmd.id, 503, "server busy; retry"));
    }
    auto m = std::make_unique<presence_msg>();
    m->channel = std::string(cmd.channel);
    m->conn = h;
    m->has_id = cmd.has_id;
    m->id = cmd.id;
    m->slot = reserve_reply(s);
    // Later commands wait for the answer (can_start), so its reply keeps its place and
    // nothing the session does next is counted in it.
    ++s._asking_presence;
    if (home_id == unsigned(_io.id())) {
        return ask_home_presence(home_id, std::move(m));
    }
    _io.post<kinds::presence_ask>(shard_id(static_cast<uint16_t>(home_id)), std::move(m));
}

void engine::finish_presence(presence_msg& m) {
    session* s = find_session(m.conn);
    if (s == nullptr) {
        return; // closed meanwhile
    }
    --s->_asking_presence;
    fill_reply(m.conn, *s, m.slot,
               reply_ok(m.has_id, m.id, "," + presence_fields(m.channel, m.page)));
}

void engine::on_mesh(kinds::presence_ask, shard_id from, std::unique_ptr<presence_msg> m) noexcept {
    ask_home_presence(unsigned(from), std::move(m));
}

void engine::on_mesh(kinds::presence_answer, shard_id, std::unique_ptr<presence_msg> m) noexcept {
    finish_presence(*m);
    if (session* s = find_session(m->conn); s != nullptr) {
        resume(m->conn, *s);
    }
}

} // namespace ringcast::pubsub
