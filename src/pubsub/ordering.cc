// Ordering: home channels, their offsets and epochs, interest per shard, and the idle list
// that bounds them (ordering.h has the model).
#include "ordering.h"

#include <algorithm>
#include <cstdio>

namespace ringcast::pubsub {

ordering::ordering(shard_id self, unsigned shards, uint64_t instance, uint32_t max_idle_channels,
                   channel_rules history, std::size_t history_budget_bytes)
    : _channel_rules(std::move(history)), _history(history_budget_bytes), _self(self),
      _shards(shards), _instance(instance), _max_idle_channels(max_idle_channels) {}

ordering::~ordering() = default;

home_channel& ordering::home(std::string_view channel) {
    auto [it, created] = _home.try_emplace(std::string(channel));
    if (created) {
        it->second = std::make_unique<home_channel>();
        home_channel& ch = *it->second;
        char epoch[48];
        std::snprintf(epoch, sizeof(epoch), "%llx%02x%x",
                      static_cast<unsigned long long>(_instance), unsigned(_self) & 0xff,
                      static_cast<unsigned>(++_epoch_seq));
        ch.epoch = epoch;
        ch.interested.assign(_shards, false);
        ch.name = &it->first;
        const channel_policy policy = _channel_rules.find(channel);
        if (policy.count > 0) {
            ch.history = _history.make(policy);
        }
        ch.ack = policy.ack;
        idle_push(ch);
    }
    return *it->second;
}

home_channel& ordering::order(std::string_view channel) {
    home_channel& ch = home(channel);
    ++ch.offset;
    if (ch.idle) {
        idle_push(ch); // recently used: the last to be evicted
    }
    trim_idle();
    return ch;
}

home_channel& ordering::touch(std::string_view channel) {
    home_channel& ch = home(channel);
    if (ch.idle) {
        idle_push(ch);
    }
    trim_idle();
    return ch;
}

home_channel& ordering::interest(unsigned from_shard, std::string_view channel,
                                       interest_change change) {
    home_channel& ch = home(channel);
    const bool interested = change == interest_change::gained;
    if (ch.interested[from_shard] != interested) {
        ch.interested[from_shard] = interested;
        ch.interested_count += interested ? 1 : uint32_t(-1);
    }
    if (ch.interested_count > 0 && ch.idle) {
        idle_unlink(ch);
    } else if (ch.interested_count == 0) {
        idle_push(ch); // to the most recent end
    }
    trim_idle();
    return ch;
}

home_channel* ordering::find(std::string_view channel) noexcept {
    auto it = _home.find(channel);
    return it == _home.end() ? nullptr : it->second.get();
}

const home_channel* ordering::find(std::string_view channel) const noexcept {
    auto it = _home.find(channel);
    return it == _home.end() ? nullptr : it->second.get();
}

std::vector<std::string_view> ordering::idle_names() const {
    std::vector<std::string_view> out;
    out.reserve(_idle_count);
    for (const home_channel* ch = _idle_head; ch != nullptr; ch = ch->idle_next) {
        out.emplace_back(*ch->name);
    }
    return out;
}

void ordering::idle_unlink(home_channel& ch) noexcept {
    if (!ch.idle) {
        return;
    }
    (ch.idle_prev != nullptr ? ch.idle_prev->idle_next : _idle_head) = ch.idle_next;
    (ch.idle_next != nullptr ? ch.idle_next->idle_prev : _idle_tail) = ch.idle_prev;
    ch.idle_prev = ch.idle_next = nullptr;
    ch.idle = false;
    --_idle_count;
}

void ordering::idle_push(home_channel& ch) noexcept {
    idle_unlink(ch);
    ch.idle_prev = _idle_tail;
    (_idle_tail != nullptr ? _idle_tail->idle_next : _idle_head) = &ch;
    _idle_tail = &ch;
    ch.idle = true;
    ++_idle_count;
}

void ordering::trim_idle() noexcept {
    // The most recent idle channel is never evicted (the bound is at least 1): it may be
    // the one the caller is about to be handed.
    while (_idle_count > std::max<uint32_t>(_max_idle_channels, 1)) {
        home_channel* oldest = _idle_head;
        idle_unlink(*oldest);
        const std::string name = *oldest->name;
        _home.erase(name);
        ++_evicted;
    }
}

} // namespace ringcast::pubsub
