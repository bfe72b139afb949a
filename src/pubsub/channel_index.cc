// The pubsub engine of one shard, part 2: the channel index. Local channels (this shard's
// subscribers of a name) and home channels (the order of the names homed here), the
// interest round trip between them, and the bounds that keep both from growing with names
// nobody holds any more:
//
//   local channel: created by the first local subscribe, erased with the last
//                  unsubscribe, close or cancelled pending subscribe (the home is told);
//   home channel:  created by the first interest or publish; while no shard is interested
//                  it waits on the idle list and is evicted past config::max_idle_channels.
#include "engine_types.h"
#include "ordering.h"

#include <cstdio>

namespace ringcast::pubsub {

namespace {

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

// --- subscriptions ------------------------------------------------------------------------

void engine::subscribe(conn_handle h, session& s, const command& cmd, reply_mode mode) {
    const std::string_view channel = cmd.channel;
    auto answer = [&](std::string text) {
        if (mode == reply_mode::reply) {
            send_reply(h, s, std::move(text));
        }
    };
    if (channel.starts_with("user:") && channel.substr(5) != s._user_id) {
        return answer(reply_error(cmd.has_id, cmd.id, 403, "another user's channel"));
    }
    for (const auto& sub : s._subs) {
        if (sub.channel->name == channel) {
            return answer(reply_ok(cmd.has_id, cmd.id,
                                   offset_fields(channel, sub.channel->epoch,
                                                 sub.channel->offset)));
        }
    }
    if (s._subs.size() + s._pending >= _config.max_channels_per_connection) {
        return answer(reply_error(cmd.has_id, cmd.id, 403, "channel limit reached"));
    }
    auto it = _local.find(channel);
    if (it != _local.end() && it->second->confirmed) {
        local_channel& ch = *it->second;
        add_subscriber(ch, h, s);
        return answer(reply_ok(cmd.has_id, cmd.id, offset_fields(channel, ch.epoch, ch.offset)));
    }
    const unsigned home_id = home_shard(channel, _io.shards());
    if (it == _local.end() && home_id != unsigned(_io.id()) &&
        _io.mesh_congested(shard_id(static_cast<uint16_t>(home_id)))) {
        ++_counters.busy_refused;
        return answer(reply_error(cmd.has_id, cmd.id, 503, "server busy; retry the subscribe"));
    }
    const bool created = it == _local.end();
    if (created) {
        auto ch = std::make_unique<local_channel>();
        ch->name = std::string(channel);
        ch->generation = ++_local_generation;
        it = _local.emplace(ch->name, std::move(ch)).first;
        ++_counters.local_channels;
    }
    local_channel& ch = *it->second;
    const uint32_t slot = reserve_reply(s);
    ch.waiting.push_back({h, &s, cmd.has_id, cmd.id, mode, slot});
    s._waiting_on.push_back(&ch);
    ++s._pending;
    if (created) {
        // First local subscriber: a round trip to the home shard fixes the point from which
        // this shard receives the channel's messages.
        send_interest(ch.name, ch.generation, interest_change::gained);
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
        drop_local_channel(*ch);
    }
}

void engine::cancel_pending(conn_handle h, session& s) noexcept {
    // Only the channels this session waits on: closing costs O(its own subscribes).
    for (local_channel* ch : s._waiting_on) {
        std::erase_if(ch->waiting, [&](const pending_sub& p) { return p.h == h; });
        if (ch->subscribers.empty() && ch->waiting.empty()) {
            drop_local_channel(*ch);
        }
    }
    s._waiting_on.clear();
    s._pending = 0;
}

void engine::drop_local_channel(local_channel& ch) noexcept {
    // Erasing frees `ch`: keep what the home shard must be told.
    const std::string name = std::move(ch.name);
    const uint64_t generation = ch.generation;
    _local.erase(name);
    --_counters.local_channels;
    // Also when the interest was never confirmed: the home counted it when it arrived.
    send_interest(name, generation, interest_change::lost);
}

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

void engine::unsubscribe(conn_handle h, session& s, const command& cmd) {
    if (!s._user_id.empty() && cmd.channel == "user:" + s._user_id) {
        return send_reply(h, s,
                          reply_error(cmd.has_id, cmd.id, 403,
                                      "cannot leave your own user channel"));
    }
    for (std::size_t i = 0; i < s._subs.size(); ++i) {
        if (s._subs[i].channel->name == cmd.channel) {
            remove_subscription(s, i);
            return send_reply(h, s, reply_ok(cmd.has_id, cmd.id));
        }
    }
    send_reply(h, s, reply_error(cmd.has_id, cmd.id, 404, "not subscribed"));
}

void engine::confirm_interest(local_channel& ch, std::string_view epoch, uint64_t offset) {
    ch.confirmed = true;
    ch.epoch = std::string(epoch);
    ch.offset = offset;
    auto waiting = std::move(ch.waiting);
    ch.waiting.clear();
    std::vector<conn_handle> woken;
    woken.reserve(waiting.size());
    for (const pending_sub& p : waiting) {
        session& s = *p.s;
        --s._pending;
        std::erase(s._waiting_on, &ch);
        bool already = false;
        for (const auto& sub : s._subs) {
            already = already || sub.channel == &ch;
        }
        if (!already) {
            add_subscriber(ch, p.h, s);
        }
        fill_reply(p.h, s,  p.slot,
                   p.mode == reply_mode::reply
                       ? reply_ok(p.has_id, p.id, offset_fields(ch.name, ch.epoch, ch.offset))
                       : std::string());
        woken.push_back(p.h);
    }
    // Only now may the sessions run what they held back: a command run earlier could
    // unsubscribe and erase `ch` while this loop still used it.
    for (const conn_handle h : woken) {
        if (session* s = find_session(h); s != nullptr) {
            resume(h, *s);
        }
    }
}

// --- interest on the home shard ------------------------------------------------------------

void engine::on_interest(unsigned from_shard, std::string_view channel, uint64_t generation,
                         interest_change change) {
    const home_channel& ch = _ordering->interest(from_shard, channel, change);
    switch (change) {
    case interest_change::lost:
        return;
    case interest_change::gained:
        break;
    }
    if (from_shard == unsigned(_io.id())) {
        if (auto it = _local.find(channel);
            it != _local.end() && it->second->generation == generation) {
            confirm_interest(*it->second, ch.epoch, ch.offset);
        }
    } else {
        _io.post<kinds::confirmed>(shard_id(static_cast<uint16_t>(from_shard)),
                                   std::make_unique<interest_msg>(interest_msg{
                                       std::string(channel), ch.epoch, ch.offset, generation,
                                       true}));
    }
}

} // namespace ringcast::pubsub
